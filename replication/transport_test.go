package replication

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strata-mail/strata/internal/clustertls"
	"github.com/strata-mail/strata/internal/clustertls/clustertlstest"
)

// TestRaftTransportMTLS: over real loopback sockets, a node of the cluster CA reaches
// another; a frontend of the same CA, a node of another CA and a plaintext peer are
// refused in the handshake, before the raft layer reads a byte from them.
func TestRaftTransportMTLS(t *testing.T) {
	ca, other := clustertlstest.New(t), clustertlstest.New(t)
	layer := func(id *clustertls.Identity) *tcpStreamLayer {
		l, err := listenRaft("127.0.0.1:0", "", id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	b := layer(ca.Identity(t, clustertls.RoleNode, "b"))
	addr := raft.ServerAddress(b.Addr().String())
	// serverRead accepts the next connection on b, in the background as raft's accept loop
	// does, and reads what the peer sent.
	type read struct {
		got string
		err error
	}
	serverRead := func() <-chan read {
		done := make(chan read, 1)
		go func() {
			c, err := b.Accept()
			if err != nil {
				done <- read{err: err}
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4)
			_, err = io.ReadFull(c, buf)
			done <- read{string(buf), err}
		}()
		return done
	}

	a := layer(ca.Identity(t, clustertls.RoleNode, "a"))
	res := serverRead()
	conn, err := a.Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatalf("node to node: %v", err)
	}
	go conn.Write([]byte("ping"))
	if r := <-res; r.err != nil || r.got != "ping" {
		t.Fatalf("node to node: read %q, %v", r.got, r.err)
	}
	conn.Close()

	fe := layer(ca.Identity(t, clustertls.RoleFrontend, "fe"))
	res = serverRead()
	if conn, err := fe.Dial(addr, 5*time.Second); err == nil {
		// TLS 1.3: the client's handshake ends before the server checks its certificate.
		go conn.Write([]byte("ping"))
		defer conn.Close()
	}
	if r := <-res; r.err == nil || !strings.Contains(r.err.Error(), "not a strata://node/") {
		t.Errorf("frontend to node: server read %v, want the frontend refused", r.err)
	}

	x := layer(other.Identity(t, clustertls.RoleNode, "x"))
	res = serverRead()
	if conn, err := x.Dial(addr, 5*time.Second); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("node of another CA dialled a node: %v, want its client to refuse the server", err)
		if conn != nil {
			conn.Close()
		}
	}
	if r := <-res; r.err == nil {
		t.Error("node accepted a node of another CA")
	}

	res = serverRead()
	plain, err := net.Dial("tcp", string(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go plain.Write([]byte("ping plaintext raft"))
	if r := <-res; r.err == nil {
		t.Errorf("node read %q in plaintext from a peer", r.got)
	}
}

// TestStallConnBoundsReadsInsideARequest: over a real socket, an accepted connection idle
// between requests waits past the stall bound for the next one, while a request that stops
// part way fails its read with a deadline error instead of blocking raft forever (a leader
// cut off in the middle of an InstallSnapshot stream).
func TestStallConnBoundsReadsInsideARequest(t *testing.T) {
	l, err := listenRaft("127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const stall = 100 * time.Millisecond
	l.stall = stall
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := l.Dial(raft.ServerAddress(l.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	defer server.Close()

	buf := make([]byte, 4)
	if _, err := client.Write([]byte("req1")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatalf("first request: %v", err)
	}
	if _, err := server.Write([]byte("resp")); err != nil {
		t.Fatal(err)
	}
	// Idle after the response: the next request comes well after the stall bound.
	go func() {
		time.Sleep(3 * stall)
		_, _ = client.Write([]byte("re"))
	}()
	if _, err := io.ReadFull(server, buf[:2]); err != nil {
		t.Fatalf("read of the next request after an idle wait: %v", err)
	}
	// The request stops part way: the rest never comes.
	_, err = io.ReadFull(server, buf[:2])
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read inside a stalled request: %v, want a deadline error", err)
	}
}
