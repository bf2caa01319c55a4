package faultproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/testwait"
)

// echoServer answers every line with the same line and records what it received, per
// connection, so a test can tell what reached it through the proxy.
type echoServer struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
}

func startEcho(t testing.TB) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					s.mu.Lock()
					s.seen = append(s.seen, line[:len(line)-1])
					s.mu.Unlock()
					if _, err := conn.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *echoServer) received(line string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.seen {
		if l == line {
			return true
		}
	}
	return false
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(Config{Listen: "127.0.0.1:0", Target: target,
		Sources: map[string]string{"127.0.0.11": "n1", "127.0.0.12": "n2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// client is one connection to the proxy from a chosen source IP.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialFrom(t *testing.T, ip, addr string) *client {
	t.Helper()
	c, err := tryDialFrom(t, ip, addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ip, err)
	}
	return c
}

// tryDialFrom is dialFrom for a proxy that may cut the connection at once: its RST can beat
// the dial's return.
func tryDialFrom(t *testing.T, ip, addr string) (*client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}, nil
}

// cutRoundTrip is the error of a round trip on a new connection from ip, which the proxy cuts.
func cutRoundTrip(t *testing.T, ip, addr, line string) error {
	c, err := tryDialFrom(t, ip, addr)
	if err != nil {
		return err
	}
	_, err = c.roundTrip(line, 10*time.Second)
	return err
}

func (c *client) send(line string) error {
	_, err := c.conn.Write([]byte(line + "\n"))
	return err
}

// roundTrip sends line and returns the echo or the error reading it, waiting at most timeout.
func (c *client) roundTrip(line string, timeout time.Duration) (string, error) {
	if err := c.send(line); err != nil {
		return "", err
	}
	return c.readLine(timeout)
}

func (c *client) readLine(timeout time.Duration) (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return line[:len(line)-1], nil
}

func (c *client) mustEcho(line string) {
	c.t.Helper()
	got, err := c.roundTrip(line, 10*time.Second)
	if err != nil || got != line {
		c.t.Fatalf("echo of %q: got %q, %v", line, got, err)
	}
}

func TestPassThroughAndSourceNames(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a := dialFrom(t, "127.0.0.11", p.Addr())
	b := dialFrom(t, "127.0.0.12", p.Addr())
	c := dialFrom(t, "127.0.0.1", p.Addr())
	for _, cl := range []*client{a, b, c} {
		cl.mustEcho("hello")
	}
	got := p.Conns()
	want := map[string]int{"n1": 1, "n2": 1, "127.0.0.1": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("connections by source = %v, want %v", got, want)
	}
}

func TestDropCutsOnlyThatSourceUntilHealed(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a := dialFrom(t, "127.0.0.11", p.Addr())
	b := dialFrom(t, "127.0.0.12", p.Addr())
	a.mustEcho("before")
	b.mustEcho("before")

	p.Drop("n1")
	if _, err := a.readLine(10 * time.Second); !errors.Is(err, io.EOF) {
		t.Errorf("open connection of a dropped source: read gave %v, want EOF", err)
	}
	if err := cutRoundTrip(t, "127.0.0.11", p.Addr(), "from n1"); err == nil {
		t.Error("a new connection of a dropped source carried traffic")
	}
	b.mustEcho("from n2") // other sources are untouched
	if echo.received("from n1") {
		t.Error("the dropped source's line reached the target")
	}

	p.Heal("n1")
	dialFrom(t, "127.0.0.11", p.Addr()).mustEcho("after")
}

func TestResetSendsRST(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a := dialFrom(t, "127.0.0.11", p.Addr())
	a.mustEcho("before")
	p.Reset("n1")
	if _, err := a.readLine(10 * time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("open connection of a reset source: read gave %v, want ECONNRESET", err)
	}
	if err := cutRoundTrip(t, "127.0.0.11", p.Addr(), "during"); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Errorf("new connection of a reset source: got %v, want ECONNRESET", err)
	}
	p.HealAll()
	dialFrom(t, "127.0.0.11", p.Addr()).mustEcho("after")
}

