// Package connserver is the accept loop and the registry of live connections that the IMAP
// and ManageSieve servers share, and the deadline on each write to a client
// (DeadlineWriter). The protocol stays in each server's package: greetings,
// TLS, the limits and what a refused client is told are decided by the protocol's Admit
// function and its connection's Serve. (LMTP serves through go-smtp's own server.)
//
// Invariants:
//
//   - Every accepted connection is registered, under the registry's lock, before its
//     goroutine starts, and unregistered when its Serve returns; Shutdown therefore reaches
//     every connection that is served, and Each sees them all.
//   - Load counts only connections admitted as served: one refused over a limit is still
//     registered (it is served to be told why, then closed) but takes no slot. Connections
//     from loopback and non-TCP addresses are not counted per address (local proxies and
//     tools).
//   - Running out of file descriptors (EMFILE, ENFILE) does not stop the accept loop: it
//     logs the first failure of a run of them and retries with a backoff of 5 ms to 1 s,
//     while the connections wait in the listener's backlog.
//   - With TrustProxies, a connection from a trusted network is admitted only after its
//     PROXY protocol header is read, in a goroutine of its own (never in the accept loop),
//     and with the client's address from it; it counts in Shutdown's wait meanwhile and
//     Shutdown closes it (proxy.go).
//   - After Shutdown begins no connection is registered: Serve closes the listener (or a
//     connection accepted in the race) and returns the configured ErrClosed.
//   - Graceful close (draining): Shutdown closes the listeners and from then on Closing
//     reports true, which each protocol checks before it runs a command: a connection
//     ends after its running command instead of running the next. It then asks each
//     connection to end (StartShutdown: at once when it waits for its client), paced over
//     the first half of the time its context leaves (at most ShutdownRate per second, see
//     wakeAll for why), and waits for all of them; when its context ends first it closes
//     the remaining sockets (Close) and still waits for their goroutines, so none outlives
//     Shutdown.
//   - A panic escaping a connection's Serve is recovered in its goroutine, logged with the
//     connection's logger and its stack as "panic in <protocol> connection", and counted
//     (RecoveredPanics); the connection is unregistered as after a normal end.
//   - A connection is served by one goroutine at a time. When its Serve parks it (returns
//     true), Serve is called again in a new goroutine and the one that returned ends: a
//     parked connection holds one goroutine, with a stack as small as its wait needs,
//     instead of the stack its commands grew. It stays registered and counted meanwhile.
package connserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is what the registry needs of one protocol connection.
type Conn interface {
	comparable
	// Serve runs the connection until it ends and closes its socket before returning
	// false; or until it parks, with nothing to do but wait for its client: then it returns
	// true before waiting, and the registry calls Serve again in a new goroutine, which
	// waits and goes on.
	Serve() (parked bool)
	// StartShutdown asks the connection to end: at once when it waits for a command, after
	// the running one otherwise. It must not block.
	StartShutdown()
	// Close closes the socket at once; Serve then returns soon.
	Close()
	// Logger is the connection's logger, for a recovered panic.
	Logger() *slog.Logger
}

// Load is what a new connection would join, given to Admit.
type Load struct {
	// Served is how many admitted connections are being served.
	Served int
	// FromAddress is how many of them come from the new connection's remote IP; always 0
	// for loopback and non-TCP addresses, which are not counted per address.
	FromAddress int
}

// Admit makes the protocol connection for nc, the id-th connection accepted by the
// registry (from 1), and says whether it is admitted: counted in Load and served, or
// refused (served only to tell the client why, and not counted). It is called under the
// registry's lock and must not block.
type Admit[C Conn] func(nc net.Conn, id uint64, load Load) (c C, admitted bool)

// Registry accepts connections on its listeners and tracks the live ones.
type Registry[C Conn] struct {
	protocol  string
	errClosed error
	log       *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[C]bool            // live connections: admitted or refused
	served    int                   // admitted connections in conns
	perIP     map[string]int        // admitted connections per remote IP, loopback excluded
	pending   map[net.Conn]struct{} // from trusted proxies, their PROXY header being read
	proxy     *Proxy
	closing   atomic.Bool // set under mu
	active    sync.WaitGroup
	// shutdownRate is how many connections per second Shutdown asks to end, at most;
	// 0: all at once.
	shutdownRate int
	accepted     atomic.Uint64
	panics       atomic.Uint64
}

// New returns a registry for protocol ("IMAP", "ManageSieve": named in errors and logs)
// whose Serve returns errClosed after Shutdown and logs accept failures to log.
func New[C Conn](protocol string, errClosed error, log *slog.Logger) *Registry[C] {
	return &Registry[C]{
		protocol:  protocol,
		errClosed: errClosed,
		log:       log,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[C]bool),
		perIP:     make(map[string]int),
		pending:   make(map[net.Conn]struct{}),

		shutdownRate: DefaultShutdownRate,
	}
}

