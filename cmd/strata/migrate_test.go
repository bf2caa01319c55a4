package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

func TestParseAccountList(t *testing.T) {
	got, err := parseAccountList(strings.NewReader("# source target password\n\nalice alice@example.com /run/pw/alice\n  bob@old.example  bob@example.com pw/bob  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (accountLine{line: 3, user: "alice", target: "alice@example.com", passwordFile: "/run/pw/alice"}) || got[1].user != "bob@old.example" || got[1].line != 4 {
		t.Fatalf("parsed %+v", got)
	}
	for _, bad := range []string{"", "# only a comment\n", "alice alice@example.com\n", "alice alice /pw\n", "a b@c d e\n", strings.Repeat("x", maxAccountLine+1)} {
		if _, err := parseAccountList(strings.NewReader(bad)); err == nil {
			t.Errorf("parseAccountList(%.40q) accepted", bad)
		}
	}
}

func FuzzParseAccountList(f *testing.F) {
	f.Add("alice alice@example.com /pw\n# c\n")
	f.Add("a b@c d e\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		lines, err := parseAccountList(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, l := range lines {
			if l.user == "" || !strings.Contains(l.target, "@") || l.passwordFile == "" {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}

// TestImportExportCommands: `strata import mbox` into a mailbox, `strata export --format
// mbox` back out, through the blob directory of a running server; a second import adds
// nothing; `strata migrate` refuses what it cannot run.
func TestImportExportCommands(t *testing.T) {
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv, err := embedded.Start(ctx, embedded.Config{
		DataDir: dataDir, IMAPListen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", BlobGCInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	mustStrata(t, srv, "user", "add", "alice@acme.test", "--password", "pw")
	blobDir := filepath.Join(dataDir, "blobs")
	mbox := filepath.Join(t.TempDir(), "old.mbox")
	data := "From a@b Tue Mar  5 10:00:00 2024\nSubject: one\nStatus: RO\nX-Keywords: Work\n\nhello\n>From here\n\n" +
		"From c@d Wed Mar  6 10:00:00 2024\nSubject: two\n\nbye\n"
	if err := os.WriteFile(mbox, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustStrata(t, srv, "import", "mbox", mbox, "--to", "alice@acme.test", "--mailbox", "Old", "--blob-dir", blobDir)
	if !strings.Contains(out, "Old      2     2         0        0       2      ok") {
		t.Fatalf("import: %s", out)
	}
	if out := mustStrata(t, srv, "import", "mbox", mbox, "--to", "alice@acme.test", "--mailbox", "Old", "--blob-dir", blobDir); !strings.Contains(out, "Old      2     0         2        2       2      ok") {
		t.Fatalf("second import: %s", out)
	}
	dir := t.TempDir()
	mustStrata(t, srv, "export", "alice@acme.test", "--to", dir, "--format", "mbox", "--blob-dir", blobDir)
	exported, err := os.ReadFile(filepath.Join(dir, "Old.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	want := "From MAILER-DAEMON Tue Mar  5 10:00:00 2024\nSubject: one\nStatus: RO\nX-Keywords: Work\n\nhello\n>From here\n\n" +
		"From MAILER-DAEMON Wed Mar  6 10:00:00 2024\nSubject: two\nStatus: O\n\nbye\n\n"
	if string(exported) != want {
		t.Fatalf("exported %q, want %q", exported, want)
	}
	for _, bad := range [][]string{
		{"migrate", "--to", "alice@acme.test", "--blob-dir", blobDir},
		{"migrate", "--from", "imaps://bob@localhost", "--blob-dir", blobDir},
		{"migrate", "--from", "imaps://bob:secret@localhost", "--to", "alice@acme.test", "--blob-dir", blobDir},
		{"migrate", "--from", "imaps://localhost", "--to", "alice@acme.test", "--accounts", mbox, "--blob-dir", blobDir},
		{"import", "mbox", mbox, "--to", "alice@acme.test"},
		{"export", "alice@acme.test", "--to", dir, "--format", "pst", "--blob-dir", blobDir},
	} {
		if out, err := strata(t, srv, bad...); err == nil {
			t.Errorf("strata %s succeeded: %s", strings.Join(bad, " "), out)
		}
	}
}
