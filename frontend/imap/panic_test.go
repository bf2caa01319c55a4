package imap_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/testwait"
)

// errorRecorder is a testing.TB whose Errorf is recorded instead of failing the test, so a
// test can check that the harness's panic check reports what it should. Everything else
// (Cleanup, TempDir, Fatalf) is the real test's.
type errorRecorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// expectPanicReport starts a server whose panic check reports to a recorder, and checks at
// the end of the test, after that check has run, that it reported one panic in where with
// the injected value.
func expectPanicReport(t *testing.T, where string, edits ...func(*embedded.Config)) *embedded.Server {
	t.Helper()
	rec := &errorRecorder{TB: t}
	t.Cleanup(func() { // runs last, after the server's own cleanups
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.errors) != 1 {
			t.Fatalf("the panic check reported %q, want one report", rec.errors)
		}
		for _, want := range []string{"recovered 1 panic", "panic in " + where, "injected panic"} {
			if !strings.Contains(rec.errors[0], want) {
				t.Errorf("the panic check reported %q, want it to mention %q", rec.errors[0], want)
			}
		}
	})
	return startServerWith(rec, func(cfg *embedded.Config) {
		for _, edit := range edits {
			edit(cfg)
		}
	})
}

// panicAt returns a test hook that panics at the nth time it reaches point.
func panicAt(point string, nth int32) func(string) {
	var seen atomic.Int32
	return func(p string) {
		if p == point && seen.Add(1) == nth {
			panic("injected panic at " + p)
		}
	}
}

// wantUnavailableBye checks that the first BYE among lines is BYE [UNAVAILABLE], which ends
// a session whose change feed died so that its client reconnects.
func wantUnavailableBye(t *testing.T, when string, lines []string) {
	t.Helper()
	if bye := linesWith(lines, "* BYE"); len(bye) == 0 || !strings.HasPrefix(bye[0], "* BYE [UNAVAILABLE] ") {
		t.Fatalf("%s: %q, want BYE [UNAVAILABLE]", when, lines)
	}
}

// TestPanicInCommand: a command that panics loses its connection, and the test that caused
// it fails.
func TestPanicInCommand(t *testing.T) {
	imap.SetTestHook(t, panicAt("command NOOP", 1))
	srv := expectPanicReport(t, "IMAP connection")
	rc := loginRaw(t, srv)
	rc.write("a NOOP\r\n")
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := rc.r.ReadString('\n'); err == nil {
		t.Fatalf("NOOP answered %q, want the connection closed", line)
	}
	// The connection's own deferred close runs while the panic unwinds, before the
	// registry's recover counts it: the client can see the close first.
	testwait.Until(t, 10*time.Second, func() error {
		if n := srv.IMAPRecoveredPanics(); n != 1 {
			return fmt.Errorf("RecoveredPanics = %d, want 1", n)
		}
		return nil
	})
	// The server goes on serving other connections.
	loginRaw(t, srv).ok("NOOP")
}

// TestPanicInChangeFeed: a selected session whose change feed panicked is told BYE
// [UNAVAILABLE] rather than left without updates: in IDLE at once, otherwise with the
// response to its next command; and the test that caused it fails.
func TestPanicInChangeFeed(t *testing.T) {
	for _, idle := range []bool{true, false} {
		t.Run(fmt.Sprintf("idle=%v", idle), func(t *testing.T) {
			imap.SetTestHook(t, panicAt("feed", 1))
			srv := expectPanicReport(t, "mailbox change feed")
			watcher := loginRaw(t, srv)
			watcher.ok("SELECT INBOX")
			if idle {
				watcher.startIdle("i")
			}
			appendMessage(t, login(t, srv), "INBOX", testMessage("wakes the feed", "body"))
			if idle {
				wantUnavailableBye(t, "IDLE after the feed died", watcher.waitFor("* BYE"))
				return
			}
			// The append's change may reach the feed after a NOOP or two; the BYE follows it.
			wantUnavailableBye(t, "NOOP after the feed died", watcher.noopUntil("* BYE"))
		})
	}
}

// TestPanicInAccountFeed: a NOTIFY session whose account feed panicked is told BYE
// [UNAVAILABLE] while it waits for its next command, and the test that caused it fails.
func TestPanicInAccountFeed(t *testing.T) {
	// The first batch is the snapshot NOTIFY SET waits for; the second a change.
	imap.SetTestHook(t, panicAt("account feed", 2))
	srv := expectPanicReport(t, "account change feed")
	notified := loginRaw(t, srv)
	notified.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
	loginRaw(t, srv).ok("CREATE Wakes")
	wantUnavailableBye(t, "NOTIFY after the account feed died", notified.waitFor("* BYE"))
}

// TestPanicInSearchFetcher: a panic fetching SEARCH's records fails the command, not the
// connection, and the test that caused it fails.
func TestPanicInSearchFetcher(t *testing.T) {
	imap.SetTestHook(t, panicAt("search records", 1))
	// Without the search index: an index that has caught up proves a whole word's matches
	// and fetches no records, so whether the hook is reached would depend on its timing.
	srv := expectPanicReport(t, "SEARCH record fetcher", func(cfg *embedded.Config) { cfg.DisableSearchIndex = true })
	appendMessage(t, login(t, srv), "INBOX", testMessage("searched", "body"))
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.expect("SEARCH TEXT searched", "NO")
	rc.ok("NOOP")
}
