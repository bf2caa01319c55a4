package metaclient_test

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
)

// rawSession is an IMAP4rev1 session over a plain socket, for the responses imapclient
// does not report (RECENT, SEARCH RECENT).
type rawSession struct {
	conn net.Conn
	r    *bufio.Reader
	n    int
}

// loginRaw connects to addr and logs in as the demo account.
func loginRaw(t testing.TB, addr string) *rawSession {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &rawSession{conn: conn, r: bufio.NewReader(conn)}
	conn.SetReadDeadline(time.Now().Add(testWait))
	if greeting, err := s.r.ReadString('\n'); err != nil || !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting %q: %v", greeting, err)
	}
	s.ok(t, "LOGIN "+embedded.DemoAccount+" "+embedded.DemoPassword)
	return s
}

// cmd sends a command and returns its untagged responses and its tagged status.
func (s *rawSession) cmd(line string) (untagged []string, status string, err error) {
	s.n++
	tag := "r" + strconv.Itoa(s.n)
	if _, err := fmt.Fprintf(s.conn, "%s %s\r\n", tag, line); err != nil {
		return nil, "", err
	}
	s.conn.SetReadDeadline(time.Now().Add(testWait))
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", line, err)
		}
		l = strings.TrimSuffix(l, "\r\n")
		if rest, found := strings.CutPrefix(l, tag+" "); found {
			return untagged, rest, nil
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed and returns its untagged responses.
func (s *rawSession) ok(t testing.TB, line string) []string {
	t.Helper()
	untagged, status, err := s.cmd(line)
	if err != nil || !strings.HasPrefix(status, "OK") {
		t.Fatalf("%s: %q %v", line, status, err)
	}
	return untagged
}

// recentUIDs returns the UIDs that are \Recent in the session.
func (s *rawSession) recentUIDs(t testing.TB) []string {
	t.Helper()
	got := s.ok(t, "UID SEARCH RECENT")
	if len(got) != 1 || !strings.HasPrefix(got[0], "* SEARCH") {
		t.Fatalf("UID SEARCH RECENT = %q", got)
	}
	return strings.Fields(strings.TrimPrefix(got[0], "* SEARCH"))
}

// TestRecentAcrossFrontends: \Recent (RFC 3501 2.3.2) is claimed in the replicated state, so
// it holds across frontends. Mail delivered through frontend A to a mailbox nobody has
// selected is recent to an EXAMINE on B (RFC 3501 6.3.2: without claiming it), the first
// SELECT, on A, claims it, and a SELECT on B then sees none; of the mail that arrives while
// sessions on both frontends have the mailbox selected, each message is recent in exactly
// one of them.
func TestRecentAcrossFrontends(t *testing.T) {
	const messages = 8
	_, addrA, addrB := twoFrontends(t)
	deliver, err := imapclient.DialInsecure(addrA, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deliver.Close() })
	if err := deliver.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMessage(t, deliver, 1)
	appendMessage(t, deliver, 2)

	examiner := loginRaw(t, addrB)
	if got := examiner.ok(t, "EXAMINE INBOX"); !slices.Contains(got, "* 2 RECENT") {
		t.Errorf("EXAMINE on B: %q", got)
	}
	if got := examiner.recentUIDs(t); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("SEARCH RECENT after EXAMINE on B = %v", got)
	}
	if got := loginRaw(t, addrB).ok(t, "STATUS INBOX (RECENT)"); !slices.Equal(got, []string{"* STATUS INBOX (RECENT 2)"}) {
		t.Errorf("STATUS on B: %q", got)
	}
	first := loginRaw(t, addrA)
	if got := first.ok(t, "SELECT INBOX"); !slices.Contains(got, "* 2 RECENT") {
		t.Errorf("first SELECT, on A: %q", got)
	}
	second := loginRaw(t, addrB)
	if got := second.ok(t, "SELECT INBOX"); !slices.Contains(got, "* 0 RECENT") {
		t.Errorf("SELECT on B after A's: %q", got)
	}
	if got := loginRaw(t, addrB).ok(t, "STATUS INBOX (RECENT)"); !slices.Equal(got, []string{"* STATUS INBOX (RECENT 0)"}) {
		t.Errorf("STATUS on B after the SELECT on A: %q", got)
	}

	// Two sessions on each frontend poll while mail arrives.
	sessions := []*rawSession{first, second, loginRaw(t, addrA), loginRaw(t, addrB)}
	sessions[2].ok(t, "SELECT INBOX")
	sessions[3].ok(t, "SELECT INBOX")
	last := fmt.Sprintf("* %d EXISTS", 2+messages)
	errs := make(chan error, len(sessions))
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			deadline := time.Now().Add(testWait)
			for time.Now().Before(deadline) {
				untagged, status, err := s.cmd("NOOP")
				if err != nil || !strings.HasPrefix(status, "OK") {
					errs <- fmt.Errorf("NOOP: %q %v", status, err)
					return
				}
				if slices.Contains(untagged, last) {
					return
				}
				time.Sleep(time.Millisecond)
			}
			errs <- fmt.Errorf("never got %q", last)
		})
	}
	for n := 3; n <= 2+messages; n++ {
		appendMessage(t, deliver, n)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	claimed := map[string]int{}
	for i, s := range sessions {
		got := s.recentUIDs(t)
		t.Logf("session %d recent: %v", i, got)
		for _, uid := range got {
			claimed[uid]++
		}
	}
	for uid := 1; uid <= 2+messages; uid++ {
		if n := claimed[strconv.Itoa(uid)]; n != 1 {
			t.Errorf("UID %d is recent in %d sessions, want 1", uid, n)
		}
	}
}
