package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/testwait"
)

func TestExpunge(t *testing.T) { bothModes(t, testExpunge) }

func testExpunge(t *testing.T, rev2 bool) {
	srv, _ := startWithInbox(t, "a", "b", "c", "d", "e")
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	rc.ok(`STORE 2,4 +FLAGS.SILENT (\Deleted)`)
	// Highest first, so every number is right when it is read (RFC 9051 7.5.1).
	if got, want := rc.ok("EXPUNGE"), []string{"* 4 EXPUNGE", "* 2 EXPUNGE"}; !slices.Equal(got, want) {
		t.Errorf("EXPUNGE: %q, want %q", got, want)
	}
	if got, want := rc.ok("FETCH 1:* UID"), []string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 5)"}; !slices.Equal(got, want) {
		t.Errorf("after EXPUNGE: %q, want %q", got, want)
	}
	// UID EXPUNGE removes only the named \Deleted messages (RFC 4315 2.1).
	rc.ok(`STORE 1:3 +FLAGS.SILENT (\Deleted)`)
	if got, want := rc.ok("UID EXPUNGE 3:5"), []string{"* 3 EXPUNGE", "* 2 EXPUNGE"}; !slices.Equal(got, want) {
		t.Errorf("UID EXPUNGE: %q, want %q", got, want)
	}
	// CLOSE expunges silently and leaves the selected state.
	if got := rc.ok("CLOSE"); len(got) != 0 {
		t.Errorf("CLOSE answered %q", got)
	}
	rc.expect("FETCH 1 UID", "BAD")
	got := rc.ok("EXAMINE INBOX")
	if !contains(got, "* 0 EXISTS") {
		t.Errorf("EXAMINE after CLOSE: %q", got)
	}
	rc.expect("EXPUNGE", "NO")
	rc.ok("UNSELECT")
	if _, tagged := rc.cmd("NOOP"); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("NOOP after UNSELECT: %q", tagged)
	}
}

// TestFlagChangeAfterQueuedExpunge checks that a flag change queued behind an expunge is
// sent with the message's number after that expunge (RFC 9051 7.5.1). The consistency
// checker found the number taken before it: another message's flags changed in the
// session's view, or a panic when the message was the last.
func TestFlagChangeAfterQueuedExpunge(t *testing.T) {
	srv, _ := startWithInbox(t, "a", "b", "c")
	watcher := loginRaw(t, srv)
	watcher.ok("SELECT INBOX")
	writer := loginRaw(t, srv)
	writer.ok("SELECT INBOX")
	writer.ok(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	writer.ok("UID EXPUNGE 1")
	writer.ok(`UID STORE 3 +FLAGS.SILENT (\Flagged)`)
	// Time for the watcher's feed to queue all three changes, so that one NOOP takes them
	// together (the case that went wrong); the assertions hold however they are batched.
	time.Sleep(200 * time.Millisecond)
	var got []string
	testwait.Until(t, 10*time.Second, func() error {
		got = append(got, watcher.ok("NOOP")...)
		if !contains(got, "* 1 EXPUNGE") || !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, `\Flagged`) }) {
			return fmt.Errorf("the watcher got %q, not yet the expunge and the flag change", got)
		}
		return nil
	})
	for _, line := range got {
		if strings.Contains(line, `\Flagged`) && !strings.HasPrefix(line, "* 2 FETCH ") {
			t.Errorf("flag change of UID 3 sent as %q, want message 2 (after * 1 EXPUNGE); all: %q", line, got)
		}
	}
}

// feedGate holds the batches of the shared views' feeds (mailview.go) while it is shut, as a
// paused or partitioned metadata node holds up a frontend's Watch stream.
type feedGate struct {
	mu   sync.Mutex
	shut chan struct{} // nil while open
	// onCommand, when set, is called as each command starts, with its name.
	onCommand atomic.Pointer[func(name string)]
}

// gateFeeds installs the gate in the engine's test hook; call it before the server starts.
func gateFeeds(t *testing.T) *feedGate {
	g := &feedGate{}
	imap.SetTestHook(t, func(point string) {
		if name, ok := strings.CutPrefix(point, "command "); ok {
			if f := g.onCommand.Load(); f != nil {
				(*f)(name)
			}
			return
		}
		if point == "feed" {
			g.mu.Lock()
			shut := g.shut
			g.mu.Unlock()
			if shut != nil {
				<-shut
			}
		}
	})
	return g
}

