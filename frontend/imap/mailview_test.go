package imap_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// viewEvents counts the shared views' Watch streams and closings through the engine's test
// hook (mailview.go), and can slow the delivery of feed batches.
type viewEvents struct {
	watches, closed atomic.Int32
	statusFromView  atomic.Int32
	slowFeed        atomic.Bool
	onPage          atomic.Pointer[func()]
}

// okWith sends a command, fails the test unless it completes with OK and one of its
// untagged responses contains want, and returns them.
func okWith(t *testing.T, rc *rawConn, line, want string) []string {
	t.Helper()
	lines := rc.ok(line)
	if !contains(lines, want) {
		t.Fatalf("%s: %q, want %q", line, lines, want)
	}
	return lines
}

func watchViews(t *testing.T) *viewEvents {
	ev := &viewEvents{}
	imap.SetTestHook(t, func(point string) {
		switch point {
		case "mail view watch":
			ev.watches.Add(1)
		case "mail view closed":
			ev.closed.Add(1)
		case "status from view":
			ev.statusFromView.Add(1)
		case "feed":
			if ev.slowFeed.Load() {
				// Holds the view behind the metadata service, as a busy or distant
				// frontend's feed is.
				time.Sleep(300 * time.Millisecond)
			}
		case "mail view page":
			if f := ev.onPage.Swap(nil); f != nil {
				(*f)()
			}
		}
	})
	return ev
}

// TestSharedViewOneWatch: two sessions with INBOX selected on one frontend share one Watch
// stream, and each gets the other's flag changes and expunges at the points RFC 9051 allows:
// FETCH FLAGS with any response, EXPUNGE not with FETCH (7.5.1) but with the next NOOP.
func TestSharedViewOneWatch(t *testing.T) {
	ev := watchViews(t)
	srv, c := startWithInbox(t, "one", "two", "three")
	c.Logout()
	a := loginRaw(t, srv)
	b := loginRaw(t, srv)
	okWith(t, a, "SELECT INBOX", "* 3 EXISTS")
	okWith(t, b, "SELECT INBOX", "* 3 EXISTS")
	if n := ev.watches.Load(); n != 1 {
		t.Fatalf("%d Watch streams for two sessions on INBOX, want 1", n)
	}

	a.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
	b.noopUntil(`* 2 FETCH (FLAGS (\Flagged))`)

	// a expunges message 1, then flags message 3: once b's FETCH shows the flag, the
	// expunge before it has reached b's feed too, and is held back.
	a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	okWith(t, a, "EXPUNGE", "* 1 EXPUNGE")
	a.ok("STORE 2 +FLAGS.SILENT (\\Answered)") // message 3, now 2 for a
	var fetched []string
	testwait.Until(t, 5*time.Second, func() error {
		fetched = append(fetched, b.ok("FETCH 1 (UID)")...)
		if !contains(fetched, `* 3 FETCH (FLAGS (\Answered))`) {
			return fmt.Errorf("FETCH never brought the flag change: %q", fetched)
		}
		return nil
	})
	for _, l := range fetched {
		if strings.Contains(l, "EXPUNGE") {
			t.Fatalf("EXPUNGE in a FETCH response (RFC 9051 7.5.1): %q", fetched)
		}
	}
	okWith(t, b, "NOOP", "* 1 EXPUNGE")
	okWith(t, b, "FETCH 1:* (UID FLAGS)", `* 2 FETCH (UID 3 FLAGS (\Answered))`)
	if n := ev.watches.Load(); n != 1 {
		t.Fatalf("%d Watch streams, want still 1", n)
	}
}