// SetShutdownRate sets how many connections per second Shutdown asks to end, at most
// (DefaultShutdownRate by default); 0 or less asks them all at once. Call it before
// Shutdown.
func (r *Registry[C]) SetShutdownRate(perSecond int) { r.shutdownRate = max(perSecond, 0) }

// TrustProxies makes Serve read a PROXY protocol header from the connections of p's
// trusted networks (proxy.go); call it before Serve. nil: none.
func (r *Registry[C]) TrustProxies(p *Proxy) { r.proxy = p }

// Serve accepts connections on ln, makes each with admit and serves it in its own
// goroutine. It returns when the listener closes: the registry's errClosed after Shutdown,
// the accept error otherwise. A temporary accept error (a timeout) is passed over.
func (r *Registry[C]) Serve(ln net.Listener, admit Admit[C]) error {
	r.mu.Lock()
	if r.closing.Load() {
		r.mu.Unlock()
		ln.Close()
		return r.errClosed
	}
	r.listeners[ln] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.listeners, ln)
		r.mu.Unlock()
	}()
	var backoff time.Duration // after running out of descriptors
	for {
		nc, err := ln.Accept()
		if err != nil {
			if r.Closing() {
				return r.errClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				if backoff == 0 {
					r.log.Error("out of file descriptors; "+r.protocol+" connections wait until one frees", "err", err)
				}
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept %s connection: %w", r.protocol, err)
		}
		backoff = 0
		serve := r.admitAndServe
		if r.proxy.trusts(nc.RemoteAddr()) {
			serve = r.awaitProxyHeader
		}
		if !serve(nc, admit) {
			return r.errClosed
		}
	}
}

// lockOpen takes the registry's lock unless Shutdown has begun; then it closes nc and
// returns false, unlocked.
func (r *Registry[C]) lockOpen(nc net.Conn) bool {
	r.mu.Lock()
	if r.closing.Load() {
		r.mu.Unlock()
		nc.Close()
		return false
	}
	return true
}

// awaitProxyHeader registers nc as pending and reads its PROXY header in a goroutine of
// its own (a slow proxy must not hold the accept loop); false as admitAndServe.
func (r *Registry[C]) awaitProxyHeader(nc net.Conn, admit Admit[C]) bool {
	if !r.lockOpen(nc) {
		return false
	}
	r.pending[nc] = struct{}{}
	r.active.Add(1)
	r.mu.Unlock()
	go r.readProxyHeader(nc, admit)
	return true
}