func (g *feedGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

func (g *feedGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

// appendOneUID APPENDs a message to INBOX and returns its UID from APPENDUID (RFC 4315 3).
func appendOneUID(t *testing.T, rc *rawConn) uint32 {
	t.Helper()
	msg := testMessage("new", "new")
	rc.write(fmt.Sprintf("a1 APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	_, tagged := rc.until("a1")
	var validity, uid uint32
	if _, err := fmt.Sscanf(tagged, "OK [APPENDUID %d %d]", &validity, &uid); err != nil {
		t.Fatalf("APPEND: %q", tagged)
	}
	return uid
}

// TestUIDCommandOnOwnAdditionBeforeFeed: a session APPENDs (or COPYs) to its selected
// mailbox and gets the new UID in APPENDUID (COPYUID) while its change feed is held up past
// the wait for it, then marks that UID \Deleted and UID EXPUNGEs it, as the e2e Jepsen
// writers do. Each command must do what its OK says or answer NO [UNAVAILABLE]: found by e2e
// TestJepsenClusterFaults, where both answered OK and did nothing (the view did not hold the
// UID yet, so the set named no message) and the "expunged" message stayed in INBOX.
func TestUIDCommandOnOwnAdditionBeforeFeed(t *testing.T) {
	copyFirst := func(t *testing.T, rc *rawConn) uint32 {
		_, tagged := rc.cmd("UID COPY 1 INBOX")
		var validity, src, uid uint32
		if _, err := fmt.Sscanf(tagged, "OK [COPYUID %d %d %d]", &validity, &src, &uid); err != nil {
			t.Fatalf("UID COPY: %q", tagged)
		}
		return uid
	}
	for _, tc := range []struct {
		name string
		add  func(t *testing.T, rc *rawConn) uint32
		// openAt opens the gate when this command starts; "" leaves the feed held until
		// both commands were answered.
		openAt string
	}{
		{"append/held", appendOneUID, ""},
		{"append/released-during-store", appendOneUID, "UID STORE"},
		{"copy/held", copyFirst, ""},
		{"copy/released-during-store", copyFirst, "UID STORE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, srv, rc := selectWithHeldFeed(t)
			uid := tc.add(t, rc)
			if tc.openAt != "" {
				open := func(name string) {
					if name == tc.openAt {
						g.open()
					}
				}
				g.onCommand.Store(&open)
			}
			if tc.openAt == "" {
				// A UID set within the view's messages cannot name the new ones: it is
				// answered at once, the feed still held.
				if _, tagged := rc.cmd(`UID STORE 1 +FLAGS.SILENT (\Flagged)`); !strings.HasPrefix(tagged, "OK") {
					t.Errorf("UID STORE 1 while the feed is held: %q, want OK", tagged)
				}
			}
			_, stored := rc.cmd(fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Deleted)`, uid))
			_, expunged := rc.cmd(fmt.Sprintf("UID EXPUNGE %d", uid))
			g.open()
			for _, answer := range []string{stored, expunged} {
				if !strings.HasPrefix(answer, "OK") && !strings.HasPrefix(answer, "NO [UNAVAILABLE]") {
					t.Errorf("answered %q, want OK or NO [UNAVAILABLE]", answer)
				}
			}

			other := loginRaw(t, srv)
			other.ok("EXAMINE INBOX")
			lines := other.ok(fmt.Sprintf("UID FETCH %d FLAGS", uid))
			present := contains(lines, fmt.Sprintf("UID %d", uid))
			if strings.HasPrefix(stored, "OK") && strings.HasPrefix(expunged, "OK") && present {
				t.Errorf("UID EXPUNGE %d answered %q (UID STORE %q), but the message is still there: %q", uid, expunged, stored, lines)
			}
			if strings.HasPrefix(stored, "OK") && present && !contains(lines, `\Deleted`) {
				t.Errorf("UID STORE %d +FLAGS (\\Deleted) answered %q, but the message has %q", uid, stored, lines)
			}
			if tc.openAt != "" && (!strings.HasPrefix(stored, "OK") || !strings.HasPrefix(expunged, "OK") || present) {
				t.Errorf("with the feed flowing again during %s: STORE %q, EXPUNGE %q, message there: %v", tc.openAt, stored, expunged, present)
			}
		})
	}
}

// selectWithHeldFeed starts a server with one message in INBOX, selects it in a raw session
// and then holds the mailbox's change feed back (at most 200 ms of waiting for it per
// command), for the tests of the session's own new messages before the feed delivers them.
func selectWithHeldFeed(t *testing.T) (*feedGate, *embedded.Server, *rawConn) {
	t.Helper()
	g := gateFeeds(t)
	imap.SetAppendSyncWait(t, 200*time.Millisecond)
	srv, c := startWithInbox(t, "first")
	c.Logout()
	t.Cleanup(g.open) // before the server stops: its feeds must not stay blocked
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	g.close()
	return g, srv, rc
}