// TestSharedViewSelectSeesOwnFrontendWrite: a SELECT after a write this frontend
// acknowledged shows it, even while the shared view's feed lags behind (the session
// consistency of frontend/metaclient/doc.go): the view catches up before SELECT answers.
func TestSharedViewSelectSeesOwnFrontendWrite(t *testing.T) {
	ev := watchViews(t)
	srv, c := startWithInbox(t, "one")
	holder := loginRaw(t, srv)
	okWith(t, holder, "SELECT INBOX", "* 1 EXISTS")
	ev.slowFeed.Store(true)
	for i := range 3 {
		appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("new %d", i), "body"))
		late := loginRaw(t, srv)
		want := fmt.Sprintf("* %d EXISTS", i+2)
		okWith(t, late, "SELECT INBOX", want)
		okWith(t, late, fmt.Sprintf("FETCH %d (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", i+2), fmt.Sprintf("Subject: new %d", i))
	}
	ev.slowFeed.Store(false)
	if n := ev.watches.Load(); n != 1 {
		t.Fatalf("%d Watch streams, want 1", n)
	}
}

// TestSharedViewStatusDeleted: STATUS DELETED of a mailbox whose view is open here counts
// the view's \Deleted messages instead of listing the mailbox, and shows a write this
// frontend acknowledged even while the view's feed lags (it waits for the HIGHESTMODSEQ that
// STATUS read, as SELECT does); with no view open the mailbox is listed.
func TestSharedViewStatusDeleted(t *testing.T) {
	ev := watchViews(t)
	imap.SetMailViewLinger(t, 0)
	srv, c := startWithInbox(t, "one", "two", "three")
	c.Logout()
	holder := loginRaw(t, srv)
	holder.ok("SELECT INBOX")
	ev.slowFeed.Store(true)
	holder.ok(`STORE 1:2 +FLAGS.SILENT (\Deleted)`)
	other := loginRaw(t, srv)
	okWith(t, other, "STATUS INBOX (MESSAGES DELETED)", "* STATUS INBOX (MESSAGES 3 DELETED 2)")
	ev.slowFeed.Store(false)
	if n := ev.statusFromView.Load(); n != 1 {
		t.Fatalf("%d STATUS answered from the view, want 1", n)
	}
	holder.ok(`STORE 2 -FLAGS.SILENT (\Deleted)`)
	okWith(t, other, "STATUS INBOX (DELETED MESSAGES)", "* STATUS INBOX (DELETED 1 MESSAGES 3)")
	holder.ok("UNSELECT")
	testwait.Until(t, 5*time.Second, func() error {
		if ev.closed.Load() == 0 {
			return fmt.Errorf("the view is still open after its last session left")
		}
		return nil
	})
	okWith(t, other, "STATUS INBOX (DELETED)", "* STATUS INBOX (DELETED 1)")
	if n := ev.statusFromView.Load(); n != 2 {
		t.Fatalf("%d STATUS answered from the view, want 2 (none after it closed)", n)
	}
}

// TestSharedViewDropped: the view lives while a session holds it and is dropped (its Watch
// stream ends) after the last one leaves; the next SELECT opens a new one.
func TestSharedViewDropped(t *testing.T) {
	ev := watchViews(t)
	imap.SetMailViewLinger(t, 0)
	srv, c := startWithInbox(t, "one")
	a := loginRaw(t, srv)
	b := loginRaw(t, srv)
	a.ok("SELECT INBOX")
	b.ok("EXAMINE INBOX")
	a.ok("UNSELECT")
	// b's view still follows the mailbox.
	appendMessage(t, c, "INBOX", testMessage("two", "body"))
	b.noopUntil("* 2 EXISTS")
	if n := ev.closed.Load(); n != 0 {
		t.Fatalf("%d views closed while a session holds INBOX, want 0", n)
	}
	b.ok("LOGOUT")
	testwait.Until(t, 10*time.Second, func() error {
		if n := ev.closed.Load(); n != 1 {
			return fmt.Errorf("%d views closed after the last session left, want 1", n)
		}
		return nil
	})
	okWith(t, a, "SELECT INBOX", "* 2 EXISTS")
	if n := ev.watches.Load(); n != 2 {
		t.Fatalf("%d Watch streams, want 2: the dropped view's and the new one's", n)
	}
}

