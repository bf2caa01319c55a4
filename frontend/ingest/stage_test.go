package ingest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// gatedStore is the fs store with a gate on each staged body's Sync: it waits until the
// test opens the gate and then fails with syncErr, if set. Only the fault (a failing
// fsync) is injected; the bodies are real files.
type gatedStore struct {
	*fs.Store
	gate    chan struct{}
	syncErr error
}

func (g *gatedStore) Stage(ctx context.Context, key string, r io.Reader, size int64) (blobstore.Staged, error) {
	st, err := g.Store.Stage(ctx, key, r, size)
	if err != nil {
		return nil, err
	}
	return gatedSync{st, g}, nil
}

type gatedSync struct {
	blobstore.Staged
	g *gatedStore
}

func (s gatedSync) Sync() error {
	select {
	case <-s.g.gate:
	case <-time.After(30 * time.Second):
		return errors.New("the gate never opened: the Append did not run before the body's sync ended")
	}
	if err := s.Staged.Sync(); err != nil {
		return err
	}
	return s.g.syncErr
}

// appendWatcher is the embedded server's metadata client; when an Append commits it
// opens the gate, after checking that the body it references can be read already.
type appendWatcher struct {
	metadatapb.MetadataClient
	t     *testing.T
	blobs blobstore.Store
	gate  chan struct{}
}

func (w appendWatcher) Append(ctx context.Context, req *metadatapb.AppendRequest, opts ...grpc.CallOption) (*metadatapb.AppendResponse, error) {
	for _, m := range req.GetMessages() {
		if _, err := w.blobs.Stat(ctx, m.GetBlobKey()); err != nil {
			w.t.Errorf("Append sent before its body %s is readable: %v", m.GetBlobKey(), err)
		}
	}
	resp, err := w.MetadataClient.Append(ctx, req, opts...)
	close(w.gate)
	return resp, err
}

// TestStagedBodySyncsBesideAppend: with a blobstore.Stager the body is readable before
// the Append goes out, its sync runs beside the Append (the sync here cannot end before
// the Append has committed), and StoreAndAppend reports success only after the sync; a
// failed sync fails it with ErrBlobStore although the Append committed.
func TestStagedBodySyncsBesideAppend(t *testing.T) {
	srv := embeddedtest.Start(t, embedded.Config{})
	ctx := t.Context()
	if _, err := srv.Metadata().CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: "acme", Domains: []string{"example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Metadata().CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: "stage@example.com", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	inbox, err := srv.Metadata().GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: "stage@example.com", Name: "INBOX"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, syncErr := range []error{nil, errors.New("injected fsync failure")} {
		g := &gatedStore{Store: store, gate: make(chan struct{}), syncErr: syncErr}
		c := &ingest.Committer{
			Metadata:     appendWatcher{MetadataClient: srv.Metadata(), t: t, blobs: store, gate: g.gate},
			Blobs:        g,
			Stage:        true,
			Timeout:      30 * time.Second,
			NewRequestID: embedded.NewRequestID,
		}
		spool, err := blobstore.NewSpillingSpool(t.TempDir(), 1<<10, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer spool.Close()
		if _, err := spool.Write([]byte("Subject: staged " + time.Now().String() + "\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
		nm, err := ingest.NewMessage("acme", spool, time.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req := &metadatapb.AppendRequest{RequestId: embedded.NewRequestID(), Account: "stage@example.com", MailboxId: inbox.GetId(), Messages: []*metadatapb.NewMessage{nm}}
		retry := func(call func(ctx context.Context) error) error { return call(ctx) }
		resp, err := c.StoreAndAppend(ctx, []ingest.Body{{Key: nm.GetBlobKey(), Spool: spool}}, req, retry, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if syncErr == nil {
			if err != nil || len(resp.GetUids()) != 1 {
				t.Fatalf("StoreAndAppend: %v, %v; want one UID", resp, err)
			}
			continue
		}
		if !errors.Is(err, ingest.ErrBlobStore) {
			t.Fatalf("StoreAndAppend with a failing sync: %v, want ErrBlobStore", err)
		}
	}
	if err := store.SyncStaged(ctx); err != nil {
		t.Fatal(err)
	}
}
