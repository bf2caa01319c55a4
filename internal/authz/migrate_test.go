package authz_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/frontend/importer"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/frontend/migrate"
	"github.com/strata-mail/strata/internal/dovecottest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestTenantAdminMigrates: the tenant administrator of acme, by its certificate, runs
// `strata migrate`'s copy of a Dovecot account into an account of acme, then a second run
// that applies a flag change and an expunge made at the source: every RPC the migration
// makes, allowed. An account of another tenant is refused at the first call, with an
// error that says why, and so is each migration RPC naming it.
func TestTenantAdminMigrates(t *testing.T) {
	dir, err := os.MkdirTemp("", "strata-authz-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const sourceUser, sourcePassword = "alice", "secret"
	dovecot, err := dovecottest.Start(dir, dovecottest.Options{
		Instance: "strata-authz-test", Users: []dovecottest.User{{Name: sourceUser, Password: sourcePassword}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dovecot.Stop)
	src, err := imapclient.DialInsecure(dovecot.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if err := src.Login(sourceUser, sourcePassword).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		msg := fmt.Sprintf("From: a@example.net\r\nSubject: message %d\r\n\r\nBody %d.\r\n", i, i)
		cmd := src.Append("INBOX", int64(len(msg)), nil)
		if _, err := cmd.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}

	tc := start(t)
	tc.setup(t)
	md := metadatapb.NewMetadataClient(tc.conn(t, "strata://admin/tenant/acme"))
	blobs, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	committer := &ingest.Committer{Metadata: md, Blobs: blobs, Timeout: time.Minute, NewRequestID: reqID}
	logger := slog.New(slog.DiscardHandler)
	target, err := importer.Open(ctx(t), md, committer, "u@acme.org", logger)
	if err != nil {
		t.Fatal(err)
	}
	cfg := migrate.Config{
		Source: migrate.Source{Addr: dovecot.IMAPAddr, User: sourceUser, Password: sourcePassword, Security: migrate.Plaintext},
		Target: target, Expunge: true, SpoolDir: t.TempDir(), Log: logger,
	}
	inbox := func(rep *migrate.Report) migrate.FolderReport {
		t.Helper()
		if len(rep.Failures) > 0 {
			t.Fatalf("failures: %v", rep.Failures)
		}
		for _, f := range rep.Folders {
			if f.Target == "INBOX" {
				return f
			}
		}
		t.Fatalf("no INBOX in %+v", rep.Folders)
		return migrate.FolderReport{}
	}
	rep, err := migrate.Run(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f := inbox(rep); f.Copied != 5 || f.TargetCount != 5 || !f.UIDsKept {
		t.Fatalf("first run: %+v", f)
	}
	if _, err := src.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := src.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.UIDExpunge(imap.UIDSetNum(3)).Close(); err != nil {
		t.Fatal(err)
	}
	rep, err = migrate.Run(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f := inbox(rep); f.FlagsUpdated != 1 || f.Expunged != 1 || f.TargetCount != 4 {
		t.Fatalf("second run: %+v", f)
	}

	// Another tenant's account.
	_, err = importer.Open(ctx(t), md, committer, "v@other.org", logger)
	if !errors.Is(err, importer.ErrNotPermitted) || !strings.Contains(err.Error(), `"v@other.org" is not in tenant acme`) {
		t.Fatalf("migration into another tenant's account: %v", err)
	}
	_, err = md.ListMessages(ctx(t), &metadatapb.ListMessagesRequest{Account: "v@other.org", MailboxId: 1, SourceUids: true})
	wantCode(t, "ListMessages of another tenant's account", err, codes.PermissionDenied)
	_, err = md.SetMetadata(ctx(t), &metadatapb.SetMetadataRequest{RequestId: reqID(), Account: "v@other.org", MailboxId: 1,
		Entries: []*metadatapb.MetadataEntry{{Name: importer.StateEntry, Value: []byte("{}")}}})
	wantCode(t, "SetMetadata of another tenant's mailbox", err, codes.PermissionDenied)
	_, err = md.StoreFlags(ctx(t), &metadatapb.StoreFlagsRequest{RequestId: reqID(), Account: "u@acme.org", User: "v@other.org", MailboxId: 1,
		Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Deleted`}})
	wantCode(t, "StoreFlags acting as another tenant's user", err, codes.PermissionDenied)
	_, err = md.Expunge(ctx(t), &metadatapb.ExpungeRequest{RequestId: reqID(), Account: "v@other.org", MailboxId: 1})
	wantCode(t, "Expunge of another tenant's mailbox", err, codes.PermissionDenied)

	log := tc.audit.String()
	for _, want := range []string{`"rpc":"Metadata/ImportMessages"`, `"rpc":"Metadata/StoreFlags"`, `"rpc":"Metadata/Expunge"`, `"who":"strata://admin/tenant/acme"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}
