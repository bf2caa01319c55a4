package imap_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
	imapserver "github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/testwait"
)

// watcher is an imapclient session that records the unilateral updates it receives.
type watcher struct {
	*imapclient.Client
	events chan string
}

func newWatcher(t *testing.T, srv interface{ IMAPAddr() string }) *watcher {
	t.Helper()
	w := &watcher{events: make(chan string, 100)}
	c, err := imapclient.DialInsecure(srv.IMAPAddr(), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Expunge: func(seq uint32) { w.events <- fmt.Sprintf("EXPUNGE %d", seq) },
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					w.events <- fmt.Sprintf("EXISTS %d", *data.NumMessages)
				}
			},
			Fetch: func(msg *imapclient.FetchMessageData) {
				buf, err := msg.Collect()
				if err != nil {
					w.events <- "FETCH error " + err.Error()
					return
				}
				// Which of two selected sessions sees a new message as \Recent depends on
				// which learns of it first (RFC 3501 2.3.2), so it is left out here.
				flags := slices.DeleteFunc(buf.Flags, func(f imap.Flag) bool { return f == `\Recent` })
				w.events <- fmt.Sprintf("FETCH %d %v", buf.SeqNum, flags)
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.Client = c
	if err := c.Login("demo@example.com", "demo").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return w
}

// expect waits for the next event and checks it.
func (w *watcher) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-w.events:
		if got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no event, want %q", want)
	}
}

func (w *watcher) expectNone(t *testing.T) {
	t.Helper()
	select {
	case got := <-w.events:
		t.Fatalf("unexpected event %q", got)
	default:
	}
}

func TestTwoSessionsIdle(t *testing.T) {
	srv := startServer(t)
	w := newWatcher(t, srv)
	other := login(t, srv)
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	idle, err := w.Idle()
	if err != nil {
		t.Fatal(err)
	}
	appendMessage(t, other, "INBOX", testMessage("one", "1"))
	w.expect(t, "EXISTS 1")
	appendMessage(t, other, "INBOX", testMessage("two", "2"))
	w.expect(t, "EXISTS 2")
	if err := other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	w.expect(t, `FETCH 1 [\Deleted]`)
	if err := other.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	w.expect(t, "EXPUNGE 1")
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	w.expectNone(t)

	// Outside IDLE, the same changes wait for NOOP.
	rw := loginRaw(t, srv)
	rw.ok("SELECT INBOX")
	appendMessage(t, other, "INBOX", testMessage("three", "3"))
	if err := other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the feed deliver; nothing may be sent before NOOP
	w.expectNone(t)
	// On the wire, in order: the new message, the flag change, then the expunge of message 1.
	if got, want := rw.ok("NOOP"), []string{"* 2 EXISTS", `* 1 FETCH (FLAGS (\Seen \Deleted))`, "* 1 EXPUNGE"}; !slices.Equal(got, want) {
		t.Errorf("NOOP: %q, want %q", got, want)
	}
	if err := w.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case ev := <-w.events:
			got = append(got, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("after NOOP only %q", got)
		}
	}
	// imapclient hands FETCH to its handler in a goroutine, so only the set is certain.
	slices.Sort(got)
	if want := []string{"EXISTS 2", "EXPUNGE 1", `FETCH 1 [\Seen \Deleted]`}; !slices.Equal(got, want) {
		t.Errorf("after NOOP: %q, want %q", got, want)
	}
	if n := w.Mailbox().NumMessages; n != 1 {
		t.Errorf("client counts %d messages, want 1", n)
	}

	// The session's own changes are reported once, by its own command.
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	untagged := rc.ok(`STORE 1 +FLAGS (\Flagged)`)
	if len(untagged) != 1 {
		t.Errorf("STORE answered %q", untagged)
	}
	time.Sleep(200 * time.Millisecond)
	if untagged := rc.ok("NOOP"); len(untagged) != 0 {
		t.Errorf("NOOP after own STORE reported %q", untagged)
	}
}

// connGoroutines returns the stacks of the goroutines that serve IMAP connections (a
// method of the engine's conn on their stack).
func connGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var conns []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "frontend/imap.(*conn).") {
			conns = append(conns, g)
		}
	}
	return conns
}

// TestIdleParked: sessions in IDLE are parked (park.go): each holds one goroutine, blocked
// in its wait for the client, and none of a reader of DONE or of the command loop; a change
// of the mailbox still reaches every one of them at once (RFC 2177), and DONE ends each.
func TestIdleParked(t *testing.T) {
	srv := startServer(t)
	const sessions = 20
	var idlers []*rawConn
	for i := range sessions {
		rc := loginRaw(t, srv)
		rc.ok("SELECT INBOX")
		rc.startIdle(fmt.Sprintf("i%d", i))
		idlers = append(idlers, rc)
	}
	testwait.Until(t, 10*time.Second, func() error {
		conns := connGoroutines()
		parked := 0
		for _, g := range conns {
			if strings.Contains(g, "frontend/imap.(*conn).wait(") {
				parked++
			}
		}
		if len(conns) != sessions || parked != sessions {
			return fmt.Errorf("%d goroutines serve connections, %d of them parked; want %d parked and no other:\n%s",
				len(conns), parked, sessions, strings.Join(conns, "\n\n"))
		}
		return nil
	})
	appendMessage(t, login(t, srv), "INBOX", testMessage("wakes them all", "body"))
	for i, rc := range idlers {
		if l := rc.readLine(); l != "* 1 EXISTS" {
			t.Fatalf("session %d in IDLE: %q, want * 1 EXISTS", i, l)
		}
		rc.write("DONE\r\n")
		if _, tagged := rc.until(fmt.Sprintf("i%d", i)); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("session %d DONE: %q", i, tagged)
		}
	}
}

// TestIdleAutologout: the autologout timer runs through IDLE (RFC 9051 5.4; RFC 2177 asks
// clients to end IDLE within 29 minutes): a parked session is told BYE when it expires.
func TestIdleAutologout(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPLimits = imapserver.Limits{IdleTimeout: 500 * time.Millisecond}
	})
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.startIdle("i")
	if l := rc.readLine(); !strings.HasPrefix(l, "* BYE Autologout") {
		t.Fatalf("in IDLE past the timer: %q, want BYE Autologout", l)
	}
}
