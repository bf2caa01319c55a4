package auth

import (
	"errors"
	"net"
	"testing"
)

func TestParsePlain(t *testing.T) {
	for _, tc := range []struct {
		in             string
		user, password string
		err            error
	}{
		{in: "\x00demo@example.com\x00secret", user: "demo@example.com", password: "secret"},
		{in: "Demo@Example.com\x00demo@example.com\x00secret", user: "demo@example.com", password: "secret"},
		{in: "other@example.com\x00demo@example.com\x00secret", err: ErrAuthorization},
		{in: "demo@example.com\x00secret", err: ErrMalformedPlain},
		{in: "", err: ErrMalformedPlain},
		{in: "\x00a\x00b\x00c", err: ErrMalformedPlain},
		{in: "\x00\x00", user: "", password: ""},
	} {
		user, password, err := ParsePlain([]byte(tc.in))
		if !errors.Is(err, tc.err) || user != tc.user || password != tc.password {
			t.Errorf("ParsePlain(%q) = %q, %q, %v; want %q, %q, %v", tc.in, user, password, err, tc.user, tc.password, tc.err)
		}
	}
}

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
