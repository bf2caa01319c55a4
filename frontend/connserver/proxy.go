package connserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
)

// Proxy is the PROXY protocol (HAProxy's, versions 1 and 2) on a listener: a load balancer
// in front of the frontends tells the client's address in a header before the protocol
// starts, so connection limits, the brute-force guard and logs see the client instead of
// the balancer.
//
// Invariants:
//
//   - A header is read only from a peer in Trusted, and such a peer must send one
//     (proxyproto.REQUIRE; the specification forbids guessing whether one is present): a
//     connection from a trusted network without a valid header within HeaderTimeout, or
//     with a malformed one, is closed without a greeting.
//   - From any other peer nothing is read before the greeting and the peer's own address
//     is used: a header it sends is not a header but the first line of the protocol,
//     which answers it as an unknown command (IMAP BAD, ManageSieve NO, LMTP 500).
//   - A header with the LOCAL command (a balancer's health check) keeps the proxy's
//     address.
type Proxy struct {
	// Trusted are the networks of the proxies.
	Trusted []netip.Prefix
	// HeaderTimeout bounds the wait for a trusted peer's header. Default 5 s.
	HeaderTimeout time.Duration

	refused atomic.Uint64
}

// DefaultProxyHeaderTimeout is Proxy.HeaderTimeout when unset.
const DefaultProxyHeaderTimeout = 5 * time.Second

// ParseTrustedNetworks reads a comma-separated list of CIDR prefixes and addresses (an
// address is its own /32 or /128), the --proxy-trusted flag; nil for an empty list.
func ParseTrustedNetworks(list string) ([]netip.Prefix, error) {
	var nets []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy network %q: %w", item, err)
			}
			nets = append(nets, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy address %q: %w", item, err)
		}
		a = a.Unmap()
		nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
	}
	return nets, nil
}

// trusts reports whether addr, a peer's socket address, is in a trusted network. A nil
// Proxy trusts nobody.
func (p *Proxy) trusts(addr net.Addr) bool {
	if p == nil || len(p.Trusted) == 0 {
		return false
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, n := range p.Trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (p *Proxy) headerTimeout() time.Duration {
	if p.HeaderTimeout <= 0 {
		return DefaultProxyHeaderTimeout
	}
	return p.HeaderTimeout
}

// readHeader reads the header nc must start with and returns the connection whose
// RemoteAddr is the client's.
func (p *Proxy) readHeader(nc net.Conn) (net.Conn, error) {
	pc := proxyproto.NewConn(nc, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(p.headerTimeout()))
	// A zero-length read processes the header and reads nothing after it.
	if _, err := pc.Read(nil); err != nil {
		if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			return nil, fmt.Errorf("no PROXY header within %v", p.headerTimeout())
		}
		return nil, err
	}
	return pc, nil
}

// Refused returns how many connections from trusted networks were closed for a missing or
// malformed header; 0 for a nil Proxy.
func (p *Proxy) Refused() uint64 {
	if p == nil {
		return 0
	}
	return p.refused.Load()
}

// Listener wraps ln for a server with its own accept loop (LMTP's go-smtp): connections
// from trusted networks read their header on first use (in the server's connection
// goroutine, which go-smtp starts before touching the connection) and fail when it is
// missing or malformed; others are returned as accepted. A nil Proxy returns ln.
func (p *Proxy) Listener(ln net.Listener) net.Listener {
	if p == nil || len(p.Trusted) == 0 {
		return ln
	}
	return &proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if p.trusts(o.Upstream) {
				return proxyproto.REQUIRE, nil
			}
			return proxyproto.SKIP, nil
		},
		ReadHeaderTimeout: p.headerTimeout(),
	}
}
