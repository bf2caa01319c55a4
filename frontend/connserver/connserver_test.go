package connserver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/internal/testwait"
)

var errClosed = errors.New("test server closed")

// lineConn is a small line protocol over a real socket: it greets "OK <id>" (or "BYE" when
// refused and ends), then answers each line "echo: <line>", "PANIC" by panicking and "PARK"
// with "parked" and parking. On StartShutdown it says nothing more and ends when the
// client's next line, or EOF, comes.
type lineConn struct {
	nc       net.Conn
	id       uint64
	admitted bool
	log      *slog.Logger
	r        *bufio.Reader // nil until greeted

	mu       sync.Mutex
	shutdown bool
}

func (c *lineConn) Serve() (parked bool) {
	defer func() {
		if !parked {
			c.nc.Close()
		}
	}()
	if !c.admitted {
		io.WriteString(c.nc, "BYE\r\n")
		return false
	}
	if c.r == nil {
		io.WriteString(c.nc, "OK\r\n")
		c.r = bufio.NewReader(c.nc)
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return false
		}
		c.mu.Lock()
		shutdown := c.shutdown
		c.mu.Unlock()
		if shutdown {
			io.WriteString(c.nc, "BYE shutting down\r\n")
			return false
		}
		switch strings.TrimSpace(line) {
		case "PANIC":
			panic("injected panic")
		case "PARK":
			io.WriteString(c.nc, "parked\r\n")
			return true
		}
		io.WriteString(c.nc, "echo: "+line)
	}
}

func (c *lineConn) StartShutdown() {
	c.mu.Lock()
	c.shutdown = true
	c.mu.Unlock()
}

func (c *lineConn) Close()               { c.nc.Close() }
func (c *lineConn) Logger() *slog.Logger { return c.log }

// logRecords keeps the messages logged at Error.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.msgs = append(h.msgs, r.Message)
		h.mu.Unlock()
	}
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// server runs a registry on a loopback listener that admits at most max connections, and
// returns it with its address and Serve's result.
func server(t *testing.T, max int, logs *logRecords) (*connserver.Registry[*lineConn], string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := connserver.New[*lineConn]("LINE", errClosed, slog.New(logs))
	served := make(chan error, 1)
	go func() {
		served <- reg.Serve(ln, func(nc net.Conn, id uint64, load connserver.Load) (*lineConn, bool) {
			if load.FromAddress != 0 {
				t.Errorf("loopback connection counted per address: %+v", load)
			}
			admitted := load.Served < max
			return &lineConn{nc: nc, id: id, admitted: admitted, log: slog.New(logs)}, admitted
		})
	}()
	t.Cleanup(func() { reg.Shutdown(context.Background()) })
	return reg, ln.Addr().String(), served
}

// client dials addr and reads the greeting.
type client struct {
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, addr, wantGreeting string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{nc: nc, r: bufio.NewReader(nc)}
	if got := c.line(t); got != wantGreeting {
		t.Fatalf("greeting %q, want %q", got, wantGreeting)
	}
	return c
}

// dialUntilAdmitted dials addr until a connection is greeted OK, not refused: a slot frees
// when the Serve of a connection that ended returns.
func dialUntilAdmitted(t *testing.T, addr string) {
	t.Helper()
	for {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		greeting, _ := bufio.NewReader(nc).ReadString('\n')
		nc.Close()
		if greeting == "OK\r\n" {
			return
		}
	}
}

func (c *client) line(t *testing.T) string {
	t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil && line == "" {
		return "error: " + err.Error()
	}
	return strings.TrimRight(line, "\r\n")
}

func (c *client) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		t.Fatal(err)
	}
}

// TestAdmission: connections past the limit are refused and not counted; a refused or ended
// connection frees no slot it did not take, an ended admitted one frees its slot.
func TestAdmission(t *testing.T) {
	reg, addr, _ := server(t, 2, &logRecords{})
	a := dial(t, addr, "OK")
	dial(t, addr, "OK")
	dial(t, addr, "BYE")
	dial(t, addr, "BYE")
	a.send(t, "hello")
	if got := a.line(t); got != "echo: hello" {
		t.Fatalf("echo %q", got)
	}
	a.nc.Close()
	// The slot a held frees when its Serve returns; until then new ones are refused.
	dialUntilAdmitted(t, addr)
	if got := reg.Accepted(); got < 5 {
		t.Errorf("Accepted = %d, want at least 5", got)
	}
}

