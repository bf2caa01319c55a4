package frontend_test

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
