package imap_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/testwait"
)

// TestShutdownDuringAppend: a shutdown that starts while an APPEND's message is arriving
// lets the APPEND finish and answers it, then says BYE.
func TestShutdownDuringAppend(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir = dataDir })
	rc := loginRaw(t, srv)
	msg := testMessage("sent across a shutdown", strings.Repeat("line of body text\r\n", 2000))
	rc.writeExpect(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", len(msg)), "+ ")
	rc.write(msg[:len(msg)/2])

	shutdown := embeddedtest.ShutdownStarted(t, srv, srv.IMAPAddr())
	rc.write(msg[len(msg)/2:] + "\r\n")
	if _, tagged := rc.until("a1"); !strings.HasPrefix(tagged, "OK [APPENDUID ") {
		t.Fatalf("APPEND across shutdown: %q", tagged)
	}
	if l := rc.readLine(); l != byeShuttingDown {
		t.Fatalf("after APPEND: %q, want %q", l, byeShuttingDown)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// The message is there after a restart.
	again := loginRaw(t, startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir = dataDir }))
	if got := again.ok("STATUS INBOX (MESSAGES)"); !contains(got, "MESSAGES 1") {
		t.Fatalf("STATUS after restart: %q", got)
	}
}

// byeShuttingDown is the BYE of a draining server: UNAVAILABLE (RFC 5530 3) and the hint to
// reconnect (RFC 9051 7.1.5).
const byeShuttingDown = "* BYE [UNAVAILABLE] Server shutting down, reconnect to continue"

// TestShutdownLetsCommandArrive: a command whose literal is arriving when the shutdown
// starts is read whole and run; BYE comes after its response. The server's continuation
// request shows that it is reading the command before the shutdown begins.
func TestShutdownLetsCommandArrive(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.writeExpect("s1 SEARCH CHARSET UTF-8 TEXT {7}\r\n", "+ ")
	shutdown := embeddedtest.ShutdownStarted(t, srv, srv.IMAPAddr())
	rc.write("nothing\r\n")
	if _, tagged := rc.until("s1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SEARCH across the shutdown: %q", tagged)
	}
	if l := rc.readLine(); l != byeShuttingDown {
		t.Fatalf("after the SEARCH: %q, want %q", l, byeShuttingDown)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestShutdownLetsFetchFinish: a FETCH being sent when the shutdown starts is sent whole;
// the command the client pipelined after it is not run, BYE [UNAVAILABLE] comes instead.
// The body is larger than the socket buffers, so the FETCH cannot have ended before the
// shutdown began: the client reads it only afterwards.
func TestShutdownLetsFetchFinish(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.MaxMessageSize = 64 << 20 })
	rc := loginRaw(t, srv)
	msg := testMessage("larger than the socket buffers", strings.Repeat("a line of body text in a large message\r\n", 600_000))
	rc.writeExpect(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", len(msg)), "+ ")
	rc.write(msg + "\r\n")
	if _, tagged := rc.until("a1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("APPEND: %q", tagged)
	}
	rc.ok("SELECT INBOX")
	rc.write("f1 FETCH 1 BODY.PEEK[]\r\nn1 NOOP\r\n")
	if l := rc.readLine(); !strings.HasSuffix(l, fmt.Sprintf("{%d}", len(msg))) {
		t.Fatalf("FETCH: %q", l)
	}
	shutdown := embeddedtest.ShutdownStarted(t, srv, srv.IMAPAddr())
	rc.conn.SetReadDeadline(time.Now().Add(time.Minute))
	body := make([]byte, len(msg))
	if _, err := io.ReadFull(rc.r, body); err != nil {
		t.Fatalf("FETCH across the shutdown: %v", err)
	}
	if string(body) != msg {
		t.Fatal("FETCH across the shutdown: the body differs from the message appended")
	}
	if l := rc.readLine(); !strings.HasSuffix(l, ")") {
		t.Fatalf("end of the FETCH response: %q", l)
	}
	if l := rc.readLine(); !strings.HasPrefix(l, "f1 OK") {
		t.Fatalf("FETCH across the shutdown: %q", l)
	}
	if l := rc.readLine(); l != byeShuttingDown {
		t.Fatalf("after the FETCH: %q, want %q", l, byeShuttingDown)
	}
	if l, err := rc.r.ReadString('\n'); err == nil {
		t.Fatalf("after the BYE: %q; the pipelined NOOP must not run", l)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestConnectionLimit: over MaxConnections a client is told BYE [UNAVAILABLE] at once, and
// a slot freed by a closing connection is usable again.
func TestConnectionLimit(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPLimits = imap.Limits{MaxConnections: 2}
	})
	first := dialRaw(t, srv)
	dialRaw(t, srv)
	conn, err := net.Dial("tcp", srv.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	refused := &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	if l := refused.readLine(); !strings.HasPrefix(l, "* BYE [UNAVAILABLE] ") {
		t.Fatalf("greeting over the limit: %q", l)
	}
	first.ok("LOGOUT")
	waitForGreeting(t, srv, "* OK ")
}

// waitForGreeting dials until the greeting starts with want.
func waitForGreeting(t *testing.T, srv *embedded.Server, want string) {
	t.Helper()
	testwait.Until(t, 20*time.Second, func() error {
		conn, err := net.Dial("tcp", srv.IMAPAddr())
		if err != nil {
			t.Fatal(err)
		}
		rc := &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
		l := rc.readLine()
		conn.Close()
		if !strings.HasPrefix(l, want) {
			return fmt.Errorf("greeting still %q, want %q...", l, want)
		}
		return nil
	})
}

// TestWriteTimeout: a client that sends commands but never reads the responses is
// disconnected once a write blocks for WriteTimeout; its slot frees up.
func TestWriteTimeout(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPLimits = imap.Limits{MaxConnections: 1, WriteTimeout: 300 * time.Millisecond}
	})
	rc := loginRaw(t, srv)
	msg := testMessage("large", strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 12000))
	rc.write(fmt.Sprintf("a1 APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	if _, tagged := rc.until("a1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("APPEND: %q", tagged)
	}
	rc.ok("SELECT INBOX")
	// ~80 MB of responses that are never read.
	rc.write(strings.Repeat("f UID FETCH 1 BODY.PEEK[]\r\n", 100))
	waitForGreeting(t, srv, "* OK ")
}

