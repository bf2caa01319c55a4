package gc_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/blobstore/gc"
	"github.com/strata-mail/strata/embedded"
	imapserver "github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/proto/metadatapb"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startStrata runs an embedded Strata on the filesystem store without periodic collection.
// startStrata starts strata serve; with filePerBody it keeps a file per body, so that a
// second fs store on its directory may delete bodies (packed ones only the server's own
// store deletes: blobstore/fs, Options.Own).
func startStrata(t *testing.T, filePerBody bool) (*embedded.Server, string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, embedded.Config{
		DataDir: dir, IMAPListen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", Demo: true,
		AllowPlaintextAuth: true, BlobGCInterval: -1, Logger: quietLogger(), BlobFilePerBody: filePerBody,
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, filepath.Join(dir, "blobs")
}

func login(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

func appendBody(c *imapclient.Client, body string) (imap.UID, error) {
	cmd := c.Append("INBOX", int64(len(body)), nil)
	io.WriteString(cmd, body)
	cmd.Close()
	data, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	return data.UID, nil
}

func message(n int) string {
	return fmt.Sprintf("From: a@example.org\r\nSubject: gc %d\r\n\r\nbody %d\r\n", n, n)
}

func keyOf(body string) string {
	return blobstore.Key(embedded.DemoTenant, sha256.Sum256([]byte(body)))
}

// expungeAll deletes every message of INBOX.
func expungeAll(t *testing.T, c *imapclient.Client) {
	t.Helper()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	all := imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}
	if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
}

func fetchBody(t *testing.T, c *imapclient.Client, uid imap.UID) string {
	t.Helper()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("UID FETCH %d: %d messages, %v", uid, len(msgs), err)
	}
	return string(msgs[0].FindBodySection(whole))
}

// TestCollectThroughAdminRPC: `strata blob gc`'s RPC deletes the body of an expunged message
// once the grace period is over, and only that one; the record is forgotten, so a second
// pass deletes nothing.
func TestCollectThroughAdminRPC(t *testing.T) {
	srv, blobDir := startStrata(t, false)
	store, err := fs.New(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	c := login(t, srv.IMAPAddr())
	gone, kept := message(1), message(2)
	if _, err := appendBody(c, gone); err != nil {
		t.Fatal(err)
	}
	expungeAll(t, c)
	keptUID, err := appendBody(c, kept)
	if err != nil {
		t.Fatal(err)
	}

	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := metadatapb.NewBlobAdminClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CollectBlobs(ctx, &metadatapb.CollectBlobsRequest{GraceNanos: int64(time.Hour)})
	if err != nil || res.GetDeleted() != 0 {
		t.Fatalf("pass within the grace period: %v, %v", res, err)
	}
	res, err = admin.CollectBlobs(ctx, &metadatapb.CollectBlobsRequest{GraceNanos: 1})
	if err != nil || res.GetDeleted() != 1 {
		t.Fatalf("pass after the grace period: %v, %v; want 1 deleted", res, err)
	}
	if _, err := store.Stat(ctx, keyOf(gone)); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("collected body: Stat = %v, want ErrNotFound", err)
	}
	if got := fetchBody(t, c, keptUID); got != kept {
		t.Fatalf("kept message: %q", got)
	}
	if res, err = admin.CollectBlobs(ctx, &metadatapb.CollectBlobsRequest{GraceNanos: 1}); err != nil || res.GetDeleted() != 0 {
		t.Fatalf("second pass: %v, %v; want nothing", res, err)
	}
}

// hookedStore is the filesystem store with a pause after its n-th Put.
type hookedStore struct {
	blobstore.Store
	puts      atomic.Int64
	pauseAt   int64
	paused    chan struct{} // closed when the pausing Put has stored (or found) its body
	resume    chan struct{} // closed by the test to let it return
	uploadsAt []int64       // Put numbers that found the body missing
}

