package mailfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// readAll reads every message of an mbox.
func readAll(t testing.TB, data string, limit int64) ([]MboxMessage, []string, []error) {
	r := NewMboxReader(strings.NewReader(data))
	var msgs []MboxMessage
	var bodies []string
	var errs []error
	for i := 0; i < 10000; i++ {
		var b bytes.Buffer
		m, err := r.Next(&b, limit)
		if errors.Is(err, io.EOF) {
			return msgs, bodies, errs
		}
		if err != nil {
			errs = append(errs, err)
			if !errors.Is(err, ErrTooLarge) {
				return msgs, bodies, errs
			}
			continue
		}
		msgs = append(msgs, m)
		bodies = append(bodies, b.String())
	}
	t.Fatal("mbox reader does not end")
	return nil, nil, nil
}

func TestMboxReader(t *testing.T) {
	data := "junk before the first message\n" +
		"From alice@example.org Tue Mar  5 10:00:00 2024\n" +
		"Subject: one\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1, Project-X\nX-UID: 7\n\n" +
		"body\n>From the start\n>>From twice\nFrom-not a separator\n\n" +
		"From bob Wed Dec 31 23:59:59 2025\n" +
		"Subject: two\n  continued\n\nlast line\n\n\n" +
		"From x Thu Jan  1 00:00:00 2026\nSubject: no body\n"
	msgs, bodies, errs := readAll(t, data, 1<<20)
	if len(errs) > 0 || len(msgs) != 3 {
		t.Fatalf("got %d messages, errors %v", len(msgs), errs)
	}
	want := []string{
		"Subject: one\r\n\r\nbody\r\nFrom the start\r\n>From twice\r\nFrom-not a separator\r\n",
		"Subject: two\r\n  continued\r\n\r\nlast line\r\n\r\n",
		"Subject: no body\r\n",
	}
	for i := range want {
		if bodies[i] != want[i] {
			t.Errorf("message %d = %q, want %q", i, bodies[i], want[i])
		}
	}
	if !slices.Equal(msgs[0].Flags, []string{`\Seen`, `\Answered`, `\Flagged`, "$Label1", "Project-X"}) || len(msgs[1].Flags) != 0 {
		t.Errorf("flags %v, %v", msgs[0].Flags, msgs[1].Flags)
	}
	if !msgs[0].Date.Equal(time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)) || msgs[1].Date.Year() != 2025 || msgs[0].Line != 2 {
		t.Errorf("dates %v %v, line %d", msgs[0].Date, msgs[1].Date, msgs[0].Line)
	}
	// A message over the limit is skipped with an error; the next one is read.
	msgs, _, errs = readAll(t, "From a Tue Mar  5 10:00:00 2024\n\n"+strings.Repeat("x", 5000)+"\nFrom b Tue Mar  5 10:00:00 2024\n\nsmall\n", 1000)
	if len(msgs) != 1 || len(errs) != 1 || !errors.Is(errs[0], ErrTooLarge) {
		t.Fatalf("over the limit: %d messages, errors %v", len(msgs), errs)
	}
}

func TestMboxRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewMboxWriter(&buf)
	date := time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)
	bodies := []string{
		"Subject: a\r\nStatus: O\r\n\r\nFrom here\r\n>From there\r\n",
		"Subject: header only",
		"Subject: b\r\n\r\nno final line ending",
	}
	flags := [][]string{{`\Seen`, `\Flagged`, "Work"}, nil, {`\Draft`, `\Deleted`, `\Answered`}}
	for i, b := range bodies {
		if err := w.Write(date, flags[i], strings.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	msgs, got, errs := readAll(t, buf.String(), 1<<20)
	if len(errs) > 0 || len(msgs) != 3 {
		t.Fatalf("read back %d messages, %v:\n%s", len(msgs), errs, buf.String())
	}
	// A message without a body comes back with an empty one: the blank line before the next
	// From_ line ends its header.
	want := []string{"Subject: a\r\n\r\nFrom here\r\n>From there\r\n", "Subject: header only\r\n\r\n", "Subject: b\r\n\r\nno final line ending\r\n"}
	for i := range want {
		if got[i] != want[i] || !msgs[i].Date.Equal(date) {
			t.Errorf("message %d: %q at %v, want %q", i, got[i], msgs[i].Date, want[i])
		}
		slices.Sort(msgs[i].Flags)
		slices.Sort(flags[i])
		if !slices.Equal(msgs[i].Flags, flags[i]) {
			t.Errorf("message %d flags %v, want %v", i, msgs[i].Flags, flags[i])
		}
	}
}

func TestParseMaildirInfo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		kw    string
		ok    bool
	}{
		{"1700000000.M1P2.host:2,FRS", []string{`\Flagged`, `\Answered`, `\Seen`}, "", true},
		{"1700000000.M1P2.host,S=123:2,DPTab", []string{`\Draft`, "$Forwarded", `\Deleted`}, "ab", true},
		{"1700000000.M1P2.host:2,", nil, "", true},
		{"1700000000.M1P2.host:2,SSzX", []string{`\Seen`}, "z", true},
		{"1700000000.M1P2.host;2,S", []string{`\Seen`}, "", true},
		{"1700000000.M1P2.host", nil, "", false},
	} {
		flags, kw, ok := ParseMaildirInfo(tc.name)
		if !slices.Equal(flags, tc.flags) || string(kw) != tc.kw || ok != tc.ok {
			t.Errorf("ParseMaildirInfo(%q) = %v, %q, %v", tc.name, flags, kw, ok)
		}
	}
	kw, err := ParseDovecotKeywords(strings.NewReader("0 $Label1\n1 Project-X\n26 TooFar\nx Bad\n3 bad(paren\n"))
	if err != nil || len(kw) != 2 || kw['a'] != "$Label1" || kw['b'] != "Project-X" {
		t.Fatalf("keywords %v, %v", kw, err)
	}
}

