// Package faultproxy is a TCP proxy in front of one listener that injects network faults. It
// tells connections apart by their source IP (each Strata node of a test cluster binds and
// dials from its own loopback address), so faults apply per source and per direction: a
// partition between two metadata nodes is two rules, one on the proxy in front of each.
//
// Faults, each set per source (or for AnySource) and lifted by Heal:
//
//   - Drop: open connections are closed (FIN) and new ones are closed as soon as accepted.
//   - Reset: the same with a TCP RST, so both ends see ECONNRESET.
//   - Blackhole (per direction): bytes in that direction are held back, none forwarded, and
//     connections stay open; this is how a lossy or cut link looks to TCP, whose
//     retransmissions deliver the data if the link comes back before either end gives up.
//     Blackholing one direction only is one-way loss.
//   - Delay (per direction): every chunk is forwarded no earlier than the delay after the proxy
//     read it, in order.
//
// Invariants: bytes are never reordered, duplicated or altered; a held-back chunk is delivered
// after Heal unless its connection ended first; memory per connection is bounded (a direction
// holds at most queueChunks chunks of chunkSize bytes before it stops reading).
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// Direction is a direction of traffic through the proxy, as seen from a connection's source.
type Direction int

const (
	// ToTarget is what the source sends to the proxied listener.
	ToTarget Direction = 1 << iota
	// FromTarget is what the listener sends back to the source.
	FromTarget
	// Both directions.
	Both = ToTarget | FromTarget
)

// AnySource names every source in a rule.
const AnySource = "*"

const (
	chunkSize   = 32 << 10
	queueChunks = 16
	dialTimeout = 5 * time.Second
)

// Config describes one proxy.
type Config struct {
	// Listen is the address to listen on, e.g. 127.0.0.1:0.
	Listen string
	// Target is the host:port connections are forwarded to.
	Target string
	// Sources names source IPs (e.g. "127.0.0.11": "n1"); other sources are named by their IP.
	Sources map[string]string
}

type cutMode int

const (
	cutNone cutMode = iota
	cutDrop
	cutReset
)

// rule is the faults set for one source.
type rule struct {
	cut   cutMode
	hold  [2]bool          // indexed by dirIndex
	delay [2]time.Duration // indexed by dirIndex
}

func dirIndex(d Direction) int {
	if d == FromTarget {
		return 1
	}
	return 0
}

// Proxy forwards connections accepted on its listener to its target, applying the faults set
// for each connection's source. Its methods are safe for concurrent use.
type Proxy struct {
	cfg Config
	ln  net.Listener

	mu      sync.Mutex
	rules   map[string]rule
	changed chan struct{} // closed and replaced whenever rules change
	links   map[*link]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// link is one proxied connection: the source's and the target's side.
type link struct {
	source         string
	client, server net.Conn
	done           chan struct{}
	once           sync.Once
	mu             sync.Mutex
	finished       int // directions that ended cleanly
}

// Start listens on cfg.Listen and forwards to cfg.Target until Close.
func Start(cfg Config) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, errors.New("faultproxy: no target")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on %s: %w", cfg.Listen, err)
	}
	p := &Proxy{cfg: cfg, ln: ln, rules: map[string]rule{}, changed: make(chan struct{}), links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's listening address, the one clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.cfg.Target }

// Drop closes source's open connections and every new one as soon as it is accepted.
func (p *Proxy) Drop(source string) { p.cut(source, cutDrop) }

// Reset is Drop with a TCP RST instead of a FIN.
func (p *Proxy) Reset(source string) { p.cut(source, cutReset) }

func (p *Proxy) cut(source string, mode cutMode) {
	p.update(source, func(r *rule) { r.cut = mode })
	p.mu.Lock()
	var victims []*link
	for l := range p.links {
		if source == AnySource || l.source == source {
			victims = append(victims, l)
		}
	}
	p.mu.Unlock()
	for _, l := range victims {
		l.close(mode == cutReset)
	}
}

// Blackhole holds back every byte source's connections carry in dir, keeping them open.
func (p *Proxy) Blackhole(source string, dir Direction) {
	p.update(source, func(r *rule) {
		for _, d := range []Direction{ToTarget, FromTarget} {
			if dir&d != 0 {
				r.hold[dirIndex(d)] = true
			}
		}
	})
}

// Delay forwards what source's connections carry in dir no earlier than d after it was read.
func (p *Proxy) Delay(source string, dir Direction, d time.Duration) {
	p.update(source, func(r *rule) {
		for _, x := range []Direction{ToTarget, FromTarget} {
			if dir&x != 0 {
				r.delay[dirIndex(x)] = d
			}
		}
	})
}

// Heal lifts every fault set for source (AnySource: the rule for all sources, not the rules
// set for single sources). Held-back bytes flow again.
func (p *Proxy) Heal(source string) {
	p.mu.Lock()
	delete(p.rules, source)
	p.notifyLocked()
	p.mu.Unlock()
}

// HealAll lifts every fault.
func (p *Proxy) HealAll() {
	p.mu.Lock()
	p.rules = map[string]rule{}
	p.notifyLocked()
	p.mu.Unlock()
}

// Conns counts the open connections by source name.
func (p *Proxy) Conns() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := map[string]int{}
	for l := range p.links {
		n[l.source]++
	}
	return n
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.close(false)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) update(source string, change func(*rule)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rules[source]
	change(&r)
	p.rules[source] = r
	p.notifyLocked()
}

