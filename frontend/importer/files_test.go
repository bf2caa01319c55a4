package importer_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/frontend/exporter"
	"github.com/strata-mail/strata/frontend/importer"
	"github.com/strata-mail/strata/frontend/importer/importertest"
	"github.com/strata-mail/strata/frontend/mailfile"
)

// fileMessage is a message as a Maildir writer such as Dovecot leaves it.
type fileMessage struct {
	folder string // Maildir++ directory name, "" for INBOX
	name   string // file name in cur/
	date   time.Time
	body   []byte // LF line endings
	flags  []string
}

// dovecotMaildir writes a Maildir++ tree as Dovecot keeps one: flags in the names, keyword
// letters standing for the lines of each folder's dovecot-keywords, delivery times as file
// times, LF line endings.
func dovecotMaildir(t *testing.T, root string) []fileMessage {
	t.Helper()
	corpus := bench.Corpus{Seed: 7, MaxSize: 64 << 10}
	base := time.Date(2023, 11, 2, 8, 0, 0, 0, time.UTC)
	var msgs []fileMessage
	for fi, folder := range []string{"", ".Sent", ".Archive.2023"} {
		dir := filepath.Join(root, folder)
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte("0 $Label1\n1 Project-X\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for i := range 9 {
			info, flags := []string{":2,S", ":2,FRS", ":2,Sa", ":2,Tb", ":2,", ":2,DSab"}, [][]string{{`\Seen`}, {`\Flagged`, `\Answered`, `\Seen`}, {`\Seen`, "$Label1"}, {`\Deleted`, "Project-X"}, nil, {`\Draft`, `\Seen`, "$Label1", "Project-X"}}
			body := bytes.ReplaceAll(corpus.Message(uint64(fi), i), []byte("\r\n"), []byte("\n"))
			m := fileMessage{folder: folder, date: base.Add(time.Duration(fi*100+i) * time.Hour), body: body}
			m.name = fmt.Sprintf("%d.M%dP1.host,S=%d", m.date.Unix(), i, len(body)) + info[i%len(info)]
			m.flags = flags[i%len(flags)]
			path := filepath.Join(dir, "cur", m.name)
			if i == 8 {
				// Not yet seen by a client: in new/, without info.
				m.name = strings.TrimSuffix(m.name, info[i%len(info)])
				path, m.flags = filepath.Join(dir, "new", m.name), nil
			}
			if err := os.WriteFile(path, body, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, m.date, m.date); err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// mailboxContent fetches every message of a mailbox: body, sorted flags, internal date.
func mailboxContent(t *testing.T, c *imapclient.Client, name string) map[string]fileMessage {
	t.Helper()
	if _, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %s: %v", name, err)
	}
	var all imap.UIDSet
	all.AddRange(1, 0)
	got, err := c.Fetch(all, &imap.FetchOptions{Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fileMessage{}
	for _, m := range got {
		var body []byte
		for _, b := range m.BodySection {
			body = b.Bytes
		}
		var flags []string
		for _, f := range m.Flags {
			if f != `\Recent` {
				flags = append(flags, string(f))
			}
		}
		slices.Sort(flags)
		out[string(body)] = fileMessage{date: m.InternalDate.UTC(), body: body, flags: flags}
	}
	return out
}

func sorted(l []string) []string {
	l = slices.Clone(l)
	slices.Sort(l)
	return l
}

// TestImportMaildirThenExport imports a Dovecot Maildir++ tree (flags and keywords from
// the names and dovecot-keywords, dates from file times), imports it again (nothing is
// added), exports the account as Maildir and as mbox, and imports the mbox back: each
// step keeps bodies, flags, keywords and internal dates.
func TestImportMaildirThenExport(t *testing.T) {
	root := t.TempDir()
	msgs := dovecotMaildir(t, root)
	s := importertest.Start(t, "files@example.com")
	ctx := context.Background()
	reports, err := s.Target.ImportMaildir(ctx, root, "", importer.FileOptions{Batch: 4, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 3 {
		t.Fatalf("reports %+v", reports)
	}
	for _, r := range reports {
		if r.Read != 9 || r.Imported != 9 || len(r.Failures) > 0 || r.After != r.Before+9 {
			t.Fatalf("report %+v", r)
		}
	}
	c := s.Client(t)
	names := map[string]string{"": "INBOX", ".Sent": "Sent", ".Archive.2023": "Archive/2023"}
	check := func(names map[string]string) {
		t.Helper()
		for folder, name := range names {
			got := mailboxContent(t, c, name)
			n := 0
			for _, m := range msgs {
				if m.folder != folder {
					continue
				}
				n++
				crlf := strings.ReplaceAll(string(m.body), "\n", "\r\n")
				g, ok := got[crlf]
				switch {
				case !ok:
					t.Errorf("%s: message %s missing", name, m.name)
				case !slices.Equal(g.flags, sorted(m.flags)):
					t.Errorf("%s: %s has flags %v, want %v", name, m.name, g.flags, sorted(m.flags))
				case !g.date.Equal(m.date):
					t.Errorf("%s: %s has date %v, want %v", name, m.name, g.date, m.date)
				}
			}
			if len(got) != n {
				t.Errorf("%s holds %d messages, want %d", name, len(got), n)
			}
		}
	}
	check(names)

	again, err := s.Target.ImportMaildir(ctx, root, "", importer.FileOptions{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Imported != 0 || r.Skipped != 9 {
			t.Fatalf("second import %+v", r)
		}
	}

	// Export as Maildir: the files are the originals, flags and keywords in their names.
	out := t.TempDir()
	if _, err := exporter.Export(ctx, exporter.Config{Metadata: s.Metadata, Blobs: s.Blobs, Account: s.Email, Dir: out, Format: exporter.Maildir}); err != nil {
		t.Fatal(err)
	}
	for folder, name := range names {
		exported, err := mailfile.MaildirMessages(filepath.Join(out, folder))
		if err != nil {
			t.Fatal(err)
		}
		byBody := map[string]mailfile.MaildirMessage{}
		for _, e := range exported {
			body, err := os.ReadFile(e.Path)
			if err != nil {
				t.Fatal(err)
			}
			byBody[string(body)] = e
		}
		for _, m := range msgs {
			if m.folder != folder {
				continue
			}
			e, ok := byBody[string(m.body)]
			if !ok || !slices.Equal(sorted(e.Flags), sorted(m.flags)) || !e.Date.Equal(m.date) {
				t.Errorf("export of %s: %s as %+v (found %v)", name, m.name, e, ok)
			}
		}
	}

	// Export as mbox, and import the INBOX mbox into a new mailbox.
	mboxDir := t.TempDir()
	if _, err := exporter.Export(ctx, exporter.Config{Metadata: s.Metadata, Blobs: s.Blobs, Account: s.Email, Dir: mboxDir, Format: exporter.Mbox}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Target.ImportMbox(ctx, filepath.Join(mboxDir, "INBOX.mbox"), "Restored", importer.FileOptions{SpoolDir: t.TempDir()})
	if err != nil || rep.Imported != 9 {
		t.Fatalf("mbox import %+v, %v", rep, err)
	}
	check(map[string]string{"": "Restored"})
}
