package imap_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/testwait"
)

// wantUntagged runs cmd on rc and checks its untagged responses.
func wantUntagged(t *testing.T, rc *rawConn, cmd string, want ...string) {
	t.Helper()
	if got := rc.ok(cmd); !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", cmd, got, want)
	}
}

// selectRecent runs SELECT or EXAMINE of INBOX and returns its RECENT count.
func selectRecent(t *testing.T, rc *rawConn, cmd string) int {
	t.Helper()
	for _, l := range rc.ok(cmd + " INBOX") {
		if n, found := strings.CutSuffix(l, " RECENT"); found {
			recent, err := strconv.Atoi(strings.TrimPrefix(n, "* "))
			if err != nil {
				t.Fatalf("%s: %q", cmd, l)
			}
			return recent
		}
	}
	t.Fatalf("%s INBOX sent no RECENT", cmd)
	return 0
}

// noopUntil sends NOOP until its responses include want and returns them.
func noopUntil(t *testing.T, rc *rawConn, want string) []string {
	t.Helper()
	var got []string
	testwait.Until(t, 10*time.Second, func() error {
		if got = rc.ok("NOOP"); !slices.Contains(got, want) {
			return fmt.Errorf("NOOP brought %q, not %q", got, want)
		}
		return nil
	})
	return got
}

// TestRecent: \Recent in IMAP4rev1 sessions (RFC 3501 2.3.2). Mail delivered to a mailbox
// nobody has selected is recent: EXAMINE shows it without claiming it (RFC 3501 6.3.2), the
// first SELECT claims it (6.3.1) and a later SELECT sees none; a selected read-write session
// claims what arrives while it is selected; IMAP4rev2 sessions never see \Recent (RFC 9051
// appendix E).
func TestRecent(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("one", "1"))
	appendMessage(t, c, "INBOX", testMessage("two", "2"))

	examiner := loginRaw(t, srv)
	if n := selectRecent(t, examiner, "EXAMINE"); n != 2 {
		t.Errorf("EXAMINE: %d RECENT, want 2", n)
	}
	wantUntagged(t, examiner, "FETCH 1:* FLAGS", `* 1 FETCH (FLAGS (\Recent))`, `* 2 FETCH (FLAGS (\Recent))`)
	wantUntagged(t, examiner, "SEARCH RECENT", "* SEARCH 1 2")
	wantUntagged(t, examiner, "SEARCH NEW", "* SEARCH 1 2")
	wantUntagged(t, examiner, "SEARCH OLD", "* SEARCH")
	wantUntagged(t, examiner, "STATUS INBOX (RECENT)", "* STATUS INBOX (RECENT 2)")
	// EXAMINE claimed nothing: a second one shows the same.
	if n := selectRecent(t, loginRaw(t, srv), "EXAMINE"); n != 2 {
		t.Errorf("second EXAMINE: %d RECENT, want 2", n)
	}

	selector := loginRaw(t, srv)
	if n := selectRecent(t, selector, "SELECT"); n != 2 {
		t.Errorf("first SELECT after delivery: %d RECENT, want 2", n)
	}
	wantUntagged(t, selector, `STORE 1 +FLAGS (\Seen)`, `* 1 FETCH (FLAGS (\Seen \Recent))`)
	wantUntagged(t, selector, "SEARCH NEW", "* SEARCH 2")
	wantUntagged(t, selector, "SEARCH RECENT", "* SEARCH 1 2")

	late := loginRaw(t, srv)
	if n := selectRecent(t, late, "SELECT"); n != 0 {
		t.Errorf("SELECT after the first: %d RECENT, want 0", n)
	}
	wantUntagged(t, late, "FETCH 1:* FLAGS", `* 1 FETCH (FLAGS (\Seen))`, `* 2 FETCH (FLAGS ())`)
	wantUntagged(t, late, "SEARCH OLD", "* SEARCH 1 2")
	if n := selectRecent(t, loginRaw(t, srv), "EXAMINE"); n != 0 {
		t.Errorf("EXAMINE after SELECT: %d RECENT, want 0", n)
	}
	// The examining session keeps what it was shown.
	wantUntagged(t, examiner, "NOOP", `* 1 FETCH (FLAGS (\Seen \Recent))`)
	wantUntagged(t, examiner, "SEARCH RECENT", "* SEARCH 1 2")

	// Mail that arrives while two sessions are selected is recent in the one that claims it
	// first: here the one that asks first.
	appendMessage(t, c, "INBOX", testMessage("three", "3"))
	if got := noopUntil(t, selector, "* 3 EXISTS"); !slices.Equal(got, []string{"* 3 EXISTS", "* 3 RECENT"}) {
		t.Errorf("selector after delivery: %q", got)
	}
	if got := noopUntil(t, late, "* 3 EXISTS"); !slices.Equal(got, []string{"* 3 EXISTS"}) {
		t.Errorf("late session after delivery: %q", got)
	}
	wantUntagged(t, late, "SEARCH RECENT", "* SEARCH")
	appendMessage(t, c, "INBOX", testMessage("four", "4"))
	if got := noopUntil(t, late, "* 4 EXISTS"); !slices.Equal(got, []string{"* 4 EXISTS", "* 1 RECENT"}) {
		t.Errorf("late session after the second delivery: %q", got)
	}
	if got := noopUntil(t, selector, "* 4 EXISTS"); !slices.Equal(got, []string{"* 4 EXISTS"}) {
		t.Errorf("selector after the second delivery: %q", got)
	}
	wantUntagged(t, late, "UID SEARCH RECENT", "* SEARCH 4")
	wantUntagged(t, selector, "UID SEARCH RECENT", "* SEARCH 1 2 3")
	// A read-only session claims nothing of what arrives.
	if got := noopUntil(t, examiner, "* 4 EXISTS"); contains(got, "RECENT") {
		t.Errorf("examiner after delivery: %q", got)
	}
	wantUntagged(t, examiner, "SEARCH RECENT", "* SEARCH 1 2")

	// IMAP4rev2 has no \Recent.
	rev2 := loginRaw(t, srv)
	rev2.ok("ENABLE IMAP4rev2")
	if got := rev2.ok("EXAMINE INBOX"); contains(got, "RECENT") {
		t.Errorf("IMAP4rev2 EXAMINE: %q", got)
	}
	if got := rev2.ok("FETCH 3 FLAGS"); contains(got, `\Recent`) {
		t.Errorf("IMAP4rev2 FETCH: %q", got)
	}
}

