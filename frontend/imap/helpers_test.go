package imap_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/testlog"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// startServer runs a whole embedded Strata (Raft metadata over gRPC, filesystem blobs, this
// IMAP engine) with the demo account and returns it.
func startServer(t testing.TB) *embedded.Server {
	t.Helper()
	return startServerWith(t, func(*embedded.Config) {})
}

// startServerWith is startServer with the configuration changed by edit first. When the
// test ends, after the server has closed, the test fails if the IMAP engine recovered a
// panic while it ran (checkNoPanics): a client sees one only as a lost connection.
func startServerWith(t testing.TB, edit func(*embedded.Config)) *embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	panics := &panicLog{}
	cfg := embedded.Config{
		DataDir:            t.TempDir(),
		IMAPListen:         "127.0.0.1:0",
		GRPCListen:         "127.0.0.1:0",
		Demo:               true,
		AllowPlaintextAuth: true,
		MaxMessageSize:     1 << 20,
		Logger:             slog.New(panics.handler()),
	}
	edit(&cfg)
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start embedded server: %v", err)
	}
	t.Cleanup(func() { checkNoPanics(t, srv, panics) }) // runs after Close
	t.Cleanup(func() { srv.Close() })
	return srv
}

// checkNoPanics fails t if srv's IMAP engine recovered panics, with their log records.
func checkNoPanics(t testing.TB, srv *embedded.Server, panics *panicLog) {
	t.Helper()
	if n := srv.IMAPRecoveredPanics(); n > 0 {
		t.Errorf("the IMAP engine recovered %d panic(s):\n%s", n, panics.String())
	}
}

// panicLog keeps the log records of recovered panics ("panic in ...", at Error) of a test
// server and drops the others, so a test that fails on a panic shows its stack.
type panicLog struct{ testlog.Buffer }

// handler returns the slog handler that writes the panic records to l.
func (l *panicLog) handler() slog.Handler {
	return panicFilter{slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelError})}
}

// panicFilter passes the records of recovered panics to its handler.
type panicFilter struct{ slog.Handler }

func (f panicFilter) Handle(ctx context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "panic in ") {
		return nil
	}
	return f.Handler.Handle(ctx, r)
}

func (f panicFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return panicFilter{f.Handler.WithAttrs(attrs)}
}

func (f panicFilter) WithGroup(name string) slog.Handler {
	return panicFilter{f.Handler.WithGroup(name)}
}

// dial connects an imapclient to srv without logging in.
func dial(t testing.TB, srv *embedded.Server, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.IMAPAddr(), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// login connects and logs in as the demo account.
func login(t testing.TB, srv *embedded.Server) *imapclient.Client {
	t.Helper()
	return loginWith(t, srv, nil)
}

func loginWith(t testing.TB, srv *embedded.Server, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c := dial(t, srv, opts)
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// loginUTF8 logs in as the demo account and enables IMAP4rev2, after which mailbox names
// are UTF-8 (RFC 9051); without it a session speaks IMAP4rev1 and modified UTF-7.
func loginUTF8(t testing.TB, srv *embedded.Server) *imapclient.Client {
	t.Helper()
	c := login(t, srv)
	if _, err := c.Enable(imap.CapIMAP4rev2).Wait(); err != nil {
		t.Fatalf("ENABLE IMAP4rev2: %v", err)
	}
	return c
}

// testMessage returns a small RFC 5322 message with CRLF line ends.
func testMessage(subject, body string) string {
	return strings.ReplaceAll(fmt.Sprintf(`From: Alice <alice@example.org>
To: Demo <demo@example.com>
Subject: %s
Date: Mon, 7 Feb 1994 21:52:25 -0800
Message-ID: <%s@example.org>
Content-Type: text/plain; charset=us-ascii

%s
`, subject, strings.ReplaceAll(subject, " ", "."), body), "\n", "\r\n")
}

// appendMessage appends msg to mailbox and returns its UID.
func appendMessage(t testing.TB, c *imapclient.Client, mailbox, msg string, flags ...imap.Flag) imap.UID {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags})
	if _, err := io.WriteString(cmd, msg); err != nil {
		t.Fatalf("append: write: %v", err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("append: close: %v", err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
	return data.UID
}

// startWithInbox starts a server and appends to the demo INBOX, through a logged-in client
// it returns, one test message for each subject, with the subject as its body.
func startWithInbox(t testing.TB, subjects ...string) (*embedded.Server, *imapclient.Client) {
	t.Helper()
	srv := startServer(t)
	c := login(t, srv)
	for _, s := range subjects {
		appendMessage(t, c, "INBOX", testMessage(s, s))
	}
	return srv, c
}

// appendNumbered appends n test messages, subjects "m0" to "m<n-1>", to INBOX through c;
// message i gets the flags flagsOf(i) when flagsOf is not nil.
func appendNumbered(t testing.TB, c *imapclient.Client, n int, flagsOf func(i int) []imap.Flag) {
	t.Helper()
	for i := range n {
		var flags []imap.Flag
		if flagsOf != nil {
			flags = flagsOf(i)
		}
		appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("m%d", i), "x"), flags...)
	}
}

// everyOther is a flagsOf for appendNumbered: flag on every other message, from message
// first (0 or 1) on.
func everyOther(first int, flag imap.Flag) func(i int) []imap.Flag {
	return func(i int) []imap.Flag {
		if i%2 == first {
			return []imap.Flag{flag}
		}
		return nil
	}
}

// rawConn is a plain socket to the server for checking exact wire output.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	n    int
	// readTimeout bounds each line's read; 10 s if zero.
	readTimeout time.Duration
	// deflate, after COMPRESS (compress_test.go), compresses what write sends into
	// deflated, which goes out in one write: a server that answers as soon as the data
	// arrives may close the connection before a second write (LOGOUT).
	deflate  *flate.Writer
	deflated bytes.Buffer
}

