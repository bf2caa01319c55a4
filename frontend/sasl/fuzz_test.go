package sasl_test

import (
	"errors"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/frontend/sasl"
	"github.com/strata-mail/strata/internal/embeddedtest"
)

// FuzzScram feeds arbitrary client-first and client-final messages to SCRAM-SHA-256
// exchanges (and the same two messages to PLAIN, OAUTHBEARER and XOAUTH2) against a real
// metadata service: no input panics, and every failure is one of the package's errors.
func FuzzScram(f *testing.F) {
	srv := embeddedtest.Start(f, embedded.Config{Demo: true})
	conn := &sasl.Conn{
		Metadata: srv.Metadata(), Service: auth.ServiceIMAP, Policy: auth.Policy{AllowPlaintext: true},
		OAuth: oauth.New(oauth.Config{Metadata: srv.Metadata()}),
	}
	for _, seed := range [][2]string{
		{"n,,n=demo@example.com,r=abc", "c=biws,r=abc,p=AAAA"},
		{"y,,n=user,r=rOprNGfwEbeRWgbNEkqO", "c=eSws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="},
		{"p=tls-exporter,a=x,n=x,r=1", "c=,r=,p="},
		{"n,,m=x,n=a=2C=3D,r=!", ""},
		{"", ","},
		{"n,,\x01auth=Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln\x01\x01", "\x01"},
		{"user=demo@example.com\x01auth=Bearer abc\x01\x01", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, first, final string) {
		for _, mech := range []string{"SCRAM-SHA-256", "PLAIN", "OAUTHBEARER", "XOAUTH2"} {
			ex, err := conn.Start(mech)
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range []string{first, final} {
				step, err := ex.Next(t.Context(), []byte(msg))
				if err != nil {
					if !errors.Is(err, sasl.ErrAuthFailed) && !errors.Is(err, sasl.ErrMalformed) && !errors.Is(err, sasl.ErrAuthorization) {
						t.Fatalf("%s: unexpected error %v", mech, err)
					}
					break
				}
				if step.Done && step.Account == nil {
					t.Fatalf("%s: done without an account", mech)
				}
				if step.Done {
					break
				}
			}
		}
	})
}
