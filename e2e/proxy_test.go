package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/strata-mail/strata/internal/testwait"
)

// proxyClient is a raw connection to a frontend from a chosen loopback source address.
type proxyClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dialProxied connects to addr from src and sends a PROXY header of version (1 or 2)
// naming client as the connection's source first; version 0 sends none.
func dialProxied(t *testing.T, addr, src, client string, version byte) *proxyClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { conn.Close() })
	if version != 0 {
		dst := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 143}
		if strings.Contains(client, ":") {
			dst.IP = net.ParseIP("2001:db8::1")
		}
		h := proxyproto.HeaderProxyFromAddrs(version, &net.TCPAddr{IP: net.ParseIP(client), Port: 40000}, dst)
		if _, err := h.WriteTo(conn); err != nil {
			t.Fatalf("write PROXY header: %v", err)
		}
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return &proxyClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// line reads one line; "" when the server closed the connection.
func (c *proxyClient) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil && l == "" {
		return ""
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends an IMAP command tagged "a" and returns the tagged response, "(closed)" when
// the server closed the connection first.
func (c *proxyClient) cmd(command string) string {
	c.t.Helper()
	if _, err := c.conn.Write([]byte("a " + command + "\r\n")); err != nil {
		return "(closed)"
	}
	for {
		l := c.line()
		if l == "" {
			return "(closed)"
		}
		if rest, ok := strings.CutPrefix(l, "a "); ok {
			return rest
		}
	}
}

// TestProxyProtocol runs a `strata frontend` process with --proxy-trusted 127.0.0.1 in front
// of three metadata processes, and clients over real sockets: a load balancer at 127.0.0.1
// that sends PROXY v1 and v2 headers, and clients connecting directly from 127.0.0.2. The
// auth-failure line (the one fail2ban reads) and the per-address connection limit see the
// client address of the header; a trusted peer that sends no header is closed without a
// greeting; an untrusted peer's PROXY header is not read as one (BAD) and its own address
// is what the log shows. LMTP takes the header the same way.
func TestProxyProtocol(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd, _ := startVoters(t, ctx)
	addClusterAccount(t, etcd)
	fe := startFrontend(t, "P", etcd, "--blob-dir", t.TempDir(),
		"--proxy-trusted", "127.0.0.1/32", "--proxy-header-timeout", "2s", "--max-connections-per-ip", "2")
	// The frontend learns the metadata nodes from etcd just after it starts; 127.0.0.1 is
	// the balancer, so the first login comes directly from 127.0.0.2.
	testwait.Until(t, 30*time.Second, func() error {
		pc := dialProxied(t, fe.imapAddr, "127.0.0.2", "", 0)
		pc.line()
		if got := pc.cmd(`LOGIN "u@acme.test" "pw"`); !strings.HasPrefix(got, "OK") {
			return fmt.Errorf("LOGIN: %s", got)
		}
		return nil
	})

	// Failed logins through the balancer: the log names the clients, not 127.0.0.1.
	for _, c := range []struct {
		client  string
		version byte
	}{{"203.0.113.7", 1}, {"2001:db8::7", 2}} {
		pc := dialProxied(t, fe.imapAddr, "127.0.0.1", c.client, c.version)
		if g := pc.line(); !strings.HasPrefix(g, "* OK") {
			t.Fatalf("greeting through PROXY v%d: %q", c.version, g)
		}
		if got := pc.cmd(`LOGIN "u@acme.test" "wrong"`); !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("wrong password through PROXY v%d: %q", c.version, got)
		}
		want := `msg="authentication failed" client_ip=` + c.client + ` protocol=imap account=u@acme.test`
		testwait.Until(t, 10*time.Second, func() error {
			if !strings.Contains(fe.logs(), want) {
				return fmt.Errorf("no line %q in the frontend's log", want)
			}
			return nil
		})
		if got := pc.cmd(`LOGIN "u@acme.test" "pw"`); !strings.HasPrefix(got, "OK") {
			t.Fatalf("right password through PROXY v%d: %q", c.version, got)
		}
	}
	if strings.Contains(fe.logs(), "client_ip=127.0.0.1 ") {
		t.Errorf("a failure line names the balancer's address:\n%s", fe.logs())
	}

	// --max-connections-per-ip 2 counts the clients behind the balancer one by one.
	for range 2 {
		if g := dialProxied(t, fe.imapAddr, "127.0.0.1", "198.51.100.1", 2).line(); !strings.HasPrefix(g, "* OK") {
			t.Fatalf("connection of 198.51.100.1 within the limit: %q", g)
		}
	}
	if g := dialProxied(t, fe.imapAddr, "127.0.0.1", "198.51.100.1", 1).line(); !strings.HasPrefix(g, "* BYE [LIMIT]") {
		t.Errorf("third connection of 198.51.100.1: %q, want * BYE [LIMIT]", g)
	}
	if g := dialProxied(t, fe.imapAddr, "127.0.0.1", "198.51.100.2", 2).line(); !strings.HasPrefix(g, "* OK") {
		t.Errorf("another client through the same balancer: %q", g)
	}

	// A trusted peer must send the header: without one it gets no greeting.
	if g := dialProxied(t, fe.imapAddr, "127.0.0.1", "", 0).line(); g != "" {
		t.Errorf("trusted peer without a PROXY header was greeted: %q", g)
	}

	// An untrusted peer's header is a line of IMAP like any other: BAD, and its own
	// address is the one logged.
	direct := dialProxied(t, fe.imapAddr, "127.0.0.2", "", 0)
	if g := direct.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting of a direct client: %q", g)
	}
	if _, err := direct.conn.Write([]byte("PROXY TCP4 203.0.113.99 192.0.2.1 40000 143\r\n")); err != nil {
		t.Fatal(err)
	}
	if l := direct.line(); !strings.HasPrefix(l, "PROXY BAD") && !strings.HasPrefix(l, "* BAD") {
		t.Errorf("PROXY header from an untrusted peer: %q, want BAD", l)
	}
	if got := direct.cmd(`LOGIN "u@acme.test" "wrong"`); !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password from a direct client: %q", got)
	}
	testwait.Until(t, 10*time.Second, func() error {
		if !strings.Contains(fe.logs(), `client_ip=127.0.0.2 protocol=imap account=u@acme.test`) {
			return fmt.Errorf("no failure line for the direct client 127.0.0.2")
		}
		return nil
	})
	if strings.Contains(fe.logs(), "203.0.113.99") {
		t.Errorf("the untrusted peer's PROXY header was believed:\n%s", fe.logs())
	}

	// LMTP: the balancer's header is read before the greeting; without it, nothing.
	lmtp := dialProxied(t, fe.lmtpAddr, "127.0.0.1", "10.1.2.3", 2)
	if g := lmtp.line(); !strings.HasPrefix(g, "220 ") {
		t.Errorf("LMTP greeting through PROXY v2: %q", g)
	}
	if g := dialProxied(t, fe.lmtpAddr, "127.0.0.1", "", 0).line(); g != "" {
		t.Errorf("LMTP: trusted peer without a PROXY header was greeted: %q", g)
	}
}
