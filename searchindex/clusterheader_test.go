package searchindex_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/searchindex"
)

// TestClusterHeaderMessageIDFetched: the cluster's deploy/imap_check.py message, stored
// with its structure and body as a frontend stores it, indexed by an indexer that fetches
// the record itself (no hand-off, as a metadata node with --search-index), is found by
// HEADER Message-ID "<uuid@cluster-test>" once the index covers it.
func TestClusterHeaderMessageIDFetched(t *testing.T) {
	srv, inbox := startMetadata(t, false)
	ctx := t.Context()
	blobs := newBlobStore(t)
	var ids []string
	for i := range 4 {
		msgid := fmt.Sprintf("<%08x-1234-4abc-8def-0123456789ab@cluster-test>", i+0x5eed)
		ids = append(ids, msgid)
		body := []byte(fmt.Sprintf("From: demo@example.com\r\nTo: demo@example.com\r\nSubject: check %d\r\n"+
			"Message-ID: %s\r\n\r\ncheck %d through 127.0.0.1:1143\r\n", i, msgid, i))
		appendRaw(t, srv, blobs, inbox, body)
	}
	idx, err := searchindex.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	ix := searchindex.NewIndexer(idx, srv.Metadata(), blobs, nil)
	if err := ix.Sync(ctx, indexerAccount, inbox); err != nil {
		t.Fatal(err)
	}
	st := waitCaughtUp(t, srv, ix, "INBOX")
	t.Logf("state %+v stats %+v", st, ix.Stats())
	for i, msgid := range ids {
		needle := mailtext.Fold(msgid)
		for _, n := range []string{needle, strings.Trim(needle, "<>")} {
			resp, err := ix.SearchText(ctx, &metadatapb.SearchTextRequest{Account: indexerAccount, MailboxId: inbox,
				Queries: []*metadatapb.SearchTextQuery{{Needle: n, Scopes: []metadatapb.SearchScope{mailtext.HeaderScope("Message-ID")}}}})
			if err != nil {
				t.Fatal(err)
			}
			r := resp.GetResults()[0]
			t.Logf("%q: indexed %v last %d exact %v uids %v bitmap %v verify %v", n, resp.GetIndexed(), r.GetLastUid(), r.GetExact(), r.GetUids(), r.GetUidBitmap(), r.GetVerifyUids())
			uid := uint32(i + 1)
			found := uid > r.GetLastUid()
			for _, u := range r.GetUids() {
				found = found || u == uid
			}
			if b := r.GetUidBitmap(); int(uid/8) < len(b) && b[uid/8]&(1<<(uid%8)) != 0 {
				found = true
			}
			if !found {
				t.Errorf("HEADER Message-ID %q: UID %d not a candidate", n, uid)
			}
		}
	}
}

// TestLongWordOtherHeaderIsCandidate: a word longer than MaxWord in the value of a field
// other than Subject/From/To/Cc/Bcc (ScopeOther) makes the message a candidate of every
// HEADER query of that scope, as in every other scope (the batch kept the long-word
// postings of scopes up to ScopeBcc only).
func TestLongWordOtherHeaderIsCandidate(t *testing.T) {
	h := []byte("Subject: check 1\r\nMessage-ID: <00005eed-1234-4abc-8def-0123456789ab@cluster-test>\r\n\r\n")
	doc, err := searchindex.Extract(t.Context(), nil, &metadatapb.MessageRecord{Uid: 1, Structure: &metadatapb.MessageStructure{Header: h}})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := searchindex.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	b := idx.NewBatch()
	if err := b.Add("a@example.com", 1, 1, doc); err != nil {
		t.Fatal(err)
	}
	if err := b.SetState("a@example.com", 1, searchindex.MailboxState{UIDValidity: 1, LastUID: 1, Docs: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{"<00005eed-1234-4abc-8def-0123456789ab@cluster-test>", "cluster-test"} {
		res, err := idx.Candidates(t.Context(), "a@example.com", 1, searchindex.Query{Needle: mailtext.Fold(needle),
			Scopes: []searchindex.Scope{searchindex.HeaderScope("Message-ID")}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Exact && !slices.Contains(res.Verify, 1) || !slices.Contains(res.UIDs, 1) {
			t.Errorf("HEADER Message-ID %q: %+v, UID 1 not a candidate", needle, res)
		}
	}
}