func TestBlackholeHoldsTrafficUntilHealed(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a := dialFrom(t, "127.0.0.11", p.Addr())
	b := dialFrom(t, "127.0.0.12", p.Addr())
	a.mustEcho("before")

	p.Blackhole("n1", Both)
	if err := a.send("held"); err != nil {
		t.Fatal(err)
	}
	// n2's line travels the same proxy to the same target after n1's; once its echo is back,
	// n1's line would have arrived too had it been forwarded.
	b.mustEcho("other")
	if echo.received("held") {
		t.Fatal("a blackholed line reached the target")
	}
	if p.Conns()["n1"] != 1 {
		t.Errorf("the blackholed connection was closed: %v", p.Conns())
	}
	p.Heal("n1")
	if got, err := a.readLine(10 * time.Second); err != nil || got != "held" {
		t.Fatalf("after heal: got %q, %v; want the held line echoed", got, err)
	}
}

func TestOneWayLossHoldsOnlyReplies(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a := dialFrom(t, "127.0.0.11", p.Addr())
	a.mustEcho("before")

	p.Blackhole("n1", FromTarget)
	if err := a.send("request"); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, func() error {
		if !echo.received("request") {
			return errors.New("the target has not received the request")
		}
		return nil
	})
	// The target has echoed; the reply is held in the proxy.
	if got, err := a.readLine(200 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reply crossed a one-way loss: got %q, %v", got, err)
	}
	p.Heal("n1")
	if got, err := a.readLine(10 * time.Second); err != nil || got != "request" {
		t.Fatalf("after heal: got %q, %v; want the held reply", got, err)
	}
}

func TestDelayHoldsEachChunkAtLeastTheDelay(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a := dialFrom(t, "127.0.0.11", p.Addr())
	b := dialFrom(t, "127.0.0.12", p.Addr())
	const delay = 150 * time.Millisecond
	p.Delay("n1", ToTarget, delay)
	p.Delay("n1", FromTarget, delay)
	start := time.Now()
	a.mustEcho("slow")
	if rtt := time.Since(start); rtt < 2*delay {
		t.Errorf("round trip through a %v delay each way took %v", delay, rtt)
	}
	b.mustEcho("fast") // n2 is not delayed; not timed, only that it works alongside
	for i := range 5 { // order is kept
		if err := a.send(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if got, err := a.readLine(10 * time.Second); err != nil || got != fmt.Sprint(i) {
			t.Fatalf("line %d: got %q, %v", i, got, err)
		}
	}
	p.Heal("n1")
	a.mustEcho("healed")
}

func TestAnySourceAndTargetDown(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	a := dialFrom(t, "127.0.0.11", p.Addr())
	c := dialFrom(t, "127.0.0.1", p.Addr())
	a.mustEcho("before")
	c.mustEcho("before")
	p.Drop(AnySource)
	for _, cl := range []*client{a, c} {
		if _, err := cl.readLine(10 * time.Second); !errors.Is(err, io.EOF) {
			t.Errorf("AnySource drop: read gave %v, want EOF", err)
		}
	}
	p.Heal(AnySource)
	dialFrom(t, "127.0.0.1", p.Addr()).mustEcho("after")

	// A target that is down shows as a reset connection (the RST may beat the dial's return).
	echo.ln.Close()
	if err := cutRoundTrip(t, "127.0.0.1", p.Addr(), "down"); err == nil {
		t.Error("a connection to a target that is down carried traffic")
	}
}

// BenchmarkRoundTrip measures a 64-byte echo round trip straight to the target and through
// the proxy with no fault set, the cost the proxy adds to every Raft and gRPC exchange.
func BenchmarkRoundTrip(b *testing.B) {
	echo := startEcho(b)
	p, err := Start(Config{Listen: "127.0.0.1:0", Target: echo.ln.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	line := strings.Repeat("x", 63)
	for _, bc := range []struct{ name, addr string }{{"direct", echo.ln.Addr().String()}, {"proxy", p.Addr()}} {
		b.Run(bc.name, func(b *testing.B) {
			conn, err := net.Dial("tcp", bc.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			for b.Loop() {
				if _, err := conn.Write([]byte(line + "\n")); err != nil {
					b.Fatal(err)
				}
				if _, err := r.ReadString('\n'); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
