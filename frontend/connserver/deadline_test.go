package connserver_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/strata-mail/strata/frontend/connserver"
)

// TestDeadlineWriter: writes to a client that reads go through; once the client stops
// reading and the socket's buffers fill, a write fails with a timeout after about Timeout
// instead of blocking, and a write after it gets a deadline of its own again.
func TestDeadlineWriter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	w := connserver.DeadlineWriter{Conn: server, Timeout: 200 * time.Millisecond}
	if _, err := w.Write([]byte("* OK ready\r\n")); err != nil {
		t.Fatalf("write to a reading client: %v", err)
	}
	buf := make([]byte, 64)
	if n, err := client.Read(buf); err != nil || string(buf[:n]) != "* OK ready\r\n" {
		t.Fatalf("client read %q, %v", buf[:n], err)
	}

	chunk := make([]byte, 1<<20)
	var werr error
	for range 1024 { // at most 1 GiB: far past any socket buffer
		if _, werr = w.Write(chunk); werr != nil {
			break
		}
	}
	if !errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("writes to a client that does not read ended with %v, want a deadline error", werr)
	}
	// The deadline is set again per write: it does not stay in the past.
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<20)
		for {
			if _, err := client.Read(buf); err != nil {
				return
			}
		}
	}()
	if _, err := w.Write([]byte("* BYE\r\n")); err != nil {
		t.Fatalf("write once the client reads again: %v", err)
	}
	server.Close()
	<-done
}