// TestShutdownGraceful: Shutdown asks each connection to end, waits for it, and Serve
// returns the registry's closed error; Serve on a new listener after it does too.
func TestShutdownGraceful(t *testing.T) {
	reg, addr, served := server(t, 10, &logRecords{})
	c := dial(t, addr, "OK")
	done := make(chan error, 1)
	go func() { done <- reg.Shutdown(context.Background()) }()
	if err := <-served; !errors.Is(err, errClosed) {
		t.Fatalf("Serve returned %v, want %v", err, errClosed)
	}
	// Serve returns once the listener is closed, before Shutdown has asked the
	// connections to end (wakeAll, in its own goroutine): wait for that, or the next line
	// races it (seen in a CI run at load 8: "echo: last").
	waitShutdownStarted(t, reg)
	// The connection is still open until its next line: Shutdown waits for it.
	c.send(t, "last")
	if got := c.line(t); got != "BYE shutting down" {
		t.Fatalf("after Shutdown: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Serve(ln, nil); !errors.Is(err, errClosed) {
		t.Fatalf("Serve after Shutdown returned %v, want %v", err, errClosed)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener given to Serve after Shutdown still accepts")
	}
}

// TestShutdownDeadline: a connection that does not end by the context's end is closed, and
// Shutdown returns the context's error.
func TestShutdownDeadline(t *testing.T) {
	reg, addr, _ := server(t, 10, &logRecords{})
	c := dial(t, addr, "OK")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := reg.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown returned %v, want %v", err, context.Canceled)
	}
	if got := c.line(t); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("after the deadline the client read %q, want the connection closed", got)
	}
}

// TestPanicRecovered: a panic in a connection's Serve is logged, counted and its slot freed;
// the server goes on serving.
func TestPanicRecovered(t *testing.T) {
	logs := &logRecords{}
	reg, addr, _ := server(t, 1, logs)
	c := dial(t, addr, "OK")
	c.send(t, "PANIC")
	if got := c.line(t); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("after the panic the client read %q, want the connection closed", got)
	}
	// The panic is counted before the slot frees, so once a new connection is admitted the
	// count is in.
	dialUntilAdmitted(t, addr)
	if n := reg.RecoveredPanics(); n != 1 {
		t.Errorf("RecoveredPanics = %d, want 1", n)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.msgs) != 1 || logs.msgs[0] != "panic in LINE connection" {
		t.Errorf("logged %q, want one \"panic in LINE connection\"", logs.msgs)
	}
}

