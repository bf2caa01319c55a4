package lmtp

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// sourceConn is one end of a pipe that claims to come from addr: a public source address
// cannot be made real on a test machine's loopback.
type sourceConn struct {
	net.Conn
	addr net.Addr
}

func (c sourceConn) RemoteAddr() net.Addr { return c.addr }

// pipeListener accepts the conns given to it, then reports io.EOF.
type pipeListener struct {
	conns chan net.Conn
}

func (l pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, io.EOF
	}
	return c, nil
}
func (l pipeListener) Close() error   { return nil }
func (l pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero, Port: 2424} }

// TestPrivateListenerRefusesPublicSources checks that without AllowPublic a client from a
// public address gets 554 5.7.1 and is closed, while loopback and private clients reach the
// server untouched.
func TestPrivateListenerRefusesPublicSources(t *testing.T) {
	conns := make(chan net.Conn, 6)
	ln := &privateListener{Listener: pipeListener{conns}, hostname: "mx.example", log: slog.New(slog.DiscardHandler)}

	var clients []net.Conn
	for _, ip := range []string{"203.0.113.7", "2001:db8::1", "127.0.0.1", "10.0.0.5", "fd00::5", "::ffff:192.168.1.2"} {
		server, client := net.Pipe()
		conns <- sourceConn{server, &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
		clients = append(clients, client)
	}
	close(conns)

	for i, ip := range []string{"203.0.113.7", "2001:db8::1"} {
		// The refusal is written by a goroutine started on Accept; read it as it comes.
		done := make(chan string, 1)
		go func(c net.Conn) {
			line, _ := bufio.NewReader(c).ReadString('\n')
			rest, _ := io.ReadAll(c)
			done <- line + string(rest)
		}(clients[i])
		if i == 0 {
			// The first Accept skips both public conns and returns the loopback one.
			got, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			if got.RemoteAddr().String() != "127.0.0.1:40000" {
				t.Fatalf("first accepted conn from %s, want 127.0.0.1:40000", got.RemoteAddr())
			}
		}
		if out := <-done; !strings.HasPrefix(out, "554 5.7.1 mx.example ") || !strings.HasSuffix(out, "\r\n") {
			t.Errorf("client from %s got %q, want a 554 5.7.1 greeting and the connection closed", ip, out)
		}
	}
	for _, want := range []string{"10.0.0.5:40000", "[fd00::5]:40000", "192.168.1.2:40000"} {
		got, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got.RemoteAddr().String() != want {
			t.Errorf("accepted conn from %s, want %s", got.RemoteAddr(), want)
		}
	}
	if _, err := ln.Accept(); err != io.EOF {
		t.Errorf("Accept after the last conn = %v, want io.EOF", err)
	}
}
