package imap_test

import (
	"fmt"
	"strings"
	"testing"
)

// appendRaw appends msg to mailbox with a non-synchronising literal (RFC 7888) and returns
// the untagged responses.
func (rc *rawConn) appendRaw(mailbox, msg string) []string {
	rc.t.Helper()
	return rc.ok(fmt.Sprintf("APPEND %s {%d+}\r\n%s", mailbox, len(msg), msg))
}

// rfc2231Message has a PDF part whose name and filename are RFC 2231 extended values.
var rfc2231Message = strings.ReplaceAll(`From: Alice <alice@example.org>
Subject: CV
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=us-ascii

see attached
--b
Content-Type: application/pdf; name*=UTF-8''r%C3%A9sum%C3%A9.pdf
Content-Disposition: attachment; filename*0*=UTF-8''r%C3%A9s; filename*1*=um%C3%A9.pdf
Content-Transfer-Encoding: base64

JVBERi0=
--b--
`, "\n", "\r\n")

// TestBodyStructureRFC2231: parameter values decoded from RFC 2231 are sent back in the
// RFC 2231 4 extended form to sessions without UTF-8 strings, as Dovecot does, and as
// UTF-8 quoted strings once UTF8=ACCEPT (RFC 6855 3) or IMAP4rev2 (RFC 9051 4.3) is on.
func TestBodyStructureRFC2231(t *testing.T) {
	srv := startServer(t)
	rev1 := loginRaw(t, srv)
	rev1.appendRaw("INBOX", rfc2231Message)
	rev1.ok("SELECT INBOX")
	got := strings.Join(rev1.ok("FETCH 1 BODYSTRUCTURE"), "\n")
	for _, want := range []string{
		`("APPLICATION" "PDF" ("NAME*" "UTF-8''r%C3%A9sum%C3%A9.pdf") NIL NIL "BASE64" 8 NIL ("ATTACHMENT" ("FILENAME*" "UTF-8''r%C3%A9sum%C3%A9.pdf")) NIL NIL)`,
		`("TEXT" "PLAIN" ("CHARSET" "us-ascii")`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("IMAP4rev1 BODYSTRUCTURE %q lacks %q", got, want)
		}
	}
	if strings.ContainsFunc(got, func(r rune) bool { return r >= 0x80 }) {
		t.Errorf("IMAP4rev1 BODYSTRUCTURE has 8-bit data: %q", got)
	}
	if got := strings.Join(rev1.ok("FETCH 1 BODY"), "\n"); !strings.Contains(got, `("NAME*" "UTF-8''r%C3%A9sum%C3%A9.pdf")`) {
		t.Errorf("IMAP4rev1 BODY: %q", got)
	}

	for _, enable := range []string{"UTF8=ACCEPT", "IMAP4rev2"} {
		rc := loginRaw(t, srv)
		rc.ok("ENABLE " + enable)
		rc.ok("SELECT INBOX")
		got := strings.Join(rc.ok("FETCH 1 BODYSTRUCTURE"), "\n")
		want := `("APPLICATION" "PDF" ("NAME" "résumé.pdf") NIL NIL "BASE64" 8 NIL ("ATTACHMENT" ("FILENAME" "résumé.pdf")) NIL NIL)`
		if !strings.Contains(got, want) {
			t.Errorf("after ENABLE %s, BODYSTRUCTURE %q lacks %q", enable, got, want)
		}
	}
}

// utf8Message has UTF-8 header fields (RFC 6532), which RFC 6855 4 lets a client APPEND
// after ENABLE UTF8=ACCEPT.
var utf8Message = strings.ReplaceAll(`From: Jürgen <jürgen@bücher.example>
To: Demo <demo@example.com>
Subject: Grüße aus Köln
Date: Mon, 7 Feb 1994 21:52:25 -0800
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Schöne Grüße
`, "\n", "\r\n")