// TestPark: a connection that parks goes on being served, stays registered and counted
// (it keeps its slot), and Shutdown waits for it; a panic after parking is recovered.
func TestPark(t *testing.T) {
	logs := &logRecords{}
	reg, addr, _ := server(t, 1, logs)
	c := dial(t, addr, "OK")
	for range 3 {
		c.send(t, "PARK")
		if got := c.line(t); got != "parked" {
			t.Fatalf("PARK answered %q", got)
		}
		dial(t, addr, "BYE") // the parked connection keeps the only slot
		// The refused connection may still be on its way out of the registry.
		testwait.Until(t, 10*time.Second, func() error {
			n := 0
			reg.Each(func(*lineConn, bool) { n++ })
			if n != 1 {
				return fmt.Errorf("Each saw %d connections, want the parked one", n)
			}
			return nil
		})
		c.send(t, "hello")
		if got := c.line(t); got != "echo: hello" {
			t.Fatalf("echo after parking %q", got)
		}
	}
	c.send(t, "PARK")
	c.line(t)
	c.send(t, "PANIC")
	if got := c.line(t); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("after the panic the client read %q, want the connection closed", got)
	}
	dialUntilAdmitted(t, addr)
	if n := reg.RecoveredPanics(); n != 1 {
		t.Errorf("RecoveredPanics = %d, want 1", n)
	}

	var d *client
	for d == nil { // the slot frees when the Serve of dialUntilAdmitted's connection returns
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		d = &client{nc: nc, r: bufio.NewReader(nc)}
		if d.line(t) != "OK" {
			d = nil
		}
	}
	d.send(t, "PARK")
	d.line(t)
	done := make(chan error, 1)
	go func() { done <- reg.Shutdown(context.Background()) }()
	// The next line must find the shutdown started, not race it.
	waitShutdownStarted(t, reg)
	d.send(t, "last")
	if got := d.line(t); got != "BYE shutting down" {
		t.Fatalf("parked connection after Shutdown: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// closeConn is a connection that waits for its client and, asked to end, records when and
// closes its socket at once.
type closeConn struct {
	nc   net.Conn
	log  *slog.Logger
	told chan<- time.Time
}

func (c *closeConn) Serve() bool {
	io.Copy(io.Discard, c.nc)
	c.nc.Close()
	return false
}
func (c *closeConn) StartShutdown()       { c.told <- time.Now(); c.nc.Close() }
func (c *closeConn) Close()               { c.nc.Close() }
func (c *closeConn) Logger() *slog.Logger { return c.log }

// drain serves n idle connections on a registry with the given shutdown rate, shuts it
// down with a context that ends after window (0: never), and returns when each connection was told
// to end, in order, and Shutdown's result.
func drain(t *testing.T, n, rate int, window time.Duration) ([]time.Time, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(&logRecords{})
	reg := connserver.New[*closeConn]("LINE", errClosed, log)
	reg.SetShutdownRate(rate)
	told := make(chan time.Time, n)
	go reg.Serve(ln, func(nc net.Conn, _ uint64, _ connserver.Load) (*closeConn, bool) {
		return &closeConn{nc: nc, log: log, told: told}, true
	})
	for range n {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
	}
	testwait.Until(t, 10*time.Second, func() error {
		live := 0
		reg.Each(func(*closeConn, bool) { live++ })
		if live != n {
			return fmt.Errorf("%d connections registered, want %d", live, n)
		}
		return nil
	})
	ctx := context.Background()
	if window > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, window)
		defer cancel()
	}
	err = reg.Shutdown(ctx)
	close(told)
	var times []time.Time
	for at := range told {
		times = append(times, at)
	}
	return times, err
}

// TestShutdownPaced: idle connections are asked to end one after another at the shutdown
// rate, not all at once (the reconnect herd, wakeAll): five at 20 per second take at least
// four intervals of 50 ms from the first to the last.
func TestShutdownPaced(t *testing.T) {
	times, err := drain(t, 5, 20, time.Minute)
	if err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if len(times) != 5 {
		t.Fatalf("%d connections told to end, want 5", len(times))
	}
	// A lower bound only: the turns are timers, which a loaded machine makes late, never
	// early. The first turn is at the start, so less than an interval is allowed for it.
	if span := times[4].Sub(times[0]); span < 150*time.Millisecond {
		t.Fatalf("the five were told within %v, want them spread over 200 ms", span)
	}
}

// TestShutdownPacedWithinWindow: a rate too slow for the deadline is overridden: every
// connection is told within the first half of the time the context leaves, so none is cut
// off by the deadline without being told.
func TestShutdownPacedWithinWindow(t *testing.T) {
	times, err := drain(t, 5, 1, 4*time.Second)
	if err != nil {
		t.Fatalf("Shutdown: %v (a connection was still waiting for its turn at the deadline)", err)
	}
	if len(times) != 5 {
		t.Fatalf("%d connections told to end, want 5", len(times))
	}
}

// TestShutdownUnpaced: without a deadline, or with rate 0, every connection is told at
// once; Shutdown returns once all have ended.
func TestShutdownUnpaced(t *testing.T) {
	for _, tc := range []struct {
		rate   int
		window time.Duration
	}{{0, time.Minute}, {connserver.DefaultShutdownRate, 0}} {
		times, err := drain(t, 3, tc.rate, tc.window)
		if err != nil || len(times) != 3 {
			t.Fatalf("rate %d, window %v: Shutdown: %v; %d told, want 3", tc.rate, tc.window, err, len(times))
		}
	}
}

// waitShutdownStarted waits until Shutdown has asked every connection of reg to end.
func waitShutdownStarted(t *testing.T, reg *connserver.Registry[*lineConn]) {
	t.Helper()
	testwait.Until(t, 10*time.Second, func() error {
		started := true
		reg.Each(func(c *lineConn, _ bool) {
			c.mu.Lock()
			started = started && c.shutdown
			c.mu.Unlock()
		})
		if !started {
			return errors.New("shutdown not started on every connection")
		}
		return nil
	})
}
