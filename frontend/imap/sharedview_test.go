package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	imapserver "github.com/strata-mail/strata/frontend/imap"
)

// TestIdleSessionsShareLargeView: in a mailbox of more messages than a chunk of the shared
// view's list holds (9,000, three chunks), two sessions IDLE while a third changes a flag
// and expunges a message; both IDLE sessions get the FETCH and EXPUNGE responses in order
// (RFC 9051 7.4.2, 7.5.1, 6.3.13), and afterwards each shares every chunk of the view's
// list again (selected.rejoin), which sessions of a mailbox above 8,192 messages did not.
func TestIdleSessionsShareLargeView(t *testing.T) {
	const messages = 9000
	type sharing struct{ shared, chunks, messages int }
	var mu sync.Mutex
	last := map[any]sharing{}
	imapserver.OnRejoin(t, func(session any, shared, chunks, messages, _ int) {
		mu.Lock()
		defer mu.Unlock()
		last[session] = sharing{shared, chunks, messages}
	})
	srv := startServer(t)
	fillMailbox(t, srv, messages)

	idlers := []*rawConn{loginRaw(t, srv), loginRaw(t, srv)}
	for _, rc := range idlers {
		rc.ok("ENABLE IMAP4rev2") // no \Recent (RFC 9051 dropped it)
		untagged, tagged := rc.cmd("SELECT INBOX")
		if !slices.Contains(untagged, "* 9000 EXISTS") || tagged[:2] != "OK" {
			t.Fatalf("SELECT: %q %q", untagged, tagged)
		}
		rc.write("i1 IDLE\r\n")
		if l := rc.readLine(); l[0] != '+' {
			t.Fatalf("IDLE: %q", l)
		}
	}
	changer := loginRaw(t, srv)
	changer.ok("SELECT INBOX")
	changer.ok(`STORE 100 +FLAGS.SILENT (\Seen)`)
	changer.ok(`STORE 8500 +FLAGS.SILENT (\Deleted)`)
	changer.ok("EXPUNGE")

	want := []string{`* 100 FETCH (FLAGS (\Seen))`, `* 8500 FETCH (FLAGS (\Deleted))`, `* 8500 EXPUNGE`}
	for k, rc := range idlers {
		rc.readTimeout = 30 * time.Second
		var got []string
		for len(got) < len(want) {
			got = append(got, rc.readLine())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("idling session %d got %q, want %q", k, got, want)
		}
		rc.write("DONE\r\n")
		if untagged, tagged := rc.until("i1"); len(untagged) != 0 || tagged[:2] != "OK" {
			t.Fatalf("DONE: %q %q", untagged, tagged)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	inStep := 0 // sessions whose last comparison, after every change, found them sharing
	for _, s := range last {
		if s.messages == messages-1 && s.chunks >= 3 && s.shared == s.chunks {
			inStep++
		}
	}
	if inStep < len(idlers) {
		t.Fatalf("%d sessions share the view's chunks after the changes, want at least %d: %v", inStep, len(idlers), last)
	}
}

// TestSessionsRejoinAfterCompaction: a third session gives the first 2,048 of 9,000 messages
// flag sets of their own (a keyword per bit of the message's number), enough for the
// shared view and its sessions to compact their flag sets, which copies every chunk of
// their lists; each session's rejoin afterwards compares one by one only the messages of
// the chunk the changes touched, not all 9,000 under the view's lock (issue 14), shares
// every chunk of the view again, and then answers FETCH FLAGS as the changer does.
func TestSessionsRejoinAfterCompaction(t *testing.T) {
	const messages, changed, bits = 9000, 2048, 11
	type rejoin struct{ shared, chunks, messages, compared, mostCompared int }
	var mu sync.Mutex
	last := map[any]rejoin{}
	imapserver.OnRejoin(t, func(session any, shared, chunks, messages, compared int) {
		mu.Lock()
		defer mu.Unlock()
		most := max(last[session].mostCompared, compared)
		last[session] = rejoin{shared, chunks, messages, compared, most}
	})
	srv := startServer(t)
	fillMailbox(t, srv, messages)

	sessions := []*rawConn{loginRaw(t, srv), loginRaw(t, srv), loginRaw(t, srv)}
	changer := loginRaw(t, srv)
	for _, rc := range append(sessions, changer) {
		rc.ok("ENABLE IMAP4rev2") // no \Recent (RFC 9051 dropped it), which differs by session
		rc.ok("SELECT INBOX")
	}
	for bit := range bits {
		var set []string
		for from := 1 << bit; from < changed; from += 2 << bit {
			set = append(set, fmt.Sprintf("%d:%d", from+1, from+1<<bit))
		}
		changer.ok(fmt.Sprintf("STORE %s +FLAGS.SILENT ($bit%d)", strings.Join(set, ","), bit))
	}
	changer.ok("STORE 1 +FLAGS.SILENT ($done)")
	want := changer.ok("FETCH 1:* FLAGS")

	for k, rc := range sessions {
		rc.readTimeout = time.Minute
		for done := false; !done; {
			for _, l := range rc.ok("NOOP") {
				done = done || strings.HasPrefix(l, "* 1 FETCH (FLAGS (") && strings.Contains(l, "$done")
			}
		}
		if got := rc.ok("FETCH 1:* FLAGS"); !slices.Equal(got, want) {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Fatalf("session %d: FETCH FLAGS answers %q, the changer's %q", k, got[i], want[i])
				}
			}
			t.Fatalf("session %d: FETCH FLAGS answers %d lines, the changer's %d", k, len(got), len(want))
		}
	}

	mu.Lock()
	defer mu.Unlock()
	rejoined := 0
	for _, r := range last {
		if r.messages != messages || r.chunks < 3 {
			continue
		}
		rejoined++
		if r.shared != r.chunks || r.mostCompared > 4096 {
			t.Errorf("a session shares %d of %d chunks after the changes and compared up to %d messages in a rejoin, want all and at most 4096: %+v", r.shared, r.chunks, r.mostCompared, r)
		}
	}
	if rejoined < len(sessions) {
		t.Fatalf("%d sessions rejoined the view, want at least %d: %v", rejoined, len(sessions), last)
	}
}