func (p *Proxy) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// effective merges the rule for source with the rule for every source.
func (p *Proxy) effective(source string) (rule, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, all := p.rules[source], p.rules[AnySource]
	r.cut = max(r.cut, all.cut)
	for i := range r.hold {
		r.hold[i] = r.hold[i] || all.hold[i]
		r.delay[i] = max(r.delay[i], all.delay[i])
	}
	return r, p.changed
}

// sourceName names the source of conn.
func (p *Proxy) sourceName(conn net.Conn) string {
	addr, ok := conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return conn.RemoteAddr().String()
	}
	ip := addr.IP.String()
	if name, ok := p.cfg.Sources[ip]; ok {
		return name
	}
	return ip
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		source := p.sourceName(conn)
		if r, _ := p.effective(source); r.cut != cutNone {
			closeConn(conn, r.cut == cutReset)
			continue
		}
		l := &link{source: source, client: conn, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			conn.Close()
			return
		}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.forward(l)
	}
}

func (p *Proxy) forward(l *link) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	server, err := net.DialTimeout("tcp", p.cfg.Target, dialTimeout)
	if err != nil {
		// The target is down: the source sees its connection reset, as it would without the proxy.
		l.close(true)
		return
	}
	l.mu.Lock()
	l.server = server
	l.mu.Unlock()
	select {
	case <-l.done: // cut while dialing
		closeConn(server, false)
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(l, ToTarget, server, l.client) }()
	go func() { defer wg.Done(); p.pipe(l, FromTarget, l.client, server) }()
	wg.Wait()
	l.close(false)
}

type chunk struct {
	data []byte
	at   time.Time
}

// pipe copies src to dst through a bounded queue, so that a held-back or delayed direction
// keeps its order without blocking the other one.
func (p *Proxy) pipe(l *link, dir Direction, dst, src net.Conn) {
	queue := make(chan chunk, queueChunks)
	readErr := make(chan error, 1)
	go func() {
		defer close(queue)
		buf := make([]byte, chunkSize)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case queue <- chunk{data: slices.Clone(buf[:n]), at: time.Now()}:
				case <-l.done:
					readErr <- net.ErrClosed
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	for c := range queue {
		if !p.await(l, dir, c.at) {
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			l.close(false)
			return
		}
	}
	if err := <-readErr; !errors.Is(err, io.EOF) {
		l.close(false)
		return
	}
	// A clean end of one direction is passed on as a half-close; the link ends when both have.
	if tcp, ok := dst.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
	l.mu.Lock()
	l.finished++
	both := l.finished == 2
	l.mu.Unlock()
	if both {
		l.close(false)
	}
}

// await blocks while dir is blackholed for l's source and until the delay since at has passed;
// it reports false if the link ended meanwhile.
func (p *Proxy) await(l *link, dir Direction, at time.Time) bool {
	i := dirIndex(dir)
	for {
		r, changed := p.effective(l.source)
		if r.hold[i] {
			select {
			case <-changed:
				continue
			case <-l.done:
				return false
			}
		}
		wait := time.Until(at.Add(r.delay[i]))
		if wait <= 0 {
			return true
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			return true
		case <-changed:
			timer.Stop()
		case <-l.done:
			timer.Stop()
			return false
		}
	}
}

// close ends both sides of the link, with RSTs if reset.
func (l *link) close(reset bool) {
	l.once.Do(func() {
		close(l.done)
		l.mu.Lock()
		server := l.server
		l.mu.Unlock()
		closeConn(l.client, reset)
		if server != nil {
			closeConn(server, reset)
		}
	})
}

func closeConn(c net.Conn, reset bool) {
	if tcp, ok := c.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}
