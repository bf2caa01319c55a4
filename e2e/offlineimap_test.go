package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestOfflineIMAP syncs `strata serve` into an empty Maildir with offlineimap (Debian
// package offlineimap3), sends local flag changes, deletions, new messages and a new folder
// back, and checks after each run that server and Maildir agree and that a run with nothing
// to do sends no command that changes the server.
func TestOfflineIMAP(t *testing.T) {
	offlineimap := requireTool(t, "offlineimap", "offlineimap3")
	srv := startServe(t, t.TempDir())
	host, port, err := net.SplitHostPort(srv.imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	maildir, metadata := filepath.Join(dir, "mail"), filepath.Join(dir, "meta")
	for _, d := range []string{maildir, metadata} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(dir, "offlineimaprc")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`[general]
accounts = strata
metadata = %s
ui = basic

[Account strata]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = %s
sep = /

[Repository remote]
type = IMAP
remotehost = %s
remoteport = %s
remoteuser = demo@example.com
remotepass = demo
ssl = no
starttls = no
`, metadata, maildir, host, port)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Seed the server with another client: flags, a hierarchy and a large message.
	c := srv.login(t)
	if err := c.Create("Work/Sub", nil).Wait(); err != nil {
		t.Fatalf("CREATE Work/Sub: %v", err)
	}
	seed := []struct {
		mailbox string
		flags   []imap.Flag
	}{
		{"INBOX", nil}, {"INBOX", []imap.Flag{imap.FlagSeen}}, {"INBOX", []imap.Flag{imap.FlagSeen, imap.FlagFlagged}},
		{"INBOX", []imap.Flag{imap.FlagAnswered, imap.FlagSeen}}, {"Work/Sub", []imap.Flag{imap.FlagDraft}}, {"Archive", []imap.Flag{imap.FlagSeen}},
	}
	for i, m := range seed {
		if _, err := appendMessage(c, m.mailbox, toCRLF(maildirTestMessage(i, i == 2)), &imap.AppendOptions{Flags: m.flags}); err != nil {
			t.Fatalf("APPEND %d: %v", i, err)
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT: %v", err)
	}

	runOfflineIMAP(t, offlineimap, config)
	checkMaildirMatchesServer(t, srv, maildir, "after the first offlineimap run")
	if got := len(readMaildir(t, maildir)["INBOX"]); got != 4 {
		t.Fatalf("INBOX in the Maildir holds %d messages, want 4", got)
	}
	assertNoopOfflineIMAP(t, offlineimap, config, maildir)

	// Local changes: flags, a deletion, a new message and a new folder.
	setMaildirFlags(t, maildir, "INBOX", 0, "FS")
	setMaildirFlags(t, maildir, "INBOX", 2, "S")
	removeMaildirMessage(t, maildir, "INBOX", 3)
	writeMaildirMessage(t, maildir, "Work/Sub", "1800000001.1.e2e", "S", false, maildirTestMessage(20, false))
	writeMaildirMessage(t, maildir, "Local Only", "1800000002.1.e2e", "", true, maildirTestMessage(21, false))
	runOfflineIMAP(t, offlineimap, config)
	// offlineimap renames files and moves new/ to cur/ as it syncs; a second run settles it.
	runOfflineIMAP(t, offlineimap, config)
	checkMaildirMatchesServer(t, srv, maildir, "after local changes")
	remote := serverMessages(t, srv)
	if remote["INBOX"]["<mbsync3@example.org>"] != nil {
		t.Error("the message deleted from the Maildir is still in INBOX on the server")
	}
	if remote["Local Only"]["<mbsync21@example.org>"] == nil || remote["Work/Sub"]["<mbsync20@example.org>"] == nil {
		t.Errorf("new local messages did not reach the server: %v", remote)
	}
	assertNoopOfflineIMAP(t, offlineimap, config, maildir)
}

func runOfflineIMAP(t *testing.T, offlineimap, config string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, offlineimap, append([]string{"-c", config, "-o", "-u", "basic"}, extra...)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "ERROR") {
		t.Fatalf("offlineimap: %v\n%s", err, out)
	}
	return string(out)
}

// offlineIMAPSent matches the commands offlineimap's imaplib writes in its -d imap log.
var offlineIMAPSent = regexp.MustCompile(`writer > b'[A-Z]+\d+ ((?:UID )?[A-Z]+)`)

// assertNoopOfflineIMAP runs offlineimap once more and fails if it sends a command that would
// change the server, or changes the Maildir.
func assertNoopOfflineIMAP(t *testing.T, offlineimap, config, maildir string) {
	t.Helper()
	before := maildirFileNames(t, maildir)
	out := runOfflineIMAP(t, offlineimap, config, "-d", "imap")
	sent := 0
	for _, m := range offlineIMAPSent.FindAllStringSubmatch(out, -1) {
		sent++
		switch m[1] {
		case "APPEND", "STORE", "UID STORE", "EXPUNGE", "UID EXPUNGE", "CREATE", "DELETE", "RENAME", "COPY", "UID COPY", "MOVE", "UID MOVE":
			t.Errorf("an offlineimap run with nothing to do sent %s", m[1])
		}
	}
	if sent == 0 {
		t.Fatalf("found no IMAP command in offlineimap's -d imap output:\n%s", out)
	}
	if after := maildirFileNames(t, maildir); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("an offlineimap run with nothing to do changed the Maildir:\nbefore %v\nafter  %v", before, after)
	}
}