func TestMaildirRoundTrip(t *testing.T) {
	root := t.TempDir()
	date := time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)
	for _, folder := range []string{"INBOX", "Archive/2024"} {
		dir, err := MaildirFolderDir(root, folder)
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewMaildirWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		for uid := uint32(1); uid <= 3; uid++ {
			flags := []string{`\Seen`, "Project-X"}
			if uid == 2 {
				flags = []string{`\Flagged`, "$Label1", "Project-X"}
			}
			if err := w.Write(uid, date.Add(time.Duration(uid)*time.Hour), flags, strings.NewReader("Subject: m\r\n\r\nbody\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := MaildirFolderDir(root, "a.b/c"); err == nil {
		t.Error("a folder with a '.' accepted")
	}
	folders, err := MaildirFolders(root)
	if err != nil || len(folders) != 2 || folders[0].Name != "Archive/2024" || folders[1].Name != "INBOX" {
		t.Fatalf("folders %v, %v", folders, err)
	}
	msgs, err := MaildirMessages(folders[1].Dir)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("messages %v, %v", msgs, err)
	}
	m := msgs[1]
	slices.Sort(m.Flags)
	if !slices.Equal(m.Flags, []string{"$Label1", "Project-X", `\Flagged`}) || !m.Date.Equal(date.Add(2*time.Hour)) {
		t.Fatalf("message 2: %v at %v", m.Flags, m.Date)
	}
	f, err := os.Open(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	if err := CopyCRLF(&b, f, 1<<20); err != nil || b.String() != "Subject: m\r\n\r\nbody\r\n" {
		t.Fatalf("body %q, %v", b.String(), err)
	}
	raw, _ := os.ReadFile(m.Path)
	if string(raw) != "Subject: m\n\nbody\n" {
		t.Fatalf("file %q", raw)
	}
	if err := CopyCRLF(io.Discard, strings.NewReader(strings.Repeat("x\n", 100)), 50); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := MaildirFolders(filepath.Join(root, "cur")); err == nil {
		t.Fatal("a directory without Maildir folders accepted")
	}
}

func FuzzMboxReader(f *testing.F) {
	f.Add("From a Tue Mar  5 10:00:00 2024\nSubject: x\nStatus: RO\n\nbody\n>From y\n\nFrom b Wed Dec 31 23:59:59 2025\n\n")
	f.Add("junk\nFrom \n\n\n")
	f.Add("From a b c d e f g h\nX-Keywords: a,b ,(c\nX-Status: AFTD\n")
	f.Fuzz(func(t *testing.T, data string) {
		r := NewMboxReader(strings.NewReader(data))
		for i := 0; i <= len(data)+1; i++ {
			var b bytes.Buffer
			m, err := r.Next(&b, 256)
			if errors.Is(err, io.EOF) {
				return
			}
			if b.Len() > 256 {
				t.Fatalf("message of %d bytes over the limit", b.Len())
			}
			for _, fl := range m.Flags {
				if !strings.HasPrefix(fl, `\`) && !validKeyword(fl) {
					t.Fatalf("invalid keyword %q", fl)
				}
			}
			if err != nil && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v", err)
			}
		}
		t.Fatal("the reader does not end")
	})
}

func FuzzMboxRoundTrip(f *testing.F) {
	f.Add("Subject: x", "From me\n>From you\nline\r\nlast", true)
	f.Add("A: b\r\n c", "", false)
	f.Fuzz(func(t *testing.T, header, body string, seen bool) {
		// A well-formed message: header fields, a blank line, a body, CRLF endings.
		norm := func(s string) string {
			s = strings.ReplaceAll(s, "\r", "")
			return strings.ReplaceAll(s, "\n", "\r\n")
		}
		var fields []string
		for _, l := range strings.Split(strings.ReplaceAll(header, "\r", ""), "\n") {
			if name, _, ok := strings.Cut(l, ":"); ok && name != "" && !strings.ContainsAny(name, " \t") && !internalHeaders[strings.ToLower(name)] && !strings.HasPrefix(l, "From ") && !strings.HasPrefix(l, ">") {
				fields = append(fields, l)
			}
		}
		if len(fields) == 0 {
			return
		}
		msg := norm(strings.Join(fields, "\n")) + "\r\n\r\n" + norm(body)
		if !strings.HasSuffix(msg, "\r\n") {
			msg += "\r\n"
		}
		flags := []string{"Work"}
		if seen {
			flags = append(flags, `\Seen`)
		}
		var buf bytes.Buffer
		w := NewMboxWriter(&buf)
		if err := w.Write(time.Unix(1700000000, 0), flags, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		_, got, errs := readAll(t, buf.String(), 1<<20)
		if len(errs) > 0 || len(got) != 1 {
			t.Fatalf("read back %d messages, %v from %q", len(got), errs, buf.String())
		}
		if got[0] != msg {
			t.Fatalf("round trip of %q gave %q (mbox %q)", msg, got[0], buf.String())
		}
	})
}

func FuzzParseMaildirInfo(f *testing.F) {
	f.Add("1700000000.M1P2.host:2,FRSab")
	f.Add(":2,:2,zzzz")
	f.Add("x;2,DPT")
	f.Fuzz(func(t *testing.T, name string) {
		flags, kw, ok := ParseMaildirInfo(name)
		if !ok && (flags != nil || kw != nil) {
			t.Fatalf("no info but flags %v %q", flags, kw)
		}
		for _, c := range kw {
			if c < 'a' || c > 'z' {
				t.Fatalf("keyword letter %q", c)
			}
		}
		if len(flags) > 6 || len(kw) > 26 {
			t.Fatalf("duplicates: %v %q", flags, kw)
		}
	})
}

// TestMaildirFolderNames checks that Maildir++ folder levels are read and written in
// modified UTF-7 (RFC 3501 5.1.3), as Dovecot keeps them, and that a level that is not
// valid modified UTF-7 (a UTF-8 name, as with Dovecot's UTF-8 option) is kept as it is.
func TestMaildirFolderNames(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"", ".&AMk-t&AOk-", ".&AMk-t&AOk-.&ZeVnLIqe-", ".Tom &- Jerry", ".Café", ".a&b"} {
		if err := os.MkdirAll(filepath.Join(root, dir, "cur"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	folders, err := MaildirFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range folders {
		names = append(names, f.Name)
	}
	want := []string{"Café", "INBOX", "Tom & Jerry", "a&b", "Été", "Été/日本語"}
	if !slices.Equal(names, want) {
		t.Errorf("folders %q, want %q", names, want)
	}
	for name, dir := range map[string]string{"Été/日本語": ".&AMk-t&AOk-.&ZeVnLIqe-", "Tom & Jerry": ".Tom &- Jerry", "INBOX": ""} {
		got, err := MaildirFolderDir(root, name)
		if err != nil || got != filepath.Join(root, dir) {
			t.Errorf("MaildirFolderDir(%q) = %q, %v; want %q", name, got, err, filepath.Join(root, dir))
		}
	}
}
