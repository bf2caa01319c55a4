package frontend_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
)

var multipartMessage = strings.ReplaceAll(`From: Bob <bob@example.net>
To: demo@example.com
Subject: Report
Date: Tue, 1 Oct 2024 10:00:00 +0000
Message-ID: <report@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

--XYZ
Content-Type: text/plain; charset=utf-8

See attached.
--XYZ
Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64

AAECAwQFBgcICQ==
--XYZ--
`, "\n", "\r\n")

func TestAppendAndFetch(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	uid := appendMessage(t, c, "INBOX", multipartMessage, imap.FlagFlagged)
	if uid != 1 {
		t.Errorf("APPENDUID uid = %d", uid)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		Flags: true, UID: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true},
			{Peek: true, Specifier: imap.PartSpecifierHeader},
			{Peek: true, Part: []int{1}},
			{Peek: true, Part: []int{2}, Specifier: imap.PartSpecifierMIME},
			{Peek: true, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "From"}},
			{Peek: true, Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject", "From", "To", "Date", "Message-ID", "MIME-Version"}},
			{Peek: true, Part: []int{2}, Partial: &imap.SectionPartial{Offset: 4, Size: 6}},
		},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.UID != uid || m.RFC822Size != int64(len(multipartMessage)) || !slices.Contains(m.Flags, imap.FlagFlagged) || slices.Contains(m.Flags, imap.FlagSeen) {
		t.Errorf("UID %d size %d flags %v", m.UID, m.RFC822Size, m.Flags)
	}
	if m.Envelope == nil || m.Envelope.Subject != "Report" || len(m.Envelope.From) != 1 || m.Envelope.From[0].Addr() != "bob@example.net" {
		t.Errorf("ENVELOPE = %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || !strings.EqualFold(mp.Subtype, "mixed") || len(mp.Children) != 2 {
		t.Fatalf("BODYSTRUCTURE = %#v", m.BodyStructure)
	}
	section := func(i int) string { return string(m.FindBodySection(fetchSections(m)[i])) }
	if got := section(0); got != multipartMessage {
		t.Errorf("BODY[] = %q", got)
	}
	header := multipartMessage[:strings.Index(multipartMessage, "\r\n\r\n")+4]
	if got := section(1); got != header {
		t.Errorf("BODY[HEADER] = %q", got)
	}
	if got := section(2); got != "See attached." {
		t.Errorf("BODY[1] = %q", got)
	}
	if got := section(3); !strings.HasPrefix(got, "Content-Type: application/octet-stream") || !strings.HasSuffix(got, "\r\n\r\n") {
		t.Errorf("BODY[2.MIME] = %q", got)
	}
	if got := section(4); got != "From: Bob <bob@example.net>\r\nSubject: Report\r\n\r\n" {
		t.Errorf("BODY[HEADER.FIELDS (Subject From)] = %q", got)
	}
	if got := section(5); !strings.HasPrefix(got, "Content-Type: multipart/mixed") {
		t.Errorf("BODY[HEADER.FIELDS.NOT (...)] = %q", got)
	}
	if got := section(6); got != "AwQFBg" {
		t.Errorf("BODY[2]<4.6> = %q", got)
	}

	// PEEK left \Seen alone; BODY[TEXT] sets it and reports the new flags.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("BODY[TEXT] did not report \\Seen: %v", msgs[0].Flags)
	}
}

// fetchSections returns the body sections of a fetched message in request order.
func fetchSections(m *imapclient.FetchMessageBuffer) []*imap.FetchItemBodySection {
	var out []*imap.FetchItemBodySection
	for _, s := range m.BodySection {
		out = append(out, s.Section)
	}
	return out
}

func TestFetchRaw(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	msg := testMessage("raw", "hello raw")
	appendMessage(t, c, "INBOX", msg)
	rc := loginRaw(t, srv)
	rc.ok("EXAMINE INBOX")
	got := rc.ok("FETCH 1 (UID RFC822.SIZE FLAGS)")
	if want := fmt.Sprintf("* 1 FETCH (UID 1 RFC822.SIZE %d FLAGS ())", len(msg)); len(got) != 1 || got[0] != want {
		t.Errorf("FETCH = %q, want %q", got, want)
	}
	got = rc.ok("UID FETCH 1 (BODY[]<0.5>)")
	if want := "* 1 FETCH (UID 1 BODY[]<0> {5}\r\nFrom:)"; len(got) != 1 || got[0] != want {
		t.Errorf("UID FETCH partial = %q, want %q", got, want)
	}
	// EXAMINE is read-only: BODY[] does not set \Seen (RFC 9051 6.3.3).
	got = rc.ok("FETCH 1 (RFC822)")
	if len(got) != 1 || strings.Contains(got[0], `\Seen`) || !strings.HasPrefix(got[0], fmt.Sprintf("* 1 FETCH (RFC822 {%d}", len(msg))) {
		t.Errorf("FETCH RFC822 = %q", got)
	}
	if got := rc.ok("FETCH 1 FLAGS"); got[0] != "* 1 FETCH (FLAGS ())" {
		t.Errorf("flags after EXAMINE FETCH = %q", got)
	}
	got = rc.ok("FETCH 1 (BODY[1] BODY[5] RFC822.HEADER)")
	if len(got) != 1 || !strings.Contains(got[0], "BODY[1] {11}\r\nhello raw\r\n") || !strings.Contains(got[0], "BODY[5] {0}\r\n") {
		t.Errorf("FETCH sections = %q", got)
	}
	rc.expect("FETCH 2 FLAGS", "BAD")
	rc.expect("FETCH 1 (FLAGS BOGUS)", "BAD")
	rc.ok("UID FETCH 99 FLAGS")
	rc.ok("FETCH 1:* FAST")
	rc.expect("STORE 1 +FLAGS (\\Seen)", "NO")
}

func TestAppendLarge(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	// 600 KiB, streamed through the spool; fetched back in ranges.
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 600*1024/65)
	msg := testMessage("large", body)
	uid := appendMessage(t, c, "INBOX", msg)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cmd := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	m := cmd.Next()
	if m == nil {
		t.Fatal("no message")
	}
	var got []byte
	for {
		item := m.Next()
		if item == nil {
			break
		}
		if sec, ok := item.(imapclient.FetchItemDataBodySection); ok {
			got, _ = io.ReadAll(sec.Literal)
		}
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Errorf("BODY[] of %d bytes differs from the %d appended", len(got), len(msg))
	}
}

// TestFetchMetadataItemsNeverReadBodies removes every body from the blob store and checks
// that ENVELOPE, BODYSTRUCTURE, FLAGS, RFC822.SIZE, INTERNALDATE and the top-level header
// are still served (they come from metadata, parsed once at APPEND), while a body section
// fails with NO and leaves the session usable.
func TestFetchMetadataItemsNeverReadBodies(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir = dataDir })
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("no body needed", "The body."))
	if err := os.RemoveAll(filepath.Join(dataDir, "blobs", "t")); err != nil {
		t.Fatal(err)
	}

	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	untagged := rc.ok("FETCH 1 (FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	joined := strings.Join(untagged, "\n")
	for _, want := range []string{`"no body needed"`, `BODYSTRUCTURE ("TEXT" "PLAIN"`, "RFC822.SIZE ", "Subject: no body needed"} {
		if !strings.Contains(joined, want) {
			t.Errorf("metadata-only FETCH lacks %q:\n%s", want, joined)
		}
	}
	rc.expect("FETCH 1 (BODY.PEEK[TEXT])", "NO")
	rc.ok("NOOP")
}
