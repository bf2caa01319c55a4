package imap

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/testwait"
)

// remoteListener is a real TCP listener whose connections report remote as their peer, so
// the per-address limit, which leaves loopback alone, can be tested on loopback.
type remoteListener struct {
	net.Listener
	remote net.Addr
}

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{Conn: c, remote: l.remote}, nil
}

type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// greeting dials addr and returns the server's first line.
func greeting(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	return conn, line
}

// TestConnectionsPerIP: a remote address over MaxConnectionsPerIP is told BYE [LIMIT];
// loopback is not limited. No command reaches the metadata service, so none is configured.
func TestConnectionsPerIP(t *testing.T) {
	srv := NewServer(Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Limits: Limits{MaxConnectionsPerIP: 2},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}
	go srv.Serve(remoteListener{Listener: ln, remote: remote})
	loopLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(loopLn)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })

	first, l1 := greeting(t, ln.Addr().String())
	_, l2 := greeting(t, ln.Addr().String())
	_, l3 := greeting(t, ln.Addr().String())
	if !strings.HasPrefix(l1, "* OK ") || !strings.HasPrefix(l2, "* OK ") {
		t.Fatalf("greetings under the limit: %q, %q", l1, l2)
	}
	if !strings.HasPrefix(l3, "* BYE [LIMIT] ") {
		t.Fatalf("greeting over the limit: %q", l3)
	}
	for range 3 {
		if _, l := greeting(t, loopLn.Addr().String()); !strings.HasPrefix(l, "* OK ") {
			t.Fatalf("loopback greeting: %q", l)
		}
	}
	// A closed connection frees its slot.
	first.Close()
	testwait.Until(t, 10*time.Second, func() error {
		conn, l := greeting(t, ln.Addr().String())
		conn.Close()
		if !strings.HasPrefix(l, "* OK ") {
			return fmt.Errorf("slot not freed: %q", l)
		}
		return nil
	})
}
