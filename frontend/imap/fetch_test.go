package imap_test

import (
	"bytes"
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

func TestAppendAndFetch(t *testing.T) { bothModes(t, testAppendAndFetch) }

func testAppendAndFetch(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := loginMode(t, srv, rev2)
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

// TestFetchEnvelopeAddressComments: comments in address fields are CFWS, not addresses
// (RFC 5322 3.2.2, 3.4): an empty group holding a comment stays empty, a comment inside an
// angle-addr is no name, and "user@host (Real Name)" keeps its comment as the name. The
// message is imaptest's fetch-envelope message 4.
func TestFetchEnvelopeAddressComments(t *testing.T) { bothModes(t, testFetchEnvelopeAddressComments) }

func testFetchEnvelopeAddressComments(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", strings.ReplaceAll(`Date: Thu, 15 Feb 2007 01:02:03 +0200
From: user@domain (Real Name)
Sender: <user-from (comment)@ (comment) domain.org>
To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;
Cc: group:;, group2: (foo) ;
Bcc: (only a comment)

body
`, "\n", "\r\n"))
	rc := loginRawMode(t, srv, rev2)
	rc.ok("EXAMINE INBOX")
	want := `* 1 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL ` +
		`(("Real Name" NIL "user" "domain")) ` +
		`((NIL NIL "user-from" "domain.org")) ` +
		`(("Real Name" NIL "user" "domain")) ` +
		`((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) ` +
		`((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) ` +
		`NIL NIL NIL))`
	if got := rc.ok("FETCH 1 ENVELOPE"); !slices.Equal(got, []string{want}) {
		t.Errorf("FETCH ENVELOPE =\n%q\nwant\n%q", got, want)
	}
}

func TestFetchRaw(t *testing.T) { bothModes(t, testFetchRaw) }

func testFetchRaw(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	msg := testMessage("raw", "hello raw")
	appendMessage(t, c, "INBOX", msg)
	rc := loginRawMode(t, srv, rev2)
	// Nobody has selected INBOX since the delivery: EXAMINE shows the message as \Recent
	// in IMAP4rev1 (RFC 3501 6.3.2), IMAP4rev2 has no \Recent (RFC 9051 appendix E).
	rc.ok("EXAMINE INBOX")
	got := rc.ok("FETCH 1 (UID RFC822.SIZE FLAGS)")
	if want := fmt.Sprintf("* 1 FETCH (UID 1 RFC822.SIZE %d FLAGS %s)", len(msg), recentFlags(rev2, "")); len(got) != 1 || got[0] != want {
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
	if got := rc.ok("FETCH 1 FLAGS"); len(got) != 1 || got[0] != "* 1 FETCH (FLAGS "+recentFlags(rev2, "")+")" {
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

func TestAppendLarge(t *testing.T) { bothModes(t, testAppendLarge) }

func testAppendLarge(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := loginMode(t, srv, rev2)
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
	bothModes(t, testFetchMetadataItemsNeverReadBodies)
}

func testFetchMetadataItemsNeverReadBodies(t *testing.T, rev2 bool) {
	dataDir := t.TempDir()
	// A file per body, so that removing the files removes every body (packed
	// bodies would stay in their segment files).
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir, cfg.BlobFilePerBody = dataDir, true })
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("no body needed", "The body."))
	if err := os.RemoveAll(filepath.Join(dataDir, "blobs", "t")); err != nil {
		t.Fatal(err)
	}

	rc := loginRawMode(t, srv, rev2)
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

// binaryMessage has a base64 part holding NUL bytes, a quoted-printable UTF-8 part with a
// soft line break, and a part in an encoding the server does not know.
var binaryMessage = strings.ReplaceAll(`From: Bob <bob@example.net>
Subject: binary
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: text/plain

plain
--B
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAECAwQF
BgcICQ==
--B
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: Quoted-Printable

Caf=C3=A9 au l=
ait
--B
Content-Type: application/octet-stream
Content-Transfer-Encoding: x-uuencode

begin 644 x
--B--
`, "\n", "\r\n")

func TestFetchBinary(t *testing.T) { bothModes(t, testFetchBinary) }

func testFetchBinary(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := loginMode(t, srv, rev2)
	appendMessage(t, c, "INBOX", binaryMessage)
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	for cmd, want := range map[string]string{
		// RFC 3516 / RFC 9051 6.4.5: decoded sizes; an identity part is its stored size.
		"FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[3])": "* 1 FETCH (BINARY.SIZE[1] 5 BINARY.SIZE[2] 10 BINARY.SIZE[3] 13)",
		// NUL in the content: a literal8.
		"FETCH 1 BINARY.PEEK[2]": "* 1 FETCH (BINARY[2] ~{10}\r\n\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09)",
		"FETCH 1 BINARY.PEEK[3]": "* 1 FETCH (BINARY[3] {13}\r\nCaf\u00e9 au lait)",
		// Partials count decoded octets, and the response names the origin only.
		"fetch 1 binary.peek[2]<3.4>":   "* 1 FETCH (BINARY[2]<3> ~{4}\r\n\x03\x04\x05\x06)",
		"FETCH 1 BINARY.PEEK[3]<9.100>": "* 1 FETCH (BINARY[3]<9> {4}\r\nlait)",
		"FETCH 1 BINARY.PEEK[3]<99.1>":  "* 1 FETCH (BINARY[3]<99> {0}\r\n)",
		"FETCH 1 BINARY.PEEK[9]":        "* 1 FETCH (BINARY[9] {0}\r\n)",
	} {
		got := rc.ok(cmd)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", cmd, got, want)
		}
	}
	rc.expect("FETCH 1 BINARY.PEEK[4]", "NO [UNKNOWN-CTE]")
	rc.expect("FETCH 1 BINARY.SIZE[4]", "NO [UNKNOWN-CTE]")
	rc.expect("FETCH 1 BINARY[1.MIME]", "BAD")
	// Without .PEEK, BINARY sets \Seen and reports it (RFC 9051 6.4.5).
	if got := rc.ok("FETCH 1 BINARY[1]"); len(got) != 1 || !strings.HasSuffix(got[0], " FLAGS "+recentFlags(rev2, `\Seen`)+")") {
		t.Errorf("FETCH BINARY[1] = %q", got)
	}

	// imapclient reads the same sections.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		BinarySection:     []*imap.FetchItemBinarySection{{Part: []int{2}, Peek: true}},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{3}}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || len(msgs[0].BinarySection) != 1 || !bytes.Equal(msgs[0].BinarySection[0].Bytes, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("imapclient BINARY[2] = %+v", msgs)
	}
	if len(msgs) == 1 && (len(msgs[0].BinarySectionSize) != 1 || msgs[0].BinarySectionSize[0].Size != 13) {
		t.Errorf("imapclient BINARY.SIZE[3] = %+v", msgs[0].BinarySectionSize)
	}
}

// binaryPartMessage has a Content-Transfer-Encoding: binary part (RFC 2045 2.9) that starts
// and ends with NUL, as imaptest appends one with a literal8 (RFC 3516 4.4).
var binaryPartMessage = strings.ReplaceAll(`From: Bob <bob@example.net>
Subject: binary part
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: application/octet-stream
Content-Transfer-Encoding: binary

`, "\n", "\r\n") + binaryPartContent + "\r\n--B--\r\n"

const binaryPartContent = "\x00\x01\x02\r\n\xff\x00"

// TestFetchLiteral8Message: the BODY[] sections of a message appended with a synchronising
// literal8 keep every octet of the binary part, NUL sent as 0x80, in a literal; only BINARY[]
// answers a literal8 with the NULs (RFC 9051 4.3.1, 7.5.2 and 9, RFC 3516 4.3). An IMAP4rev2
// session gets the same answers: literal8 is no BODY[] syntax in either version.
func TestFetchLiteral8Message(t *testing.T) {
	srv := startServer(t)
	char8 := func(s string) string { return strings.ReplaceAll(s, "\x00", "\x80") }
	text := binaryPartMessage[strings.Index(binaryPartMessage, "\r\n\r\n")+4:]
	bothModes(t, func(t *testing.T, rev2 bool) {
		rc := loginRawMode(t, srv, rev2)
		mailbox := fmt.Sprintf("Rev2-%v", rev2)
		rc.ok("CREATE " + mailbox)
		rc.n++
		tag := fmt.Sprintf("x%d", rc.n)
		rc.writeExpect(fmt.Sprintf("%s APPEND %s ~{%d}\r\n", tag, mailbox, len(binaryPartMessage)), "+ ")
		rc.write(binaryPartMessage + "\r\n")
		if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, "OK [APPENDUID ") {
			t.Fatalf("APPEND literal8: %q", tagged)
		}
		rc.ok("SELECT " + mailbox)
		for cmd, want := range map[string]string{
			"FETCH 1 BODY.PEEK[1]":      "* 1 FETCH (BODY[1] {7}\r\n\x80\x01\x02\r\n\xff\x80)",
			"FETCH 1 BODY.PEEK[1]<1.4>": "* 1 FETCH (BODY[1]<1> {4}\r\n\x01\x02\r\n)",
			"FETCH 1 BODY.PEEK[]":       fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n%s)", len(binaryPartMessage), char8(binaryPartMessage)),
			"FETCH 1 BODY.PEEK[TEXT]":   fmt.Sprintf("* 1 FETCH (BODY[TEXT] {%d}\r\n%s)", len(text), char8(text)),
			"FETCH 1 RFC822.SIZE":       fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d)", len(binaryPartMessage)),
			"FETCH 1 BINARY.PEEK[1]":    "* 1 FETCH (BINARY[1] ~{7}\r\n" + binaryPartContent + ")",
			"FETCH 1 BINARY.SIZE[1]":    "* 1 FETCH (BINARY.SIZE[1] 7)",
			"FETCH 1 BINARY.PEEK[]":     fmt.Sprintf("* 1 FETCH (BINARY[] ~{%d}\r\n%s)", len(binaryPartMessage), binaryPartMessage),
		} {
			checkLines(t, cmd, rc.ok(cmd), []string{want})
		}
	})
}

// TestFetchBinaryNULInIdentityPart: a 7bit or 8bit part, or an encapsulated message, of a
// message appended as a literal8 may hold NUL although RFC 2045 2.7 and 2.8 forbid it; its
// BINARY[] is then a literal8 of the exact octets (RFC 9051 4.3.1), and a string otherwise
// (RFC 9051 7.5.2).
func TestFetchBinaryNULInIdentityPart(t *testing.T) { bothModes(t, testFetchBinaryNULInIdentityPart) }

func testFetchBinaryNULInIdentityPart(t *testing.T, rev2 bool) {
	srv := startServer(t)
	msg := strings.ReplaceAll(`From: Bob <bob@example.net>
Subject: NUL in text
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B"

--B
Content-Type: text/plain

plain
--B
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

a_b
--B
Content-Type: message/rfc822

Subject: inner

c_d
--B--
`, "\n", "\r\n")
	msg = strings.ReplaceAll(msg, "_", "\x00")
	rc := loginRawMode(t, srv, rev2)
	rc.ok(fmt.Sprintf("APPEND INBOX ~{%d+}\r\n%s", len(msg), msg))
	rc.ok("SELECT INBOX")
	for cmd, want := range map[string]string{
		"FETCH 1 BINARY.PEEK[1]":      "* 1 FETCH (BINARY[1] {5}\r\nplain)",
		"FETCH 1 BINARY.PEEK[2]":      "* 1 FETCH (BINARY[2] ~{3}\r\na\x00b)",
		"FETCH 1 BINARY.PEEK[2]<2.1>": "* 1 FETCH (BINARY[2]<2> ~{1}\r\nb)",
		"FETCH 1 BINARY.SIZE[2]":      "* 1 FETCH (BINARY.SIZE[2] 3)",
		"FETCH 1 BODY.PEEK[2]":        "* 1 FETCH (BODY[2] {3}\r\na\x80b)",
		"FETCH 1 BINARY.PEEK[3]":      "* 1 FETCH (BINARY[3] ~{21}\r\nSubject: inner\r\n\r\nc\x00d)",
		"FETCH 1 BINARY.PEEK[3.1]":    "* 1 FETCH (BINARY[3.1] ~{3}\r\nc\x00d)",
		"FETCH 1 BODY.PEEK[3.TEXT]":   "* 1 FETCH (BODY[3.TEXT] {3}\r\nc\x80d)",
		"FETCH 1 BINARY.SIZE[3]":      "* 1 FETCH (BINARY.SIZE[3] 21)",
	} {
		checkLines(t, cmd, rc.ok(cmd), []string{want})
	}
}

// nestedMessage is a multipart whose second part is a message/rfc822 that is itself
// multipart, as in the RFC 9051 6.4.5 part-numbering example.
var nestedMessage = strings.ReplaceAll(`From: Outer <outer@example.org>
Subject: outer
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="O"

--O
Content-Type: text/plain

outer text
--O
Content-Type: message/rfc822

From: Inner <inner@example.org>
Subject: inner
Content-Type: multipart/alternative; boundary="I"

--I
Content-Type: text/plain

inner plain
--I
Content-Type: text/html

<p>inner html</p>
--I--
--O--
`, "\n", "\r\n")

func TestFetchSections(t *testing.T) { bothModes(t, testFetchSections) }

func testFetchSections(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", nestedMessage)
	appendMessage(t, c, "INBOX", testMessage("second", "two"))
	appendMessage(t, c, "INBOX", testMessage("third", "three"))
	rc := loginRawMode(t, srv, rev2)
	rc.ok("EXAMINE INBOX")
	innerHeader := "From: Inner <inner@example.org>\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=\"I\"\r\n\r\n"
	for cmd, want := range map[string]string{
		"FETCH 1 BODY[1]":                             "* 1 FETCH (BODY[1] {10}\r\nouter text)",
		"FETCH 1 BODY[2.HEADER]":                      fmt.Sprintf("* 1 FETCH (BODY[2.HEADER] {%d}\r\n%s)", len(innerHeader), innerHeader),
		"FETCH 1 BODY[2.1]":                           "* 1 FETCH (BODY[2.1] {11}\r\ninner plain)",
		"FETCH 1 BODY[2.2]":                           "* 1 FETCH (BODY[2.2] {17}\r\n<p>inner html</p>)",
		"FETCH 1 BODY[2.2.MIME]":                      "* 1 FETCH (BODY[2.2.MIME] {27}\r\nContent-Type: text/html\r\n\r\n)",
		"FETCH 1 BODY[2.HEADER.FIELDS (subject)]":     "* 1 FETCH (BODY[2.HEADER.FIELDS (subject)] {18}\r\nSubject: inner\r\n\r\n)",
		"fetch 1 body.peek[header.fields.not (From)]": "",
		"FETCH 1 BODY[2.TEXT]<0.4>":                   "* 1 FETCH (BODY[2.TEXT]<0> {4}\r\n--I\r)",
		"FETCH 1 BODY[]<100000.10>":                   "* 1 FETCH (BODY[]<100000> {0}\r\n)",
		"FETCH 1 BODY[1.TEXT]":                        "* 1 FETCH (BODY[1.TEXT] {0}\r\n)",
		"FETCH 3:2 UID":                               "* 2 FETCH (UID 2)\n* 3 FETCH (UID 3)",
		"FETCH 2,* (UID)":                             "* 2 FETCH (UID 2)\n* 3 FETCH (UID 3)",
		"UID FETCH 3:* UID":                           "* 3 FETCH (UID 3)",
		"UID FETCH 9:* UID":                           "* 3 FETCH (UID 3)", // RFC 9051 6.4.9: n:* always names the last
		"UID FETCH 4:5 UID":                           "",
	} {
		got := strings.Join(rc.ok(cmd), "\n")
		if strings.HasPrefix(cmd, "fetch 1 body.peek[header.fields.not") {
			if !strings.HasPrefix(got, "* 1 FETCH (BODY[HEADER.FIELDS.NOT (From)] {") || strings.Contains(got, "From:") || !strings.Contains(got, "Subject: outer") {
				t.Errorf("%s = %q", cmd, got)
			}
			continue
		}
		if got != want {
			t.Errorf("%s = %q, want %q", cmd, got, want)
		}
	}
	// The macros of RFC 9051 6.4.5.
	for macro, want := range map[string][]string{
		"FAST": {"FLAGS ", "INTERNALDATE ", "RFC822.SIZE "},
		"ALL":  {"FLAGS ", "INTERNALDATE ", "RFC822.SIZE ", "ENVELOPE ("},
		"FULL": {"FLAGS ", "INTERNALDATE ", "RFC822.SIZE ", "ENVELOPE (", "BODY ("},
	} {
		got := rc.ok("FETCH 2 " + macro)
		for _, w := range want {
			if len(got) != 1 || !strings.Contains(got[0], w) {
				t.Errorf("FETCH %s = %q, lacks %q", macro, got, w)
			}
		}
	}
	// RFC 3501 6.4.5: RFC822.HEADER and RFC822.TEXT.
	if got := rc.ok("FETCH 2 (RFC822.HEADER RFC822.TEXT)"); len(got) != 1 || !strings.Contains(got[0], "RFC822.HEADER {") || !strings.Contains(got[0], "RFC822.TEXT {5}\r\ntwo\r\n") {
		t.Errorf("FETCH RFC822.HEADER RFC822.TEXT = %q", got)
	}
	for _, cmd := range []string{"FETCH 0 UID", "FETCH 1:4 UID", "FETCH 1 (BODY[0])", "FETCH 1 BODY[]<0.0>", "FETCH 1 (ALL)", "FETCH 1 BODY[HEADER.FIELDS ()]", "FETCH 1 BODY[TEXT.MIME]", "FETCH 1 UID UID", "FETCH , UID"} {
		rc.expect(cmd, "BAD")
	}
}

func TestFetchEmptyMailbox(t *testing.T) { bothModes(t, testFetchEmptyMailbox) }

func testFetchEmptyMailbox(t *testing.T, rev2 bool) {
	srv := startServer(t)
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	if got := rc.ok("FETCH 1:* FLAGS"); len(got) != 0 {
		t.Errorf("FETCH 1:* in an empty mailbox = %q", got)
	}
	if got := rc.ok("UID FETCH 1:* FLAGS"); len(got) != 0 {
		t.Errorf("UID FETCH 1:* in an empty mailbox = %q", got)
	}
	rc.expect("FETCH 1 FLAGS", "BAD")
}
