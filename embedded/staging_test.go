package embedded_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/childproc"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/fsync"
	"github.com/strata-mail/strata/proto/metadatapb"
)

const stagingAccount = "crash@example.com"

// appendBodies stores each body in the server's blob directory and appends it to the
// account's INBOX, as the frontends do, and returns the blob keys.
func appendBodies(t *testing.T, srv *embedded.Server, dataDir string, bodies []string) []string {
	t.Helper()
	ctx := t.Context()
	md := srv.Metadata()
	inbox, err := md.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: stagingAccount, Name: "INBOX"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, body := range bodies {
		key := blobstore.Key("acme", sha256.Sum256([]byte(body)))
		keys = append(keys, key)
		_, err := md.Append(ctx, &metadatapb.AppendRequest{
			RequestId: embedded.NewRequestID(), Account: stagingAccount, MailboxId: inbox.GetId(),
			Messages: []*metadatapb.NewMessage{{BlobKey: key, Size: uint64(len(body)), InternalDateUnix: time.Now().Unix()}},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The body goes where the fs store keeps it (blobstore/fs: t/<tenant>/<h[0:2]>/<h[2:4]>/<h>).
		h := key[strings.LastIndexByte(key, '/')+1:]
		path := filepath.Join(dataDir, "blobs", "t", "acme", h[0:2], h[2:4], h)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// inboxKeys returns the blob keys of the messages in the account's INBOX, in UID order.
func inboxKeys(t *testing.T, srv *embedded.Server) []string {
	t.Helper()
	ctx := t.Context()
	md := srv.Metadata()
	inbox, err := md.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: stagingAccount, Name: "INBOX"})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := md.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{Account: stagingAccount, MailboxId: inbox.GetId(), Uids: []*metadatapb.UidRange{{First: 1, Last: ^uint32(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rec.GetBlobKey())
	}
}

// TestStagingRecovery: after a crash of the machine (a staging marker of another boot), a
// restart expunges the messages whose bodies did not survive (one missing, one not whole)
// and keeps the others; after a crash of the process only (a marker of this boot) it
// checks nothing, since the page cache kept every staged body. A clean shutdown leaves no
// marker.
func TestStagingRecovery(t *testing.T) {
	bootID, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skipf("no boot ID to tell a reboot by: %v", err)
	}
	dataDir := t.TempDir()
	marker := filepath.Join(dataDir, "staging-boot")
	srv := embeddedtest.Start(t, embedded.Config{DataDir: dataDir})
	ctx := t.Context()
	if got, err := os.ReadFile(marker); err != nil || string(got) != string(bootID) {
		t.Fatalf("staging marker while serving: %q, %v; want this boot's ID", got, err)
	}
	if _, err := srv.Metadata().CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: "acme", Domains: []string{"example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Metadata().CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: stagingAccount, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	keys := appendBodies(t, srv, dataDir, []string{"Subject: kept\r\n\r\none\r\n", "Subject: missing\r\n\r\ntwo\r\n", "Subject: torn\r\n\r\nthree\r\n", "Subject: kept too\r\n\r\nfour\r\n"})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging marker after a clean shutdown: %v; want none", err)
	}

	// What a power loss can leave of two staged bodies: one gone, one not whole.
	pathOf := func(key string) string {
		h := key[strings.LastIndexByte(key, '/')+1:]
		return filepath.Join(dataDir, "blobs", "t", "acme", h[0:2], h[2:4], h)
	}
	if err := os.Remove(pathOf(keys[1])); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(pathOf(keys[2]), 3); err != nil {
		t.Fatal(err)
	}

	// A process crash: the marker is this boot's, nothing is checked, but the body store's
	// file system is synced before raft opens (what the killed process staged).
	if err := os.WriteFile(marker, bootID, 0o600); err != nil {
		t.Fatal(err)
	}
	before := fsync.FilesystemSyncs()
	srv = embeddedtest.Start(t, embedded.Config{DataDir: dataDir})
	if synced := fsync.FilesystemSyncs() - before; synced != 1 {
		t.Fatalf("after a process crash the start synced %d file systems, want 1", synced)
	}
	if got := inboxKeys(t, srv); !slices.Equal(got, keys) {
		t.Fatalf("after a process crash the INBOX holds %q, want all of %q", got, keys)
	}
	// Ended without a clean shutdown, as a crash would.
	srv.Close()

	// A machine crash: the marker is another boot's.
	if err := os.WriteFile(marker, []byte("00000000-0000-0000-0000-000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv = embeddedtest.Start(t, embedded.Config{DataDir: dataDir})
	if got, want := inboxKeys(t, srv), []string{keys[0], keys[3]}; !slices.Equal(got, want) {
		t.Fatalf("after a machine crash the INBOX holds %q, want %q (the lost bodies' messages expunged)", got, want)
	}
	if got, err := os.ReadFile(marker); err != nil || string(got) != string(bootID) {
		t.Fatalf("staging marker after the recovery: %q, %v; want this boot's ID", got, err)
	}
	// The recovery is done: another start after a crash of this boot keeps what is left.
	ctx2, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx2); err != nil {
		t.Fatal(err)
	}
}

// restartChildEnv names the data directory of TestRestartSyncsOnlyAfterKill's child.
const restartChildEnv = "STRATA_EMBEDDED_RESTART_CHILD"

func TestRestartChild(t *testing.T) {
	dataDir := os.Getenv(restartChildEnv)
	if dataDir == "" {
		t.Skip("the child of TestRestartSyncsOnlyAfterKill")
	}
	embeddedtest.Start(t, embedded.Config{DataDir: dataDir})
	os.Stdout.WriteString("ready\n")
	select {} // until killed
}

// TestRestartSyncsOnlyAfterKill: a start after a clean shutdown syncs no file system; a
// start after the server's process was SIGKILLed syncs the body store's file system once
// (the packed store's Open, not a second time for the staging marker).
func TestRestartSyncsOnlyAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dataDir := t.TempDir()
	srv := embeddedtest.Start(t, embedded.Config{DataDir: dataDir})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	before := fsync.FilesystemSyncs()
	srv = embeddedtest.Start(t, embedded.Config{DataDir: dataDir})
	if synced := fsync.FilesystemSyncs() - before; synced != 0 {
		t.Fatalf("a start after a clean shutdown synced %d file systems, want none", synced)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	childproc.KillWhenReady(t, "TestRestartChild", []string{restartChildEnv + "=" + dataDir}, "ready")
	if _, err := os.Stat(filepath.Join(dataDir, "staging-boot")); err != nil {
		t.Fatalf("no staging marker after the kill: %v", err)
	}
	before = fsync.FilesystemSyncs()
	embeddedtest.Start(t, embedded.Config{DataDir: dataDir})
	if synced := fsync.FilesystemSyncs() - before; synced != 1 {
		t.Fatalf("a start after a SIGKILL synced %d file systems, want 1", synced)
	}
}
