package sasl

import (
	"errors"
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
		{in: "demo@example.com\x00secret", err: ErrMalformed},
		{in: "", err: ErrMalformed},
		{in: "\x00a\x00b\x00c", err: ErrMalformed},
		{in: "\x00\x00", user: "", password: ""},
	} {
		user, password, err := ParsePlain([]byte(tc.in))
		if !errors.Is(err, tc.err) || user != tc.user || password != tc.password {
			t.Errorf("ParsePlain(%q) = %q, %q, %v; want %q, %q, %v", tc.in, user, password, err, tc.user, tc.password, tc.err)
		}
	}
}