// dialRaw connects and reads the greeting.
func dialRaw(t *testing.T, srv *embedded.Server) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.IMAPAddr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	rc := &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	if greeting := rc.readLine(); !strings.HasPrefix(greeting, "* OK ") {
		t.Fatalf("greeting %q", greeting)
	}
	return rc
}

// loginRaw is dialRaw followed by LOGIN.
func loginRaw(t *testing.T, srv *embedded.Server) *rawConn {
	t.Helper()
	rc := dialRaw(t, srv)
	rc.ok("LOGIN " + embedded.DemoAccount + " " + embedded.DemoPassword)
	return rc
}

func (rc *rawConn) readLine() string {
	rc.t.Helper()
	timeout := rc.readTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	rc.conn.SetReadDeadline(time.Now().Add(timeout))
	line, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("read: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\r\n")
}

func (rc *rawConn) write(s string) {
	rc.t.Helper()
	if rc.deflate != nil {
		rc.deflated.Reset()
		io.WriteString(rc.deflate, s)
		if err := rc.deflate.Flush(); err != nil {
			rc.t.Fatalf("write: compress: %v", err)
		}
		s = rc.deflated.String()
	}
	if _, err := io.WriteString(rc.conn, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// cmd sends a tagged command line and returns the untagged lines (literals inline) and the
// tagged response without its tag.
func (rc *rawConn) cmd(line string) (untagged []string, tagged string) {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("x%d", rc.n)
	rc.write(tag + " " + line + "\r\n")
	return rc.until(tag)
}

// readResponse reads one response line with its literals inline.
func (rc *rawConn) readResponse() string {
	rc.t.Helper()
	l := rc.readLine()
	// A literal at the end of a line: read it and the rest of the response line.
	for strings.HasSuffix(l, "}") {
		i := strings.LastIndexByte(l, '{')
		var n int
		if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err != nil {
			break
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			rc.t.Fatalf("read literal: %v", err)
		}
		l += "\r\n" + string(buf) + rc.readLine()
	}
	return l
}

// until reads responses up to the one tagged tag.
func (rc *rawConn) until(tag string) (untagged []string, tagged string) {
	rc.t.Helper()
	for {
		l := rc.readResponse()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// ok sends a command and fails the test unless it completes with OK.
func (rc *rawConn) ok(line string) []string {
	rc.t.Helper()
	untagged, tagged := rc.cmd(line)
	if !strings.HasPrefix(tagged, "OK") {
		rc.t.Fatalf("%s: %s (untagged %q)", line, tagged, untagged)
	}
	return untagged
}

// expect sends a command and checks that its tagged response starts with want.
func (rc *rawConn) expect(line, want string) []string {
	rc.t.Helper()
	untagged, tagged := rc.cmd(line)
	if !strings.HasPrefix(tagged, want) {
		rc.t.Fatalf("%s: got %q, want %q...", line, tagged, want)
	}
	return untagged
}

// contains reports whether one of lines contains want.
func contains(lines []string, want string) bool {
	for _, l := range lines {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// Accounts of the multi-user tests: alice, bob and carol in the demo tenant (example.com),
// eve in a second tenant (other.org). All have testPassword.
const (
	alice        = "alice@example.com"
	bob          = "bob@example.com"
	carol        = "carol@example.com"
	eve          = "eve@other.org"
	otherTenant  = "other"
	testPassword = "secret"
)

// startTenants is startServer with the accounts above.
func startTenants(t *testing.T) *embedded.Server {
	t.Helper()
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	md := srv.Metadata()
	if _, err := md.CreateTenant(ctx, &metadatapb.CreateTenantRequest{
		RequestId: embedded.NewRequestID(), Name: otherTenant, Domains: []string{"other.org"},
	}); err != nil {
		t.Fatalf("create tenant %s: %v", otherTenant, err)
	}
	for _, email := range []string{alice, bob, carol, eve} {
		if _, err := md.CreateAccount(ctx, &metadatapb.CreateAccountRequest{
			RequestId: embedded.NewRequestID(), Email: email, Password: testPassword,
		}); err != nil {
			t.Fatalf("create account %s: %v", email, err)
		}
	}
	return srv
}

// loginRawAs is dialRaw followed by LOGIN as email with testPassword.
func loginRawAs(t *testing.T, srv *embedded.Server, email string) *rawConn {
	t.Helper()
	rc := dialRaw(t, srv)
	rc.ok("LOGIN " + email + " " + testPassword)
	return rc
}

// adminCreateMailbox creates a mailbox of owner (an account or "tenant:NAME") as an
// administrator does, without an acting user.
func adminCreateMailbox(t *testing.T, srv *embedded.Server, owner, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := srv.Metadata().CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{
		RequestId: embedded.NewRequestID(), Account: owner, Name: name,
	}); err != nil {
		t.Fatalf("create mailbox %s of %s: %v", name, owner, err)
	}
}

// adminSetACL sets the rights of identifier on a mailbox of owner as an administrator.
func adminSetACL(t *testing.T, srv *embedded.Server, owner, name, identifier, rights string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := srv.Metadata().SetAcl(ctx, &metadatapb.SetAclRequest{
		RequestId: embedded.NewRequestID(), Account: owner, Name: name, Identifier: identifier, Rights: rights,
	}); err != nil {
		t.Fatalf("set ACL of %s on %s of %s: %v", identifier, name, owner, err)
	}
}

// linesWith returns the lines that contain one of subs.
func linesWith(lines []string, subs ...string) []string {
	var kept []string
	for _, l := range lines {
		for _, s := range subs {
			if strings.Contains(l, s) {
				kept = append(kept, l)
				break
			}
		}
	}
	return kept
}

// writeExpect writes data and fails the test unless the server's next line starts with
// prefix: "+ " for a continuation request, "TAG BAD" for a refusal.
func (rc *rawConn) writeExpect(data, prefix string) {
	rc.t.Helper()
	rc.write(data)
	if l := rc.readLine(); !strings.HasPrefix(l, prefix) {
		sent, _, _ := strings.Cut(data, "\r\n")
		rc.t.Fatalf("%.60q answered %q, want %q...", sent, l, prefix)
	}
}

// startIdle sends IDLE with tag and reads the server's continuation request (RFC 9051
// 6.3.13); the client ends the IDLE by writing "DONE".
func (rc *rawConn) startIdle(tag string) {
	rc.t.Helper()
	rc.writeExpect(tag+" IDLE\r\n", "+ ")
}

// noopUntil sends NOOP until the untagged responses gathered contain want (changes of other
// sessions arrive through the change feed) and returns all of them; it fails the test after
// 5 seconds.
func (rc *rawConn) noopUntil(want string) []string {
	rc.t.Helper()
	var got []string
	testwait.Until(rc.t, 5*time.Second, func() error {
		if got = append(got, rc.ok("NOOP")...); !contains(got, want) {
			return fmt.Errorf("NOOP never brought %q: %q", want, got)
		}
		return nil
	})
	return got
}

// waitFor reads what the server sends without sending anything, until a line contains want,
// and returns the lines read; it fails the test after 10 seconds.
func (rc *rawConn) waitFor(want string) []string {
	rc.t.Helper()
	var got []string
	for {
		l := rc.readResponse()
		got = append(got, l)
		if strings.Contains(l, want) {
			return got
		}
	}
}

// silent checks that the server sends nothing for d.
func (rc *rawConn) silent(d time.Duration) {
	rc.t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(d))
	line, err := rc.r.ReadString('\n')
	if err == nil || line != "" {
		rc.t.Fatalf("the server sent %q (%v), want nothing", line, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		rc.t.Fatalf("read: %v, want a timeout", err)
	}
}
