package replication

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strata-mail/strata/internal/clustertls"
)

// Transport tuning: connections pooled per peer, and the I/O deadline of one RPC (a snapshot
// install streams for longer; raft extends its own deadline for that).
const (
	transportMaxPool = 3
	transportTimeout = 10 * time.Second
	// transportStallTimeout bounds how long an accepted connection may go silent part way
	// through a message (stallConn): 25 default heartbeat timeouts, far past any pause of a
	// sender that is still there.
	transportStallTimeout = 5 * time.Second
)

// advertiseAddr is the address peers dial. It may be a host name (a Kubernetes pod's stable DNS
// name), which raft's own TCPStreamLayer does not accept because it wants a resolved IP.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

// tcpStreamLayer is the raft.StreamLayer over plain TCP.
//
// When the node is bound to a specific IP, it also dials its peers from that IP rather than
// from whatever source address the kernel's route picks. On a multi-homed host this keeps
// Raft traffic on the interface the operator chose (and lets firewalls and peers identify the
// node by the address it is bound to); it is also what lets a fault-injecting proxy in front
// of a peer tell the other members apart by source IP when they all run on one machine on
// different loopback addresses. A node bound to a wildcard address dials as before.
//
// With cluster TLS (Config.TLS) every connection is mutual TLS both ways, and only peers
// holding a node identity of the cluster CA are accepted or dialled (internal/clustertls): a
// peer that is not one is refused in the handshake, before raft reads a message from it.
type tcpStreamLayer struct {
	listener  net.Listener
	advertise advertiseAddr
	source    *net.TCPAddr // local address of outgoing connections; nil: chosen by the kernel
	serverTLS *tls.Config  // nil: plaintext
	clientTLS *tls.Config
	identity  *clustertls.Identity // hears of the peers serverTLS refuses
	stall     time.Duration        // stallConn's bound; transportStallTimeout
}

// Accept returns the next connection, guarded by stallConn; with TLS its handshake runs on
// raft's first read of it, in the goroutine raft serves the connection from, so one slow
// peer does not hold up Accept.
func (l *tcpStreamLayer) Accept() (net.Conn, error) {
	c, err := l.listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.serverTLS != nil {
		c = &acceptedTLS{Conn: tls.Server(c, l.serverTLS), identity: l.identity}
	}
	return &stallConn{Conn: c, stall: l.stall}, nil
}

// stallConn fails a read that has waited longer than stall for the rest of a message.
//
// raft's NetworkTransport serves an accepted connection as request, response, request, ...
// and sets no deadline on this side. A follower reads an InstallSnapshot's data on its main
// loop, so a leader cut off part way through the stream (a partition that loses packets
// rather than resetting the connection, as TestJepsenClusterFaults's blackhole does) left
// that loop reading forever: the follower never timed out, never voted, and with the leader
// cut off the remaining two of three nodes could not elect one.
//
// Bytes read after the last response written belong to a request under way; a read then
// waits at most stall. A read after a response (the connection idle in the pool, waiting
// for the next request) waits without a deadline, as before. Read-ahead past a request's end
// can only leave a later request unguarded, never put a deadline on an idle connection.
type stallConn struct {
	net.Conn
	stall     time.Duration
	inRequest atomic.Bool // bytes read since the last response
}

func (c *stallConn) Read(b []byte) (int, error) {
	var deadline time.Time
	if c.inRequest.Load() {
		deadline = time.Now().Add(c.stall)
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.inRequest.Store(true)
	}
	return n, err
}

func (c *stallConn) Write(b []byte) (int, error) {
	c.inRequest.Store(false)
	return c.Conn.Write(b)
}

// acceptedTLS is an accepted Raft connection whose refused handshake is reported to the
// identity (a log line on the node; raft itself only sees a failed read).
type acceptedTLS struct {
	*tls.Conn
	identity  *clustertls.Identity
	handshake sync.Once
}

func (c *acceptedTLS) Read(b []byte) (int, error) {
	c.handshake.Do(func() {
		if err := c.Conn.Handshake(); err != nil {
			c.identity.Refused(fmt.Errorf("cluster TLS: raft refused %s: %w", c.RemoteAddr(), err))
		}
	})
	return c.Conn.Read(b)
}

func (l *tcpStreamLayer) Close() error   { return l.listener.Close() }
func (l *tcpStreamLayer) Addr() net.Addr { return l.advertise }

func (l *tcpStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if l.source != nil {
		d.LocalAddr = l.source
	}
	c, err := d.Dial("tcp", string(address))
	if err != nil || l.clientTLS == nil {
		return c, err
	}
	// The handshake here, so a refused peer fails the dial rather than the first RPC.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tc := tls.Client(c, l.clientTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft TLS handshake with %s: %w", address, err)
	}
	return tc, nil
}

// listenRaft binds bind and works out the address to advertise: advertise if given (host:port,
// where port 0 means the bound port), else the bound address, which must then not be a wildcard
// such as 0.0.0.0. identity, when not nil, makes every connection mutual TLS.
func listenRaft(bind, advertise string, identity *clustertls.Identity) (*tcpStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %q: %w", bind, err)
	}
	adv, err := advertisedAddress(ln.Addr().(*net.TCPAddr), advertise)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	layer := &tcpStreamLayer{listener: ln, advertise: adv, source: dialSource(ln.Addr().(*net.TCPAddr)), stall: transportStallTimeout}
	if identity != nil {
		layer.serverTLS = identity.ServerConfig(clustertls.IdentityNodePrefix)
		layer.clientTLS = identity.ClientConfig()
		layer.identity = identity
	}
	return layer, nil
}

// dialSource is the local address to dial peers from: the bound IP with any port, or nil for a
// wildcard bind.
func dialSource(bound *net.TCPAddr) *net.TCPAddr {
	if bound.IP == nil || bound.IP.IsUnspecified() {
		return nil
	}
	return &net.TCPAddr{IP: bound.IP, Zone: bound.Zone}
}

func advertisedAddress(bound *net.TCPAddr, advertise string) (advertiseAddr, error) {
	if advertise == "" {
		if bound.IP == nil || bound.IP.IsUnspecified() {
			return "", fmt.Errorf("raft bound to wildcard address %s: set an advertise address peers can dial", bound)
		}
		return advertiseAddr(bound.String()), nil
	}
	host, port, err := net.SplitHostPort(advertise)
	if err != nil {
		return "", fmt.Errorf("raft advertise address %q: %w", advertise, err)
	}
	if host == "" {
		return "", fmt.Errorf("raft advertise address %q has no host", advertise)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "", fmt.Errorf("raft advertise address %q is a wildcard address", advertise)
	}
	if port == "0" {
		port = strconv.Itoa(bound.Port)
	}
	return advertiseAddr(net.JoinHostPort(host, port)), nil
}
