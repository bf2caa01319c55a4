package managesieve_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/managesieve"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/sieve"
)

// startServer runs a whole embedded Strata (Raft metadata over gRPC) with its ManageSieve
// listener and the demo account, changed by edit first.
func startServer(t testing.TB, edit func(*embedded.Config)) *embedded.Server {
	t.Helper()
	cfg := embedded.Config{ManageSieveListen: "127.0.0.1:0", Demo: true}
	if edit != nil {
		edit(&cfg)
	}
	return embeddedtest.Start(t, cfg)
}

// startSieve runs a ManageSieve server of its own, configured by edit, against the
// metadata service of a fresh embedded Strata; it returns its address.
func startSieve(t testing.TB, edit func(*managesieve.Config)) string {
	t.Helper()
	_, addr := startSieveServer(t, edit)
	return addr
}

// startSieveServer is startSieve that returns the server too.
func startSieveServer(t testing.TB, edit func(*managesieve.Config)) (*managesieve.Server, string) {
	t.Helper()
	srv := startServer(t, func(c *embedded.Config) { c.ManageSieveListen = "" })
	cfg := managesieve.Config{
		Metadata:      srv.Metadata(),
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		TrustLoopback: true,
	}
	if edit != nil {
		edit(&cfg)
	}
	s := managesieve.NewServer(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, ln.Addr().String()
}

// client is a raw ManageSieve connection with helpers that keep tests short.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// rawDial connects to addr without reading the greeting.
func rawDial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// dial connects to addr and reads the greeting; it returns the client and the greeting's
// lines.
func dial(t testing.TB, addr string) (*client, []string) {
	t.Helper()
	c := rawDial(t, addr)
	lines := c.response()
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "OK ") {
		t.Fatalf("greeting ends with %q", last)
	}
	return c, lines
}

// login dials addr and logs in as the demo account with an initial response.
func login(t testing.TB, addr string) *client {
	t.Helper()
	c, _ := dial(t, addr)
	c.ok(`AUTHENTICATE "PLAIN" "` + plain("", embedded.DemoAccount, embedded.DemoPassword) + `"`)
	return c
}

func plain(authzid, user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + password))
}

// send writes raw octets; CRLF is not added.
func (c *client) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, raw); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// line reads one response line, with any literals it announces inlined as {n}CRLF+data,
// without the final CRLF.
func (c *client) line() string {
	c.t.Helper()
	var b strings.Builder
	for {
		s, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read response: %v (after %q)", err, b.String()+s)
		}
		b.WriteString(strings.TrimSuffix(s, "\r\n"))
		n, ok := literalSize(s)
		if !ok {
			return b.String()
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.br, buf); err != nil {
			c.t.Fatalf("read literal: %v", err)
		}
		b.WriteString("\r\n")
		b.Write(buf)
	}
}

func literalSize(line string) (int, bool) {
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(line[i+1 : len(line)-1])
	return n, err == nil
}

// response reads lines up to and including a status line (OK, NO or BYE).
func (c *client) response() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		lines = append(lines, l)
		for _, status := range []string{"OK", "NO", "BYE"} {
			if l == status || strings.HasPrefix(l, status+" ") {
				return lines
			}
		}
	}
}

// do sends a command line (CRLF added) and returns its response lines.
func (c *client) do(cmd string) []string {
	c.t.Helper()
	c.send(cmd + "\r\n")
	return c.response()
}

// challenge sends cmd and checks the one line it answers before the client's next line
// (a SASL challenge).
func (c *client) challenge(cmd, want string) {
	c.t.Helper()
	c.send(cmd + "\r\n")
	if got := c.line(); got != want {
		c.t.Fatalf("%s: got %q, want %q", clip(cmd), got, want)
	}
}

// ok runs cmd and fails the test unless it ends in OK; it returns the lines before the OK.
func (c *client) ok(cmd string) []string {
	c.t.Helper()
	lines := c.do(cmd)
	if !strings.HasPrefix(lines[len(lines)-1], "OK") {
		c.t.Fatalf("%s: got %q, want OK", clip(cmd), lines)
	}
	return lines[:len(lines)-1]
}

// expect runs cmd and checks its whole response, line by line.
func (c *client) expect(cmd string, want ...string) {
	c.t.Helper()
	got := c.do(cmd)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		c.t.Fatalf("%s:\ngot  %q\nwant %q", clip(cmd), got, want)
	}
}

// closed checks that the server has closed the connection.
func (c *client) closed() {
	c.t.Helper()
	if s, err := c.br.ReadString('\n'); err != io.EOF {
		c.t.Fatalf("connection still open: read %q, %v", s, err)
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// literal renders s as a non-synchronizing literal.
func literal(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }

// tlsClientConfig trusts the certificate the embedded server generated.
func tlsClientConfig(t testing.TB, srv *embedded.Server) *tls.Config {
	t.Helper()
	pemBytes, err := os.ReadFile(srv.TLSCertFile())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in " + srv.TLSCertFile())
	}
	return &tls.Config{RootCAs: roots, ServerName: "localhost"}
}

// startTLS upgrades the connection after STARTTLS's OK and returns the capability lines
// the server re-issues (RFC 5804 2.2).
func (c *client) startTLS(cfg *tls.Config) []string {
	c.t.Helper()
	c.ok("STARTTLS")
	return c.startTLSAfterOK(cfg)
}

// startTLSAfterOK is startTLS once the OK has been read.
func (c *client) startTLSAfterOK(cfg *tls.Config) []string {
	c.t.Helper()
	tc := tls.Client(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	return c.response()
}

// compileMessage is the interpreter's message for a script that does not compile, escaped
// as in a quoted string.
func compileMessage(t testing.TB, src string) string {
	t.Helper()
	_, err := sieve.Compile("x", []byte(src), sieve.Options{})
	var serr *sieve.Error
	if !errors.As(err, &serr) {
		t.Fatalf("%q compiles: %v", src, err)
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(serr.Msg)
}

func itoa(n int) string { return strconv.Itoa(n) }
