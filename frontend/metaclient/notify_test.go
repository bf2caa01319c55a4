package metaclient_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// notice reads what the server sends a NOTIFY session without a command, until a line
// contains want.
func (s *rawSession) notice(t testing.TB, want string) string {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(testWait))
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if l = strings.TrimSuffix(l, "\r\n"); strings.Contains(l, want) {
			return l
		}
	}
}

// appendRaw appends message n to mailbox through s.
func (s *rawSession) appendRaw(t testing.TB, mailbox string, n int) {
	t.Helper()
	msg := strings.ReplaceAll(fmt.Sprintf("From: a@example.org\nSubject: %d\n\nbody %d\n", n, n), "\n", "\r\n")
	s.ok(t, fmt.Sprintf("APPEND %s {%d+}\r\n%s", mailbox, len(msg), msg))
}

// TestNotifyAcrossFrontends: a NOTIFY session on frontend A hears of the mailboxes created,
// filled and renamed through frontend B (RFC 5465 5.2, 5.4), as the metadata service's
// WatchAccount reports them; after the metadata leader is killed the stream resumes, and
// what changed meanwhile still arrives.
func TestNotifyAcrossFrontends(t *testing.T) {
	g, addrA, addrB := twoFrontends(t)
	a := loginRaw(t, addrA)
	b := loginRaw(t, addrB)
	a.ok(t, "NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")

	b.ok(t, "CREATE Lists")
	if l := a.notice(t, "LIST"); l != `* LIST (\HasNoChildren) "/" Lists` {
		t.Fatalf("after CREATE on B: %q", l)
	}
	b.appendRaw(t, "Lists", 1)
	if l := a.notice(t, "STATUS"); !strings.HasPrefix(l, "* STATUS Lists (MESSAGES 1 UIDNEXT 2 ") {
		t.Fatalf("after APPEND on B: %q", l)
	}

	g.kill(g.leader())
	b.appendRaw(t, "Lists", 2)
	b.ok(t, "RENAME Lists Groups")
	// The APPEND may come as its own STATUS (of Lists) or, if the stream was resumed
	// after both, in the STATUS of Groups after the rename.
	renamed, filled := false, false
	for !renamed || !filled {
		switch l := a.notice(t, "* "); {
		case l == `* LIST (\HasNoChildren) "/" Groups ("OLDNAME" (Lists))`:
			renamed = true
		case strings.HasPrefix(l, "* STATUS Lists (MESSAGES 2 UIDNEXT 3 ") || strings.HasPrefix(l, "* STATUS Groups (MESSAGES 2 UIDNEXT 3 "):
			filled = true
		default:
			t.Fatalf("after APPEND and RENAME on B across a leader change: %q", l)
		}
	}
	a.ok(t, "NOOP")
}