// readProxyHeader reads the PROXY header a trusted proxy must send first, then admits the
// connection with the client's address; a missing, malformed or late header closes it.
func (r *Registry[C]) readProxyHeader(nc net.Conn, admit Admit[C]) {
	defer r.active.Done()
	pc, err := r.proxy.readHeader(nc)
	r.mu.Lock()
	delete(r.pending, nc)
	r.mu.Unlock()
	if err != nil {
		r.proxy.refused.Add(1)
		r.log.Warn("PROXY header refused; closing the "+r.protocol+" connection", "proxy", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		return
	}
	r.admitAndServe(pc, admit)
}

// admitAndServe registers nc, admitted or refused, and serves it in its own goroutine; it
// returns false, having closed nc, when Shutdown has begun.
func (r *Registry[C]) admitAndServe(nc net.Conn, admit Admit[C]) bool {
	ip := remoteIP(nc.RemoteAddr())
	if !r.lockOpen(nc) {
		return false
	}
	load := Load{Served: r.served}
	if ip != "" {
		load.FromAddress = r.perIP[ip]
	}
	c, admitted := admit(nc, r.accepted.Add(1), load)
	r.conns[c] = admitted
	if admitted {
		r.served++
		if ip != "" {
			r.perIP[ip]++
		}
	}
	r.active.Add(1)
	r.mu.Unlock()
	go r.serveConn(c, admitted, ip)
	return true
}

// serveConn runs c.Serve, recovers a panic that escapes it and unregisters c once it
// ended; a parked c goes on in a new goroutine.
func (r *Registry[C]) serveConn(c C, admitted bool, ip string) {
	if r.serve(c) {
		go r.serveConn(c, admitted, ip)
		return
	}
	r.mu.Lock()
	delete(r.conns, c)
	if admitted {
		r.served--
		if ip != "" {
			if r.perIP[ip]--; r.perIP[ip] == 0 {
				delete(r.perIP, ip)
			}
		}
	}
	r.mu.Unlock()
	r.active.Done()
}

// serve runs c.Serve once and reports whether it parked; a panic is recovered, logged and
// counted, and ends the connection.
func (r *Registry[C]) serve(c C) (parked bool) {
	defer func() {
		if v := recover(); v != nil {
			parked = false
			r.panics.Add(1)
			c.Logger().Error("panic in "+r.protocol+" connection", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	return c.Serve()
}

// Closing reports whether Shutdown has begun: a connection then ends after its running
// command instead of running the next. It takes no lock; protocols call it per command.
func (r *Registry[C]) Closing() bool {
	return r.closing.Load()
}

// Accepted returns how many connections Serve has accepted, admitted or refused.
func (r *Registry[C]) Accepted() uint64 {
	return r.accepted.Load()
}

// RecoveredPanics returns how many panics escaped a connection's Serve.
func (r *Registry[C]) RecoveredPanics() uint64 {
	return r.panics.Load()
}

// Each calls f with every live connection and whether it was admitted, under the
// registry's lock: f must not block.
func (r *Registry[C]) Each(f func(c C, admitted bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c, admitted := range r.conns {
		f(c, admitted)
	}
}

// Shutdown stops accepting connections, asks every connection to end (StartShutdown),
// paced over the first half of the time ctx leaves (wakeAll), and waits for them. When ctx
// ends first, the remaining connections are closed (Close), their goroutines waited for,
// and ctx's error returned.
func (r *Registry[C]) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing.Store(true)
	var errs []error
	for ln := range r.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close %s listener: %w", r.protocol, err))
		}
	}
	conns := make([]C, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	for nc := range r.pending {
		nc.Close() // its header read fails at once
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.active.Wait()
		close(done)
	}()
	wakeCtx, stopWaking := context.WithCancel(ctx)
	woken := make(chan struct{})
	go func() {
		defer close(woken)
		r.wakeAll(wakeCtx, conns)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		<-done
		errs = append(errs, fmt.Errorf("shut down %s connections: %w", r.protocol, ctx.Err()))
	}
	stopWaking()
	<-woken
	return errors.Join(errs...)
}

// ShutdownAll runs the shutdowns of several servers at once (IMAP, LMTP, ManageSieve) and
// joins their errors: every listener closes together, and the sessions of each protocol
// drain side by side within ctx rather than one protocol after another.
func ShutdownAll(ctx context.Context, shutdowns ...func(context.Context) error) error {
	errs := make([]error, len(shutdowns))
	var wg sync.WaitGroup
	for i, shutdown := range shutdowns {
		wg.Go(func() { errs[i] = shutdown(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DefaultShutdownRate is how many connections per second Shutdown asks to end, at most,
// unless SetShutdownRate says otherwise.
const DefaultShutdownRate = 500

// wakeAll asks each of conns that is still live to end (StartShutdown), spread evenly over
// the shorter of len(conns)/shutdownRate seconds and half the time ctx leaves; at once when
// ctx has no deadline or the rate is 0. It returns early when ctx ends.
//
// Why spread, rather than tell every client at once: the clients of a draining frontend
// reconnect at once, through the load balancer, to the frontends that remain, and each
// reconnection costs them a TCP and TLS handshake, a login that misses their verified-
// credentials cache (an argon2id hash: 19 MiB and tens of milliseconds of a core,
// frontend/auth) and a SELECT that loads the mailbox. 10,000 IDLE clients told BYE in the
// same millisecond are 10,000 such logins arriving together at the rest of the pool: they
// queue behind one another, time out and retry (a thundering herd, made worse during a
// rolling upgrade, when the next frontend to drain is one of those taking them). Spread,
// they arrive at a rate the pool absorbs. The rate bounds the spread so that a frontend
// with a few connections still drains in moments (100 connections: 0.2 s), and half the
// window bounds it so that the other half is left for the last BYEs to be written and for
// long commands (an APPEND of a large message) to finish before the hard deadline.
// Connections busy with a command are not kept waiting by their turn: Closing makes them
// end after it.
func (r *Registry[C]) wakeAll(ctx context.Context, conns []C) {
	var spread time.Duration
	if deadline, ok := ctx.Deadline(); ok && r.shutdownRate > 0 && len(conns) > 1 {
		spread = min(time.Duration(len(conns))*time.Second/time.Duration(r.shutdownRate), time.Until(deadline)/2)
	}
	start := time.Now()
	for i, c := range conns {
		// Conn i's turn; when turns are closer than the timer's resolution, several go out
		// on one tick.
		if wait := time.Until(start.Add(spread * time.Duration(i) / time.Duration(len(conns)))); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		r.mu.Lock()
		if _, live := r.conns[c]; live {
			c.StartShutdown()
		}
		r.mu.Unlock()
	}
}

// remoteIP returns the IP of a TCP remote address for the per-address count, or "" for
// loopback and non-TCP addresses, which it does not cover.
func remoteIP(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return ""
	}
	return tcp.IP.String()
}
