package imap_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
)

// TestProxyProtocolUntrustedIgnored: a PROXY header from an address outside the trusted
// networks is not read as one: the server greets first, answers the header line as an
// unknown command, and counts and logs the socket's own address.
func TestProxyProtocolUntrustedIgnored(t *testing.T) {
	srv, logs := startGuarded(t)
	conn := dialFrom(t, srv.IMAPAddr(), "127.0.0.5", nil)
	rc := greeted(t, conn) // greeted before sending anything: nothing was read first
	rc.write(string(proxyHeader(t, "203.0.113.77", 1)))
	if got := rc.readLine(); !strings.HasPrefix(got, "PROXY BAD") {
		t.Errorf("header line from an untrusted peer answered %q, want the tagged BAD of an unknown command", got)
	}
	if got := rc.login(embedded.DemoAccount, "wrong"); !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("login: %q", got)
	}
	lines := logs.failureLines()
	if len(lines) != 1 || !strings.Contains(lines[0], " client_ip=127.0.0.5 ") || strings.Contains(lines[0], "203.0.113.77") {
		t.Errorf("failure lines %q, want the socket's address 127.0.0.5", lines)
	}
}

// TestProxyProtocolTrustedRefused: a trusted peer must open with a valid header; without
// one (within the header timeout) or with a malformed one, on IMAP, IMAPS, ManageSieve and
// LMTP, the connection is closed without a greeting. A valid one is used on every listener.
func TestProxyProtocolTrustedRefused(t *testing.T) {
	srv, _ := startGuardedWithIMAPS(t)
	listeners := map[string]string{
		"IMAP": srv.IMAPAddr(), "IMAPS": srv.IMAPSAddr(), "ManageSieve": srv.ManageSieveAddr(), "LMTP": srv.LMTPAddr(),
	}
	for name, addr := range listeners {
		for what, header := range map[string][]byte{
			"no header":        nil,
			"malformed v1":     []byte("PROXY TCP4 203.0.113.1 nonsense\r\n"),
			"truncated v2":     proxyHeader(t, "203.0.113.1", 2)[:20],
			"v1 without CRLF":  []byte("PROXY TCP4 203.0.113.1 192.0.2.1 1 2 " + strings.Repeat("x", 200)),
			"binary garbage":   {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x99, 0x99},
			"v1 unknown proto": []byte("PROXY SCTP 203.0.113.1 192.0.2.1 1 2\r\n"),
		} {
			conn := dialFrom(t, addr, "127.0.0.1", header)
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			got, err := io.ReadAll(conn)
			if len(got) > 0 || (err != nil && !isReset(err)) {
				t.Errorf("%s, %s from a trusted peer: read %q, %v; want the connection closed unanswered", name, what, got, err)
			}
		}
	}
	// A valid v2 header on IMAPS comes before the TLS handshake.
	raw := dialFrom(t, srv.IMAPSAddr(), "127.0.0.1", proxyHeader(t, "203.0.113.5", 2))
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	rc := greeted(t, tc)
	if got := rc.login(embedded.DemoAccount, "wrong"); !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED]") {
		t.Errorf("IMAPS login through the proxy: %q", got)
	}
	// LMTP: the Received field names the MTA behind the proxy.
	deliverThroughProxy(t, srv, "203.0.113.25")
	// (127.0.0.1 is the trusted proxy here, so the reader connects from another address.)
	c := imapclient.New(dialFrom(t, srv.IMAPAddr(), "127.0.0.6", nil), nil)
	defer c.Close()
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true}},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch the delivered message: %v (%d)", err, len(msgs))
	}
	var header string
	for _, b := range msgs[0].BodySection {
		header = string(b.Bytes)
	}
	if !strings.Contains(header, "([203.0.113.25])") {
		t.Errorf("Received field without the proxied MTA's address:\n%s", header)
	}
}

// isReset reports whether err is the peer resetting the connection, which a close with
// unread data in the server's buffer does.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

// deliverThroughProxy delivers one message to the demo account over LMTP from the trusted
// proxy, which presents mta as the client.
func deliverThroughProxy(t *testing.T, srv *embedded.Server, mta string) {
	t.Helper()
	conn := dialFrom(t, srv.LMTPAddr(), "127.0.0.1", proxyHeader(t, mta, 1))
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	expect := func(prefix string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("LMTP: %v", err)
			}
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("LMTP: %q, want %s", line, prefix)
			}
			if len(line) < 4 || line[3] != '-' {
				return
			}
		}
	}
	expect("220")
	for _, step := range []struct{ send, want string }{
		{"LHLO mta.test", "250"},
		{"MAIL FROM:<sender@example.org>", "250"},
		{"RCPT TO:<" + embedded.DemoAccount + ">", "250"},
		{"DATA", "354"},
		{"From: sender@example.org\r\nSubject: via proxy\r\n\r\nhello\r\n.", "250"},
		{"QUIT", "221"},
	} {
		fmt.Fprintf(conn, "%s\r\n", step.send)
		expect(step.want)
	}
}

// startGuardedWithIMAPS is startGuarded with an IMAPS listener too.
func startGuardedWithIMAPS(t *testing.T) (*embedded.Server, *logBuffer) {
	t.Helper()
	return startGuardedWith(t, func(cfg *embedded.Config) { cfg.IMAPSListen = "127.0.0.1:0" })
}
