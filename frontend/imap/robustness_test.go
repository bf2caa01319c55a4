package imap_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGarbageAndLimits(t *testing.T) {
	srv := startServer(t)
	bystander := loginRaw(t, srv)
	bystander.ok("SELECT INBOX")

	rc := dialRaw(t, srv)
	for _, garbage := range []string{"", "\x00\x01\x02", "* NOOP", "+", "a b c d", "tag UID", "tag FETCH", `t "unterminated`, "t LOGIN {5}"} {
		rc.write(garbage + "\r\n")
		if garbage == "t LOGIN {5}" {
			// A synchronising literal gets its continuation; the client gives up on it.
			if l := rc.readLine(); !strings.HasPrefix(l, "+ ") {
				t.Fatalf("continuation: %q", l)
			}
			rc.write("abcde\r\n")
		}
		if l := rc.readLine(); !strings.Contains(l, " BAD ") {
			t.Errorf("%q answered %q", garbage, l)
		}
	}
	rc.ok("NOOP")

	// A 1 MiB line: BAD, and the connection goes on.
	rc.write("big NOOP " + strings.Repeat("x", 1<<20) + "\r\n")
	if l := rc.readLine(); !strings.Contains(l, "BAD") {
		t.Errorf("1 MiB line answered %q", l)
	}
	rc.ok("NOOP")

	// A literal over the limit outside APPEND: refused without a continuation.
	rc.writeExpect("lit LOGIN {10000000}\r\n", "lit BAD")
	rc.ok("NOOP")
	// The same with LITERAL+: the server reads and drops it.
	rc.writeExpect("litp LOGIN {100000+}\r\n"+strings.Repeat("y", 100000)+" pass\r\n", "litp BAD")
	rc.ok("LOGIN demo@example.com demo")

	// APPEND over APPENDLIMIT (1 MiB in these tests): NO [TOOBIG] before any data.
	rc.writeExpect("ap APPEND INBOX {2000000}\r\n", "ap NO [TOOBIG]")
	rc.writeExpect("ap2 APPEND INBOX {2000000+}\r\n"+strings.Repeat("z", 2000000)+"\r\n", "ap2 NO [TOOBIG]")
	rc.ok("NOOP")
	bystander.ok("NOOP")
}

func TestAppendRaw(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	msg := testMessage("raw append", "body")
	rc.write("a1 APPEND INBOX (\\Seen) \"07-Feb-1994 21:52:25 -0800\" {" + itoa(len(msg)) + "}\r\n")
	if l := rc.readLine(); l != "+ Ready for literal data" {
		t.Fatalf("continuation: %q", l)
	}
	rc.write(msg + "\r\n")
	untagged, tagged := rc.until("a1")
	if !strings.HasPrefix(tagged, "OK [APPENDUID ") || !strings.HasSuffix(strings.SplitN(tagged, "]", 2)[0], " 1") {
		t.Errorf("APPEND: %q", tagged)
	}
	// Appending to the selected mailbox: EXISTS comes with the response, and RECENT in this
	// IMAP4rev1 session, the only one to learn of the message (RFC 3501 7.3.2).
	if len(untagged) != 2 || untagged[0] != "* 1 EXISTS" || untagged[1] != "* 1 RECENT" {
		t.Errorf("APPEND untagged %q", untagged)
	}
	// LITERAL+ and a literal mailbox name.
	rc.write("a2 APPEND {5+}\r\nINBOX {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	if untagged, tagged := rc.until("a2"); !strings.HasPrefix(tagged, "OK [APPENDUID ") || !contains(untagged, "* 2 EXISTS") {
		t.Errorf("APPEND LITERAL+: %q %q", untagged, tagged)
	}
	got := rc.ok("FETCH 1 (FLAGS INTERNALDATE)")
	if len(got) != 1 || got[0] != `* 1 FETCH (FLAGS (\Seen \Recent) INTERNALDATE "08-Feb-1994 05:52:25 +0000")` {
		t.Errorf("appended message: %q", got)
	}
	rc.expect("APPEND Missing {3}", "NO [TRYCREATE]")
	rc.write("a3 APPEND INBOX {3+}\r\nabc extra\r\n")
	if _, tagged := rc.until("a3"); !strings.HasPrefix(tagged, "BAD") {
		t.Errorf("APPEND with trailing data: %q", tagged)
	}
	rc.ok("NOOP")
}

// TestShutdownSaysBye: a shutdown tells a session in IDLE and one waiting between commands
// BYE [UNAVAILABLE] with the hint to reconnect (RFC 9051 7.1.5, RFC 5530 3); the IDLE is
// then completed (its tagged OK) and both connections close.
func TestShutdownSaysBye(t *testing.T) {
	srv := startServer(t)
	idle := loginRaw(t, srv)
	idle.ok("SELECT INBOX")
	idle.startIdle("i1")
	waiting := loginRaw(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, rc := range []*rawConn{idle, waiting} {
		if l := rc.readLine(); l != byeShuttingDown {
			t.Errorf("got %q, want %q", l, byeShuttingDown)
		}
	}
	if l := idle.readLine(); !strings.HasPrefix(l, "i1 OK") {
		t.Errorf("after the BYE in IDLE: %q, want i1 OK", l)
	}
	for _, rc := range []*rawConn{idle, waiting} {
		if _, err := rc.r.ReadString('\n'); err == nil {
			t.Error("the connection stays open after the BYE")
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