// TestSharedViewLingers: with the default linger, a view outlives its last session, so the
// next SELECT finds it open and opens no Watch stream.
func TestSharedViewLingers(t *testing.T) {
	ev := watchViews(t)
	imap.SetMailViewLinger(t, time.Hour)
	srv, _ := startWithInbox(t, "one")
	a := loginRaw(t, srv)
	a.ok("SELECT INBOX")
	a.ok("UNSELECT")
	okWith(t, loginRaw(t, srv), "SELECT INBOX", "* 1 EXISTS")
	if n, closed := ev.watches.Load(), ev.closed.Load(); n != 1 || closed != 0 {
		t.Fatalf("%d Watch streams and %d views closed, want 1 and 0", n, closed)
	}
}

// TestSharedViewPagedLoad: a cold SELECT loads the mailbox in pages while it changes, and
// shows it exactly as it is once loaded: changes made between the pages, to messages of pages
// read before or after them, are replayed from the feed.
func TestSharedViewPagedLoad(t *testing.T) {
	ev := watchViews(t)
	imap.SetViewPageSize(t, 3)
	srv := startServer(t)
	c := login(t, srv)
	appendNumbered(t, c, 10, nil)
	c.Logout()
	md := srv.Metadata()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	inbox, err := md.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Name: "INBOX"})
	if err != nil {
		t.Fatal(err)
	}
	store := func(uid uint32, flag string) error {
		_, err := md.StoreFlags(ctx, &metadatapb.StoreFlagsRequest{RequestId: embedded.NewRequestID(), Account: embedded.DemoAccount, MailboxId: inbox.GetId(),
			Uids: []*metadatapb.UidRange{{First: uid, Last: uid}}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{flag}})
		return err
	}
	expunge := func(uid uint32) error {
		if err := store(uid, `\Deleted`); err != nil {
			return err
		}
		_, err := md.Expunge(ctx, &metadatapb.ExpungeRequest{RequestId: embedded.NewRequestID(), Account: embedded.DemoAccount, MailboxId: inbox.GetId(),
			Uids: []*metadatapb.UidRange{{First: uid, Last: uid}}})
		return err
	}
	changed := make(chan error, 1)
	// After the first page (UIDs 1 to 3): expunge 2 (listed) and 9 (not yet), flag 1
	// (listed) and 8 (not yet).
	after := func() {
		changed <- func() error {
			for _, err := range []error{expunge(2), expunge(9), store(1, "$Listed"), store(8, "$Later")} {
				if err != nil {
					return err
				}
			}
			return nil
		}()
	}
	ev.onPage.Store(&after)
	rc := loginRaw(t, srv)
	rc.ok("ENABLE IMAP4rev2") // no \Recent
	okWith(t, rc, "SELECT INBOX", "* 8 EXISTS")
	if err := <-changed; err != nil {
		t.Fatalf("changes between pages: %v", err)
	}
	lines := rc.ok("FETCH 1:* (UID FLAGS)")
	want := []string{
		`* 1 FETCH (UID 1 FLAGS ($Listed))`, `* 2 FETCH (UID 3 FLAGS ())`, `* 3 FETCH (UID 4 FLAGS ())`,
		`* 4 FETCH (UID 5 FLAGS ())`, `* 5 FETCH (UID 6 FLAGS ())`, `* 6 FETCH (UID 7 FLAGS ())`,
		`* 7 FETCH (UID 8 FLAGS ($Later))`, `* 8 FETCH (UID 10 FLAGS ())`,
	}
	if got := linesWith(lines, " FETCH "); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("FETCH after a paged load:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A second session copies the same view.
	second := loginRaw(t, srv)
	second.ok("ENABLE IMAP4rev2")
	okWith(t, second, "SELECT INBOX", "* 8 EXISTS")
	if got := linesWith(second.ok("FETCH 1:* (UID FLAGS)"), " FETCH "); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("second session's FETCH:\n%s", strings.Join(got, "\n"))
	}
}
