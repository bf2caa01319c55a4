package imap_test

import (
	"slices"
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
