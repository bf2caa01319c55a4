package connserver_test

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/strata-mail/strata/frontend/connserver"
)

// proxiedServer runs a registry whose connections from 127.0.0.1 must start with a PROXY
// header; admitted records each admission's remote address and load.
func proxiedServer(t *testing.T) (*connserver.Registry[*lineConn], string, *admissions) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecords{}
	reg := connserver.New[*lineConn]("LINE", errClosed, slog.New(logs))
	reg.TrustProxies(&connserver.Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, HeaderTimeout: time.Minute})
	seen := &admissions{}
	go reg.Serve(ln, func(nc net.Conn, id uint64, load connserver.Load) (*lineConn, bool) {
		seen.add(nc.RemoteAddr().String(), load)
		return &lineConn{nc: nc, id: id, admitted: true, log: slog.New(logs)}, true
	})
	t.Cleanup(func() { reg.Shutdown(context.Background()) })
	return reg, ln.Addr().String(), seen
}

type admissions struct {
	mu      sync.Mutex
	remotes []string
	loads   []connserver.Load
}

func (a *admissions) add(remote string, load connserver.Load) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.remotes = append(a.remotes, remote)
	a.loads = append(a.loads, load)
}

// dialProxied connects from the trusted 127.0.0.1 and presents clientIP in a v2 header.
func dialProxied(t *testing.T, addr, clientIP string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP(clientIP), Port: 1234}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 143})
	if _, err := h.WriteTo(nc); err != nil {
		t.Fatal(err)
	}
	c := &client{nc: nc, r: bufio.NewReader(nc)}
	if got := c.line(t); got != "OK" {
		t.Fatalf("greeting %q", got)
	}
	return c
}

// TestProxyClientAddress: a proxied connection is admitted with the client's address, and
// the per-address count is the client's, not the proxy's (loopback, never counted).
func TestProxyClientAddress(t *testing.T) {
	_, addr, seen := proxiedServer(t)
	dialProxied(t, addr, "203.0.113.1")
	dialProxied(t, addr, "203.0.113.1")
	dialProxied(t, addr, "203.0.113.2")
	seen.mu.Lock()
	defer seen.mu.Unlock()
	wantRemotes := []string{"203.0.113.1:1234", "203.0.113.1:1234", "203.0.113.2:1234"}
	wantFrom := []int{0, 1, 0}
	for i := range wantRemotes {
		if seen.remotes[i] != wantRemotes[i] || seen.loads[i].FromAddress != wantFrom[i] {
			t.Errorf("admission %d: %s %+v, want %s from-address %d", i, seen.remotes[i], seen.loads[i], wantRemotes[i], wantFrom[i])
		}
	}
}

// TestProxyPendingHeaderShutdown: a trusted peer that sends no header holds neither the
// accept loop (others are served meanwhile) nor Shutdown, which closes it.
func TestProxyPendingHeaderShutdown(t *testing.T) {
	reg, addr, _ := proxiedServer(t)
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	served := dialProxied(t, addr, "203.0.113.3")                            // served while the silent one waits
	served.nc.Close()                                                        // a lineConn ends at its client's EOF
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // < the header timeout
	defer cancel()
	if err := reg.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a header pending: %v", err)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("the pending connection read %d bytes, %v; want it closed", n, err)
	}
}

// FuzzProxyHeader feeds arbitrary bytes from a trusted peer over a real socket: the
// registry never panics, and a connection is served only with a header it could read,
// with the client address from it (or the socket's for LOCAL).
func FuzzProxyHeader(f *testing.F) {
	for _, seed := range [][]byte{
		[]byte("PROXY TCP4 203.0.113.1 192.0.2.1 1234 143\r\nhello\r\n"),
		[]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"),
		[]byte("PROXY UNKNOWN\r\n"),
		[]byte("PROXY TCP4 1.2.3.4\r\n"),
		{0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 203, 0, 113, 1, 192, 0, 2, 1, 0x04, 0xd2, 0x00, 0x8f},
		{0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00},
		{0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0xff, 0xff},
		[]byte("GET / HTTP/1.0\r\n\r\n"),
	} {
		f.Add(seed)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	logs := &logRecords{}
	reg := connserver.New[*lineConn]("LINE", errClosed, slog.New(logs))
	reg.TrustProxies(&connserver.Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, HeaderTimeout: 200 * time.Millisecond})
	go reg.Serve(ln, func(nc net.Conn, id uint64, load connserver.Load) (*lineConn, bool) {
		return &lineConn{nc: nc, id: id, admitted: true, log: slog.New(logs)}, true
	})
	f.Cleanup(func() { reg.Shutdown(context.Background()) })
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write(data)
		nc.(*net.TCPConn).CloseWrite()
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		greeting, _ := bufio.NewReader(nc).ReadString('\n')
		if greeting != "" && greeting != "OK\r\n" {
			t.Fatalf("greeting %q", greeting)
		}
		if greeting == "OK\r\n" {
			if _, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(data))); err != nil {
				t.Fatalf("served after a header the parser refuses (%v): %q", err, data)
			}
		}
		if n := reg.RecoveredPanics(); n != 0 {
			t.Fatalf("%d panics", n)
		}
	})
}
