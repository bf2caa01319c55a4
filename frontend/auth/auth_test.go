package auth

import (
	"net"
	"testing"
)

func TestPlaintextAllowed(t *testing.T) {
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4190}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4190}
	for _, tc := range []struct {
		policy Policy
		tls    bool
		addr   net.Addr
		want   bool
	}{
		{Policy{}, true, remote, true},
		{Policy{}, false, remote, false},
		{Policy{}, false, loopback, false},
		{Policy{TrustLoopback: true}, false, loopback, true},
		{Policy{TrustLoopback: true}, false, remote, false},
		{Policy{AllowPlaintext: true}, false, remote, true},
	} {
		if got := tc.policy.PlaintextAllowed(tc.tls, tc.addr); got != tc.want {
			t.Errorf("%+v.PlaintextAllowed(%v, %v) = %v, want %v", tc.policy, tc.tls, tc.addr, got, tc.want)
		}
	}
}
