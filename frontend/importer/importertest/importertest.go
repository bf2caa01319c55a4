// Package importertest starts a Strata for the tests of the import, migration and export
// commands: an embedded server (internal/embeddedtest) with one account, reached over real
// gRPC, and its filesystem blob store opened beside it, as `strata migrate --blob fs` does.
package importertest

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/importer"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Password is the account's password.
const Password = "pw"

// Strata is a running server with one account.
type Strata struct {
	Server   *embedded.Server
	Metadata metadatapb.MetadataClient
	Blobs    blobstore.Store
	Target   *importer.Target
	Email    string
}

// Start starts the server and creates email (and a tenant of its domain).
func Start(t *testing.T, email string) *Strata {
	t.Helper()
	dataDir := t.TempDir()
	srv := embeddedtest.Start(t, embedded.Config{DataDir: dataDir})
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	md := metadatapb.NewMetadataClient(conn)
	ctx := context.Background()
	domain := email[strings.IndexByte(email, '@')+1:]
	if _, err := md.CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: "t", Domains: []string{domain}}); err != nil {
		t.Fatal(err)
	}
	if _, err := md.CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: email, Password: Password}); err != nil {
		t.Fatal(err)
	}
	blobs, err := fs.New(filepath.Join(dataDir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	committer := &ingest.Committer{Metadata: md, Blobs: blobs, Timeout: time.Minute, NewRequestID: embedded.NewRequestID}
	target, err := importer.Open(ctx, md, committer, email, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &Strata{Server: srv, Metadata: md, Blobs: blobs, Target: target, Email: email}
}

// Client logs in to the account over IMAP.
func (s *Strata) Client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Server.IMAPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.Email, Password).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}