// TestRecentClaimedOnce: while several read-write sessions have a mailbox selected and mail
// keeps arriving, each new message is \Recent in exactly one of them (RFC 3501 2.3.2),
// whichever order their updates run in.
func TestRecentClaimedOnce(t *testing.T) {
	const sessions, messages = 3, 12
	srv := startServer(t)
	c := login(t, srv)
	selected := make([]*rawConn, sessions)
	for i := range selected {
		selected[i] = loginRaw(t, srv)
		selected[i].ok("SELECT INBOX")
	}
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	last := fmt.Sprintf("* %d EXISTS", messages)
	for _, rc := range selected {
		wg.Go(func() {
			deadline := time.Now().Add(20 * time.Second)
			for {
				untagged, tagged := rc.cmd("NOOP")
				if !strings.HasPrefix(tagged, "OK") {
					errs <- fmt.Errorf("NOOP: %s", tagged)
					return
				}
				if slices.Contains(untagged, last) {
					return
				}
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("never got %q", last)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	for i := range messages {
		appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("m%d", i), "body"))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	claimed := map[string]int{}
	for i, rc := range selected {
		got := rc.ok("UID SEARCH RECENT")
		if len(got) != 1 {
			t.Fatalf("session %d: UID SEARCH RECENT = %q", i, got)
		}
		for _, uid := range strings.Fields(strings.TrimPrefix(got[0], "* SEARCH")) {
			claimed[uid]++
		}
	}
	for uid := 1; uid <= messages; uid++ {
		if n := claimed[strconv.Itoa(uid)]; n != 1 {
			t.Errorf("UID %d is recent in %d sessions, want 1 (%v)", uid, n, claimed)
		}
	}
	if n := selectRecent(t, loginRaw(t, srv), "SELECT"); n != 0 {
		t.Errorf("SELECT after the sessions claimed everything: %d RECENT", n)
	}
}
