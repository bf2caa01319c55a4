package lmtp_test

import (
	"testing"

	"github.com/strata-mail/strata/frontend/lmtp"
)

// TestCheckListenAddress checks that LMTP listens on loopback, private or wildcard addresses
// unless a public one is allowed explicitly.
func TestCheckListenAddress(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
		ok     bool
	}{
		{"127.0.0.1:2424", false, true},
		{"[::1]:2424", false, true},
		{"localhost:2424", false, true},
		{"10.1.2.3:24", false, true},
		{"192.168.0.9:24", false, true},
		{"[fd00::1]:24", false, true},
		{"0.0.0.0:2424", false, true},
		{"[::]:2424", false, true},
		{":2424", false, true},
		{"8.8.8.8:24", false, false},
		{"[2001:db8::1]:24", false, false},
		{"no-port", false, false},
		{"0.0.0.0:2424", true, true},
		{"8.8.8.8:24", true, true},
	} {
		err := lmtp.CheckListenAddress(tc.addr, tc.public)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListenAddress(%q, %v) = %v, want ok %v", tc.addr, tc.public, err, tc.ok)
		}
	}
}
