package imap_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
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
