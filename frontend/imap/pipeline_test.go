package imap_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/frontend/imap"
)

// TestPipelining sends 200 commands in one write, LITERAL+ APPENDs among them (RFC 7888),
// and checks that each is answered, in order (RFC 9051 5.5: the server may read ahead,
// and the responses of commands in a pipeline come in the order sent).
func TestPipelining(t *testing.T) {
	srv := startServer(t)
	rc := dialRaw(t, srv)

	var batch strings.Builder
	var tags []string
	add := func(format string, args ...any) {
		tag := fmt.Sprintf("p%03d", len(tags))
		tags = append(tags, tag)
		fmt.Fprintf(&batch, tag+" "+format+"\r\n", args...)
	}
	add("LOGIN demo@example.com demo")
	add("SELECT INBOX")
	appends := 0
	for len(tags) < 200 {
		switch len(tags) % 6 {
		case 2:
			msg := testMessage(fmt.Sprintf("pipelined %d", len(tags)), "body")
			add("APPEND INBOX (\\Flagged) {%d+}\r\n%s", len(msg), msg)
			appends++
		case 3:
			add("UID FETCH 1:* (UID FLAGS)")
		case 4:
			add("UID STORE 1:* +FLAGS.SILENT (\\Seen)")
		case 5:
			add("SEARCH UNSEEN")
		case 0:
			add("FETCH 1 (FLAGS)") // RFC 9051 6.3.12: the APPEND's EXISTS came before
		case 1:
			add("NOOP")
		}
	}
	rc.write(batch.String())

	for _, tag := range tags {
		untagged, tagged := rc.until(tag)
		if !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("%s: %q (untagged %q)", tag, tagged, untagged)
		}
		for _, l := range untagged {
			if strings.HasPrefix(l, "p") {
				t.Fatalf("response of another command before %s: %q", tag, l)
			}
		}
	}
	// Every APPEND stored its message, and a later UID STORE (the batch's last STORE follows
	// its last APPEND) marked each \Seen.
	untagged := rc.ok("SEARCH ALL")
	if got := strings.Fields(strings.TrimPrefix(untagged[len(untagged)-1], "* SEARCH")); len(got) != appends {
		t.Fatalf("SEARCH ALL after %d APPENDs: %q", appends, untagged)
	}
	untagged = rc.ok("SEARCH FLAGGED SEEN")
	if got := strings.Fields(strings.TrimPrefix(untagged[len(untagged)-1], "* SEARCH")); len(got) != appends {
		t.Fatalf("SEARCH FLAGGED SEEN after %d APPENDs: %q", appends, untagged)
	}
}

// TestIdlePipelinedDone: IDLE, its DONE and the next command in one write (RFC 2177 3).
func TestIdlePipelinedDone(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.writeExpect("i1 IDLE\r\nDONE\r\ni2 NOOP\r\ni3 IDLE\r\nDONE\r\n", "+ ")
	for _, tag := range []string{"i1", "i2"} {
		if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("%s: %q", tag, tagged)
		}
	}
	if l := rc.readLine(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("second IDLE: %q", l)
	}
	if _, tagged := rc.until("i3"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("i3: %q", tagged)
	}
	rc.ok("NOOP")
}

// TestPipelineOneWrite: the responses of commands that arrive together leave together
// (commandDone): the client's first read after sending STORE and FETCH in one write gets
// both tagged responses, not the STORE's alone.
func TestPipelineOneWrite(t *testing.T) {
	// The hold's deadline out of the way: on a loaded machine the FETCH may take longer
	// than it, and then the STORE's response goes alone, as it should (TestPipelineHoldBounded).
	imap.SetPipelineHold(t, time.Minute)
	srv := startServer(t)
	appendMessage(t, login(t, srv), "INBOX", testMessage("pipelined", "body"))
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.write("s1 STORE 1 +FLAGS.SILENT (\\Flagged)\r\ns2 FETCH 1 (FLAGS)\r\n")
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := rc.conn.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	got := string(buf[:n])
	if !strings.Contains(got, "s1 OK") || !strings.HasSuffix(got, "\r\ns2 OK FETCH completed\r\n") {
		t.Fatalf("first read %q, want both tagged responses", got)
	}
}

// TestPipelinePartialLine: a response is held back only while the next command's line has
// arrived whole; with part of it, the response goes out, so that a client that waits for it
// before sending the rest is answered.
func TestPipelinePartialLine(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.write("a1 NOOP\r\na2 NO")
	if _, tagged := rc.until("a1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("a1: %q", tagged)
	}
	rc.write("OP\r\n")
	if _, tagged := rc.until("a2"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("a2: %q", tagged)
	}
}

// TestPipelineHoldBounded: a response held for the responses of the commands pipelined
// after it (TestPipelineOneWrite) goes out when the next command waits, however long that
// wait: for the change feed (a UID STORE of the session's own new message while the feed
// is held up, sync.go), for the rest of a literal, or in a step that flushes nothing
// itself (a command held in the test hook), which the hold's deadline covers. Before, the
// first response waited for the second command to end: each case hung until the read
// below gave up.
func TestPipelineHoldBounded(t *testing.T) {
	// readFirst reads the first command's response while the second one waits.
	readFirst := func(t *testing.T, rc *rawConn) {
		t.Helper()
		rc.readTimeout = 5 * time.Second // detects the hang; no bound on speed
		if _, tagged := rc.until("p1"); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("p1: %q", tagged)
		}
		rc.readTimeout = 0
	}
	t.Run("feed", func(t *testing.T) {
		g := gateFeeds(t)
		imap.SetAppendSyncWait(t, 200*time.Millisecond)
		srv, c := startWithInbox(t, "first")
		c.Logout()
		t.Cleanup(g.open)
		rc := loginRaw(t, srv)
		rc.ok("SELECT INBOX")
		g.close()
		uid := appendOneUID(t, rc)
		// The UID STORE waits for the feed until the gate opens (sync.go awaitOwnAdditions).
		imap.SetAppendSyncWait(t, time.Minute)
		rc.write(fmt.Sprintf("p1 NOOP\r\np2 UID STORE %d +FLAGS.SILENT (\\Flagged)\r\n", uid))
		readFirst(t, rc)
		g.open()
		if _, tagged := rc.until("p2"); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("p2: %q", tagged)
		}
	})
	t.Run("literal", func(t *testing.T) {
		srv := startServer(t)
		rc := loginRaw(t, srv)
		msg := testMessage("slow", "a literal that arrives in two parts")
		rc.write(fmt.Sprintf("p1 NOOP\r\np2 APPEND INBOX {%d+}\r\n%s", len(msg), msg[:10]))
		readFirst(t, rc)
		rc.write(msg[10:] + "\r\n")
		if _, tagged := rc.until("p2"); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("p2: %q", tagged)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		var block atomic.Pointer[chan struct{}]
		imap.SetTestHook(t, func(point string) {
			if point == "command NOOP" {
				if ch := block.Swap(nil); ch != nil {
					<-*ch
				}
			}
		})
		srv := startServer(t)
		rc := loginRaw(t, srv)
		release := make(chan struct{})
		var once sync.Once
		unblock := func() { once.Do(func() { close(release) }) }
		t.Cleanup(unblock) // before the server stops
		block.Store(&release)
		rc.write("p1 CAPABILITY\r\np2 NOOP\r\n")
		readFirst(t, rc)
		unblock()
		if _, tagged := rc.until("p2"); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("p2: %q", tagged)
		}
	})
}