// TestAppendUTF8Data: the UTF8 data extension of APPEND (RFC 6855 4), "UTF8 (" literal8
// ")", alone and in a MULTIAPPEND (RFC 3502), refused with BAD before ENABLE UTF8=ACCEPT;
// the message is stored as given.
func TestAppendUTF8Data(t *testing.T) {
	srv := startServer(t)

	rev1 := loginRaw(t, srv)
	// A synchronising literal8 is refused before the continuation request, so the client
	// never sends it; a non-synchronising one is read and dropped.
	rev1.expect(fmt.Sprintf("APPEND INBOX UTF8 (~{%d}", len(utf8Message)), "BAD")
	rev1.expect(fmt.Sprintf("APPEND INBOX UTF8 (~{%d+}\r\n%s)", len(utf8Message), utf8Message), "BAD")
	rev2 := loginRaw(t, srv)
	rev2.ok("ENABLE IMAP4rev2")
	rev2.expect(fmt.Sprintf("APPEND INBOX UTF8 (~{%d+}\r\n%s)", len(utf8Message), utf8Message), "BAD")
	// The second message of a MULTIAPPEND is refused too, and the first is not stored.
	rev1.expect(fmt.Sprintf("APPEND INBOX {4+}\r\nab\r\n UTF8 (~{%d+}\r\n%s)", len(utf8Message), utf8Message), "BAD")
	if got := rev1.ok("STATUS INBOX (MESSAGES)"); !contains(got, "(MESSAGES 0)") {
		t.Fatalf("refused APPENDs stored messages: %q", got)
	}

	rc := loginRaw(t, srv)
	rc.ok("ENABLE UTF8=ACCEPT")
	// A synchronising literal8: continuation request, data, ")" and the end of the line.
	rc.n++
	tag := fmt.Sprintf("x%d", rc.n)
	rc.writeExpect(fmt.Sprintf("%s append INBOX (\\Seen) utf8 (~{%d}\r\n", tag, len(utf8Message)), "+ ")
	rc.write(utf8Message + ")\r\n")
	if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, "OK [APPENDUID ") || !strings.Contains(tagged, " 1] ") {
		t.Fatalf("APPEND UTF8: %q", tagged)
	}
	// MULTIAPPEND mixing UTF8 data and a plain literal.
	plain := testMessage("plain", "x")
	_, tagged := rc.cmd(fmt.Sprintf("APPEND INBOX UTF8 (~{%d+}\r\n%s) {%d+}\r\n%s UTF8 (~{%d+}\r\n%s)",
		len(utf8Message), utf8Message, len(plain), plain, len(utf8Message), utf8Message))
	if !strings.HasPrefix(tagged, "OK [APPENDUID ") || !strings.Contains(tagged, " 2:4]") {
		t.Fatalf("MULTIAPPEND with UTF8: %q", tagged)
	}
	// A UTF8 message without its ")" is a syntax error, and nothing is stored.
	rc.expect(fmt.Sprintf("APPEND INBOX UTF8 (~{%d+}\r\n%s", len(utf8Message), utf8Message), "BAD")

	rc.ok("SELECT INBOX")
	for seq, want := range []string{utf8Message, utf8Message, plain, utf8Message} {
		got := rc.ok(fmt.Sprintf("FETCH %d BODY.PEEK[]", seq+1))
		if len(got) != 1 || !strings.HasSuffix(got[0], fmt.Sprintf("{%d}\r\n%s)", len(want), want)) {
			t.Errorf("message %d: %q", seq+1, got)
		}
	}
	if got := rc.ok("FETCH 1:* FLAGS"); !contains(got, `* 1 FETCH (FLAGS (\Seen`) || len(got) != 4 {
		t.Errorf("FLAGS after APPEND: %q", got)
	}
	if got := rc.ok("FETCH 1 ENVELOPE"); !contains(got, `"Grüße aus Köln"`) {
		t.Errorf("ENVELOPE of a UTF8 APPEND: %q", got)
	}
}
