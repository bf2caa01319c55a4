package searchindex_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/searchindex"
)

const indexerAccount = "ix@example.com"

// startMetadata starts an embedded server (its own indexer on or off) with one account,
// and returns it with the account's INBOX id.
func startMetadata(t *testing.T, searchIndex bool) (*embedded.Server, uint64) {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{DisableSearchIndex: !searchIndex})
	md, ctx := srv.Metadata(), t.Context()
	if _, err := md.CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: "acme", Domains: []string{"example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := md.CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: indexerAccount, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	return srv, mailbox(t, srv, "INBOX").GetId()
}

func mailbox(t *testing.T, srv *embedded.Server, name string) *metadatapb.Mailbox {
	t.Helper()
	mb, err := srv.Metadata().GetMailbox(t.Context(), &metadatapb.GetMailboxRequest{Account: indexerAccount, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

// newMessages returns n messages whose bodies the blob store lacks (the indexer skips
// them: always candidates), distinct by seed.
func newMessages(seed, n int) []*metadatapb.NewMessage {
	msgs := make([]*metadatapb.NewMessage, n)
	for i := range msgs {
		key := blobstore.Key("acme", sha256.Sum256(fmt.Appendf(nil, "message %d.%d", seed, i)))
		msgs[i] = &metadatapb.NewMessage{BlobKey: key, Size: 100, InternalDateUnix: time.Now().Unix()}
	}
	return msgs
}

func appendMessages(t *testing.T, srv *embedded.Server, mailbox uint64, n int) {
	t.Helper()
	for done := 0; done < n; done += 250 {
		if _, err := srv.Metadata().Append(t.Context(), &metadatapb.AppendRequest{RequestId: embedded.NewRequestID(), Account: indexerAccount,
			MailboxId: mailbox, Messages: newMessages(done, min(250, n-done))}); err != nil {
			t.Fatal(err)
		}
	}
}

func expunge(t *testing.T, srv *embedded.Server, mailbox uint64, first, last uint32) {
	t.Helper()
	md, ctx := srv.Metadata(), t.Context()
	uids := []*metadatapb.UidRange{{First: first, Last: last}}
	if _, err := md.StoreFlags(ctx, &metadatapb.StoreFlagsRequest{RequestId: embedded.NewRequestID(), Account: indexerAccount, MailboxId: mailbox,
		Uids: uids, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Deleted`}}); err != nil {
		t.Fatal(err)
	}
	if _, err := md.Expunge(ctx, &metadatapb.ExpungeRequest{RequestId: embedded.NewRequestID(), Account: indexerAccount, MailboxId: mailbox, Uids: uids}); err != nil {
		t.Fatal(err)
	}
}

// openIndexer opens the index in dir with an indexer reading srv's metadata.
func openIndexer(t *testing.T, srv *embedded.Server, dir string) (*searchindex.Index, *searchindex.Indexer) {
	t.Helper()
	idx, err := searchindex.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return idx, searchindex.NewIndexer(idx, srv.Metadata(), newBlobStore(t), nil)
}

// newBlobStore returns a filesystem blob store in a directory of the test's, closed when
// the test ends.
func newBlobStore(t *testing.T) *fs.Store {
	t.Helper()
	blobs, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	return blobs
}

// appendRaw stores the message raw in blobs under its content hash and appends it to
// mailbox of indexerAccount with the structure a frontend parses at ingest; it returns the
// appended messages and the service's answer.
func appendRaw(t *testing.T, srv *embedded.Server, blobs blobstore.Store, mailbox uint64, raw []byte) ([]*metadatapb.NewMessage, *metadatapb.AppendResponse) {
	t.Helper()
	ctx := t.Context()
	st, err := message.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	key := blobstore.Key("acme", sha256.Sum256(raw))
	if err := blobs.Put(ctx, key, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	msgs := []*metadatapb.NewMessage{{BlobKey: key, Size: uint64(len(raw)), InternalDateUnix: time.Now().Unix(), Structure: st}}
	resp, err := srv.Metadata().Append(ctx, &metadatapb.AppendRequest{RequestId: embedded.NewRequestID(), Account: indexerAccount, MailboxId: mailbox, Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	return msgs, resp
}

// waitCaughtUp waits, at most 30 s, until ix's index of the named mailbox is caught up.
func waitCaughtUp(t *testing.T, srv *embedded.Server, ix *searchindex.Indexer, name string) searchindex.MailboxState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mb := mailbox(t, srv, name)
		done, st, err := ix.CaughtUp(indexerAccount, mb)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the index of %s never caught up: state %+v, mailbox UIDVALIDITY %d UIDNEXT %d HIGHESTMODSEQ %d", name, st, mb.GetUidValidity(), mb.GetUidNext(), mb.GetHighestModseq())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCaughtUpOnlyAfterRestartCatchUp: after a restart of the indexer, a change seen on
// the feed before the restart's catch-up has compared the mailbox (a flag change, which
// needs no work) does not make CaughtUp report the mailbox caught up while an expunge made
// while the indexer was down is still in the index; the catch-up's comparison does.
func TestCaughtUpOnlyAfterRestartCatchUp(t *testing.T) {
	srv, inbox := startMetadata(t, false)
	appendMessages(t, srv, inbox, 3)
	dir := filepath.Join(t.TempDir(), "index")
	idx, ix := openIndexer(t, srv, dir)
	if err := ix.Sync(t.Context(), indexerAccount, inbox); err != nil {
		t.Fatal(err)
	}
	if done, st, err := ix.CaughtUp(indexerAccount, mailbox(t, srv, "INBOX")); !done || err != nil {
		t.Fatalf("after a sync: caught up %v (%+v), %v", done, st, err)
	}
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}

	// While the indexer is down: an expunge, then a flag change.
	expunge(t, srv, inbox, 1, 1)
	if _, err := srv.Metadata().StoreFlags(t.Context(), &metadatapb.StoreFlagsRequest{RequestId: embedded.NewRequestID(), Account: indexerAccount,
		MailboxId: inbox, Uids: []*metadatapb.UidRange{{First: 2, Last: 2}}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Seen`}}); err != nil {
		t.Fatal(err)
	}
	mb := mailbox(t, srv, "INBOX")

	idx, ix = openIndexer(t, srv, dir)
	defer idx.Close()
	// The flag change reaches the restarted indexer before its catch-up.
	ix.NotifyChange(searchindex.MailboxChange{Account: indexerAccount, Mailbox: inbox, ModSeq: mb.GetHighestModseq()})
	if done, st, err := ix.CaughtUp(indexerAccount, mb); done || err != nil {
		t.Fatalf("before the restart's catch-up: caught up %v (state %+v), %v; want false (UID 1 expunged while down, still indexed)", done, st, err)
	}
	if err := ix.Sync(t.Context(), indexerAccount, inbox); err != nil {
		t.Fatal(err)
	}
	done, st, err := ix.CaughtUp(indexerAccount, mb)
	if !done || err != nil || st.Dead != 1 {
		t.Fatalf("after the catch-up: caught up %v (state %+v), %v; want true with one dead doc", done, st, err)
	}
}

// TestCaughtUpAfterRestartOfUnchangedMailbox: a mailbox that did not change while the
// indexer was down is caught up after the restart's catch-up (its sync finds the stored
// state in step and does no work). Before, that early return never marked it compared, so
// CaughtUp said no until the mailbox next changed.
func TestCaughtUpAfterRestartOfUnchangedMailbox(t *testing.T) {
	srv, inbox := startMetadata(t, false)
	appendMessages(t, srv, inbox, 3)
	dir := filepath.Join(t.TempDir(), "index")
	idx, ix := openIndexer(t, srv, dir)
	if err := ix.Sync(t.Context(), indexerAccount, inbox); err != nil {
		t.Fatal(err)
	}
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
	idx, ix = openIndexer(t, srv, dir)
	defer idx.Close()
	if err := ix.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if st := waitCaughtUp(t, srv, ix, "INBOX"); st.LastUID != 3 {
		t.Fatalf("state after the restart %+v, want LastUID 3", st)
	}
}

// TestImportNewUIDValidityReindexes: an import that gives an indexed mailbox a new
// UIDVALIDITY (frontend/importer, metadata import.go) makes the running indexer index the
// mailbox anew, under the new UIDVALIDITY, not add the imported messages to the state of
// the old one.
func TestImportNewUIDValidityReindexes(t *testing.T) {
	srv, _ := startMetadata(t, true)
	md, ctx := srv.Metadata(), t.Context()
	if _, err := md.CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{RequestId: embedded.NewRequestID(), Account: indexerAccount, Name: "Imported"}); err != nil {
		t.Fatal(err)
	}
	ix := srv.SearchIndex()
	before := waitCaughtUp(t, srv, ix, "Imported")
	mb := mailbox(t, srv, "Imported")
	newValidity := mb.GetUidValidity() + 1000
	if _, err := md.ImportMessages(ctx, &metadatapb.ImportMessagesRequest{RequestId: embedded.NewRequestID(), Account: indexerAccount,
		MailboxId: mb.GetId(), Messages: newMessages(7, 2), UidValidity: newValidity}); err != nil {
		t.Fatal(err)
	}
	after := waitCaughtUp(t, srv, ix, "Imported")
	if after.UIDValidity != newValidity || after.LastUID != 2 {
		t.Fatalf("index state after the import: %+v (before %+v); want UIDVALIDITY %d, LastUID 2", after, before, newValidity)
	}
}

// TestExpungeRebuildCountsOnce: an expunge that leaves enough tombstones to rebuild the
// mailbox's index drops each vanished UID once (Stats.Removed), not once by the
// incremental pass and again by the full comparison it hands over to.
func TestExpungeRebuildCountsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes over a thousand messages")
	}
	const n = 1100 // over reindexDead tombstones
	srv, inbox := startMetadata(t, false)
	appendMessages(t, srv, inbox, n)
	idx, ix := openIndexer(t, srv, filepath.Join(t.TempDir(), "index"))
	defer idx.Close()
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() { ix.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	waitCaughtUp(t, srv, ix, "INBOX")

	before := ix.Stats()
	expunge(t, srv, inbox, 1, n)
	ix.NotifyChange(searchindex.MailboxChange{Account: indexerAccount, Mailbox: inbox, ModSeq: mailbox(t, srv, "INBOX").GetHighestModseq(), Expunged: true})
	st := waitCaughtUp(t, srv, ix, "INBOX")
	after := ix.Stats()
	if removed := after.Removed - before.Removed; removed != n || st.Dead != 0 || st.Docs != 0 {
		t.Fatalf("expunge of all %d messages: %d removed, state %+v; want %d removed, then the mailbox rebuilt (no docs, no dead)", n, removed, st, n)
	}
}