// TestAutologout: a connection idle past its timer is told BYE (RFC 9051 5.4); before
// authentication the shorter LoginTimeout applies.
func TestAutologout(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPLimits = imap.Limits{LoginTimeout: 200 * time.Millisecond, IdleTimeout: 400 * time.Millisecond}
	})
	rc := dialRaw(t, srv)
	if l := rc.readLine(); !strings.HasPrefix(l, "* BYE Autologout") {
		t.Fatalf("before login: %q", l)
	}
	rc = loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	if l := rc.readLine(); !strings.HasPrefix(l, "* BYE Autologout") {
		t.Fatalf("after login: %q", l)
	}
}

func TestID(t *testing.T) {
	srv := startServer(t)
	rc := dialRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); !contains(caps, " ID") {
		t.Errorf("CAPABILITY lacks ID: %q", caps)
	}
	// RFC 2971 3.4's example, in the not authenticated state.
	got := rc.ok(`ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")`)
	if len(got) != 1 || !strings.HasPrefix(got[0], `* ID ("name" "Strata" "version" "`) {
		t.Fatalf("ID = %q", got)
	}
	rc.ok("ID NIL")
	rc.ok(`ID ("name" {4}` + "\r\nmutt" + ` "os" NIL)`)
	rc.expect("ID", "BAD")
	rc.expect(`ID ("name")`, "BAD")
	rc.ok("LOGIN demo@example.com demo")
	rc.ok(`ID ("name" "x")`)
	rc.ok("SELECT INBOX")
	rc.ok("ID NIL")
}

// TestEnableUTF8Accept: after ENABLE UTF8=ACCEPT an IMAP4rev1 session gets UTF-8 in quoted
// strings (RFC 6855 3) but keeps IMAP4rev1's SEARCH answers; ENABLED lists what changed.
func TestEnableUTF8Accept(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	msg := testMessage("grüße", "body") // an 8-bit UTF-8 header (RFC 6532)
	appendMessage(t, c, "INBOX", msg)

	rc := loginRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); !contains(caps, " UTF8=ACCEPT") || contains(caps, "XUNKNOWN") {
		t.Errorf("CAPABILITY: %q", caps)
	}
	rc.ok("SELECT INBOX")
	if got := rc.ok("FETCH 1 (ENVELOPE)"); contains(got, `"grüße"`) || !contains(got, "{7}\r\ngrüße") {
		t.Errorf("IMAP4rev1 ENVELOPE has UTF-8 in a quoted string: %q", got)
	}
	rc.ok("UNSELECT")
	if got := rc.ok("ENABLE UTF8=ACCEPT XUNKNOWN"); len(got) != 1 || got[0] != "* ENABLED UTF8=ACCEPT" {
		t.Errorf("ENABLE = %q", got)
	}
	if got := rc.ok("ENABLE UTF8=ACCEPT"); len(got) != 1 || got[0] != "* ENABLED" {
		t.Errorf("second ENABLE = %q", got)
	}
	rc.ok("SELECT INBOX")
	if got := rc.ok("FETCH 1 (ENVELOPE)"); !contains(got, `"grüße"`) {
		t.Errorf("ENVELOPE after UTF8=ACCEPT: %q", got)
	}
	if got := rc.ok("SEARCH ALL"); len(got) != 1 || got[0] != "* SEARCH 1" {
		t.Errorf("SEARCH after UTF8=ACCEPT (still IMAP4rev1) = %q", got)
	}
}
