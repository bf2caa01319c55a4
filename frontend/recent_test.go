package frontend_test

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRecent: \Recent in IMAP4rev1 sessions (RFC 3501 2.3.2) as recent.go approximates it on
// one frontend: the first SELECT after mail arrives claims it, EXAMINE shows without
// claiming, a selected session claims what arrives while it is selected, and IMAP4rev2
// sessions never see \Recent (RFC 9051 appendix E).
func TestRecent(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	first := loginRaw(t, srv)
	if got := first.ok("SELECT INBOX"); !slices.Contains(got, "* 0 RECENT") {
		t.Errorf("SELECT of an empty INBOX: %q", got)
	}
	first.ok("UNSELECT")
	appendMessage(t, c, "INBOX", testMessage("one", "1"))
	appendMessage(t, c, "INBOX", testMessage("two", "2"))

	examiner := loginRaw(t, srv)
	if got := examiner.ok("EXAMINE INBOX"); !slices.Contains(got, "* 2 RECENT") {
		t.Errorf("EXAMINE: %q", got)
	}
	check := func(rc *rawConn, cmd string, want ...string) {
		t.Helper()
		if got := rc.ok(cmd); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", cmd, got, want)
		}
	}
	check(examiner, "FETCH 1:* FLAGS", `* 1 FETCH (FLAGS (\Recent))`, `* 2 FETCH (FLAGS (\Recent))`)
	check(examiner, "SEARCH RECENT", "* SEARCH 1 2")
	check(examiner, "SEARCH NEW", "* SEARCH 1 2")
	check(examiner, "SEARCH OLD", "* SEARCH")

	selector := loginRaw(t, srv)
	if got := selector.ok("SELECT INBOX"); !slices.Contains(got, "* 2 RECENT") {
		t.Errorf("first SELECT after delivery: %q", got)
	}
	check(selector, `STORE 1 +FLAGS (\Seen)`, `* 1 FETCH (FLAGS (\Seen \Recent))`)
	check(selector, "SEARCH NEW", "* SEARCH 2")

	late := loginRaw(t, srv)
	if got := late.ok("SELECT INBOX"); !slices.Contains(got, "* 0 RECENT") {
		t.Errorf("second SELECT: %q", got)
	}
	check(late, "FETCH 1:* FLAGS", `* 1 FETCH (FLAGS (\Seen))`, `* 2 FETCH (FLAGS ())`)

	// Mail that arrives while selected is recent in the first session to learn of it.
	appendMessage(t, c, "INBOX", testMessage("three", "3"))
	waitFor := func(rc *rawConn, want string) []string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := rc.ok("NOOP")
			if slices.Contains(got, want) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("never got %q (last %q)", want, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := waitFor(selector, "* 3 EXISTS"); !slices.Equal(got, []string{"* 3 EXISTS", "* 3 RECENT"}) {
		t.Errorf("selector after delivery: %q", got)
	}
	if got := waitFor(late, "* 3 EXISTS"); slices.ContainsFunc(got, func(l string) bool { return strings.HasSuffix(l, "RECENT") }) {
		t.Errorf("late session after delivery: %q", got)
	}
	check(late, "SEARCH RECENT", "* SEARCH")

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
