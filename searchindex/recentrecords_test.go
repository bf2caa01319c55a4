package searchindex_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/searchindex"
)

// TestHandedRecordsKeepIndexExact: the indexer takes the records the ingest path hands
// over (RecentBodies.KeepAppended) instead of fetching them, and the index still holds
// exactly the stored messages: a message appended without a handed record (COPY, another
// frontend) is fetched, a handed one expunged before the indexer came is not indexed and
// its record is dropped, one handed with a stale UIDVALIDITY is not used. Each message's
// subject and body words are found under the message's own UID.
func TestHandedRecordsKeepIndexExact(t *testing.T) {
	srv, inbox := startMetadata(t, false)
	ctx := t.Context()
	store := newBlobStore(t)
	recent := searchindex.NewRecentBodies(1<<20, 1<<16)
	idx, err := searchindex.Open(filepath.Join(t.TempDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	ix := searchindex.NewIndexer(idx, srv.Metadata(), recent.Over(store), nil)

	// tag makes message i's words: no needle is a substring of another message's words.
	tag := func(i int) string { return strings.Repeat("q", i) }
	// appendOne stores message i's body and appends it; handed says whether its record
	// is handed over, validity the UIDVALIDITY it is handed with (0: the mailbox's).
	appendOne := func(i int, handed bool, validity uint32) uint32 {
		t.Helper()
		raw := fmt.Appendf(nil, "From: a@example.com\r\nSubject: subj%sword\r\n\r\nbody text bodyword%sx here\r\n", tag(i), tag(i))
		msgs, resp := appendRaw(t, srv, store, inbox, raw)
		if handed {
			if validity != 0 {
				resp.UidValidity = validity
			}
			recent.KeepAppended(indexerAccount, inbox, resp, msgs)
		}
		return resp.GetUids()[0]
	}
	uids := []uint32{
		appendOne(1, true, 0),
		appendOne(2, true, 0),
		appendOne(3, false, 0), // not handed: fetched
		appendOne(4, true, 0),
		appendOne(5, true, 0), // expunged below
		appendOne(6, true, mailbox(t, srv, "INBOX").GetUidValidity()+1), // stale: fetched
		appendOne(7, true, 0),
	}
	expunge(t, srv, inbox, uids[4], uids[4])
	if err := ix.Sync(ctx, indexerAccount, inbox); err != nil {
		t.Fatal(err)
	}
	if kept, taken := recent.RecordCounts(); kept != 6 || taken != 4 {
		t.Errorf("records kept %d, taken %d; want 6 kept, 4 taken (1, 2, 4, 7)", kept, taken)
	}
	st := waitCaughtUp(t, srv, ix, "INBOX")
	if st.Docs != 6 || st.LastUID != uids[6] {
		t.Errorf("index state %+v; want 6 docs up to UID %d", st, uids[6])
	}
	for i, uid := range uids {
		var want []uint32
		if i != 4 {
			want = []uint32{uid}
		}
		for _, q := range []searchindex.Query{
			{Needle: mailtext.Fold(fmt.Sprintf("subj%sword", tag(i+1))), Scopes: []searchindex.Scope{searchindex.ScopeSubject}},
			{Needle: mailtext.Fold(fmt.Sprintf("bodyword%sx", tag(i+1))), Scopes: []searchindex.Scope{searchindex.ScopeBody}},
		} {
			res, err := idx.Candidates(ctx, indexerAccount, inbox, q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.UIDs, want) || res.LastUID != uids[6] {
				t.Errorf("candidates of %q = %v (last UID %d); want %v", q.Needle, res.UIDs, res.LastUID, want)
			}
		}
	}
	// A second sync finds nothing handed and nothing new.
	if err := ix.Sync(ctx, indexerAccount, inbox); err != nil {
		t.Fatal(err)
	}
	if kept, taken := recent.RecordCounts(); kept != 6 || taken != 4 {
		t.Errorf("after a second sync: records kept %d, taken %d; want 6, 4", kept, taken)
	}
}