func (h *hookedStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	n := h.puts.Add(1)
	if _, err := h.Store.Stat(ctx, key); errors.Is(err, blobstore.ErrNotFound) {
		h.uploadsAt = append(h.uploadsAt, n)
	}
	err := h.Store.Put(ctx, key, r, size)
	if n == h.pauseAt {
		close(h.paused)
		<-h.resume
	}
	return err
}

// TestRacingDedupAppend drives one interleaving of the collector and an APPEND of a body
// that is being collected, step by step:
//
//  1. The body's only message is expunged; the collector marks the blob deleting.
//  2. APPEND stores the body (a dedup hit: the object is still there) and is refused
//     (BLOB_DELETING); it stores the body again, again a dedup hit, and pauses there.
//  3. The collector deletes the object and forgets the record.
//  4. The APPEND goes on: its append carries the epoch from before the forget and is
//     refused (BLOB_EPOCH_STALE); it stores the body a third time, now a real upload, and
//     commits.
//
// Without the epoch check, step 4 would commit a message whose body is gone.
func TestRacingDedupAppend(t *testing.T) {
	srv, blobDir := startStrata(t, true) // the test deletes through a store of its own
	base, err := fs.New(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	body := message(7)
	c := login(t, srv.IMAPAddr())
	if _, err := appendBody(c, body); err != nil {
		t.Fatal(err)
	}
	expungeAll(t, c)

	md := srv.Metadata()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	time.Sleep(time.Millisecond) // the mark's log time must pass the orphan's by the grace
	marked, err := md.MarkBlobsDeleting(ctx, &metadatapb.MarkBlobsDeletingRequest{RequestId: "mark-1", GraceNanos: 1})
	if err != nil || len(marked.GetKeys()) != 1 || marked.GetKeys()[0] != keyOf(body) {
		t.Fatalf("mark: %v, %v", marked, err)
	}

	store := &hookedStore{Store: base, pauseAt: 2, paused: make(chan struct{}), resume: make(chan struct{})}
	fe := imapserver.NewServer(imapserver.Config{
		Metadata: md, Blobs: store, SpoolDir: t.TempDir(), Logger: quietLogger(),
		AllowPlaintextAuth: true, TrustLoopback: true, MaxMessageSize: 1 << 20,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go fe.Serve(ln)
	t.Cleanup(func() { fe.Shutdown(context.Background()) })
	racer := login(t, ln.Addr().String())
	type result struct {
		uid imap.UID
		err error
	}
	done := make(chan result, 1)
	go func() {
		uid, err := appendBody(racer, body)
		done <- result{uid, err}
	}()

	select {
	case <-store.paused:
	case r := <-done:
		t.Fatalf("APPEND ended before its second Put: %v, %v", r.uid, r.err)
	case <-ctx.Done():
		t.Fatal("APPEND never stored the body a second time")
	}
	if err := base.Delete(ctx, keyOf(body)); err != nil {
		t.Fatal(err)
	}
	forgot, err := md.ForgetBlobs(ctx, &metadatapb.ForgetBlobsRequest{RequestId: "forget-1", Keys: []string{keyOf(body)}})
	if err != nil || len(forgot.GetKeys()) != 1 {
		t.Fatalf("forget: %v, %v", forgot, err)
	}
	close(store.resume)

	r := <-done
	if r.err != nil {
		t.Fatalf("APPEND racing the collector: %v", r.err)
	}
	if store.puts.Load() != 3 || len(store.uploadsAt) != 1 || store.uploadsAt[0] != 3 {
		t.Fatalf("Puts: %d, uploads at %v; want 3 with the third uploading", store.puts.Load(), store.uploadsAt)
	}
	if got := fetchBody(t, c, r.uid); got != body {
		t.Fatalf("body of the racing APPEND: %q", got)
	}
	// The body is referenced again: a later pass leaves it.
	col := &gc.Collector{Metadata: md, Blobs: base, Logger: quietLogger()}
	if res, err := col.Run(ctx, 0); err != nil || res.Deleted != 0 {
		t.Fatalf("pass after the append: %+v, %v", res, err)
	}
	if _, err := base.Stat(ctx, keyOf(body)); err != nil {
		t.Fatalf("body after the pass: %v", err)
	}
}
