package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/internal/oauthtest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestTenantOAuthCommands: `strata tenant oauth set|show|clear` against a running server;
// what they set is what FindOAuthIssuer answers frontends.
func TestTenantOAuthCommands(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	if out := mustStrata(t, srv, "tenant", "oauth", "show", "acme"); out != "tenant acme has no OAuth issuer\n" {
		t.Fatalf("show before set: %q", out)
	}
	for _, bad := range [][]string{
		{"tenant", "oauth", "set", "acme", "--issuer", "http://id.acme.test", "--audience", "imap"},
		{"tenant", "oauth", "set", "acme", "--issuer", "https://id.acme.test"},
		{"tenant", "oauth", "set", "acme", "--issuer", "https://id.acme.test", "--audience", "imap", "--algorithms", "none"},
		{"tenant", "oauth", "set", "ghost", "--issuer", "https://id.acme.test", "--audience", "imap"},
		{"tenant", "oauth", "show", "ghost"},
	} {
		if out, err := strata(t, srv, bad...); err == nil {
			t.Errorf("strata %s succeeded: %s", strings.Join(bad, " "), out)
		}
	}
	out := mustStrata(t, srv, "tenant", "oauth", "set", "acme", "--issuer", "https://id.acme.test", "--audience", "imap", "--algorithms", "ES256,EdDSA")
	for _, want := range []string{"issuer         https://id.acme.test\n", "account-claim  email\n", "algorithms     ES256,EdDSA\n", "jwks-uri       (from discovery)\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("set = %q, want a line %q", out, want)
		}
	}
	if out2 := mustStrata(t, srv, "tenant", "oauth", "show", "acme"); out2 != out {
		t.Fatalf("show = %q, set answered %q", out2, out)
	}
	found, err := srv.Metadata().FindOAuthIssuer(t.Context(), &metadatapb.FindOAuthIssuerRequest{Issuer: "https://id.acme.test"})
	if err != nil || len(found.GetTenants()) != 1 || found.GetTenants()[0].GetSettings().GetAudience() != "imap" {
		t.Fatalf("find issuer: %v, %v", found, err)
	}
	mustStrata(t, srv, "tenant", "oauth", "clear", "acme")
	if out := mustStrata(t, srv, "tenant", "oauth", "show", "acme"); out != "tenant acme has no OAuth issuer\n" {
		t.Fatalf("show after clear: %q", out)
	}
}

// TestOAuthCAFile: --oauth-ca-file adds its certificates to the roots the OAuth verifier
// trusts; a file without a certificate is refused at start.
func TestOAuthCAFile(t *testing.T) {
	iss := oauthtest.Start(t)
	dir := t.TempDir()
	caFile, junk := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := func(args ...string) *pflag.FlagSet {
		f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		addOAuthFlags(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if pool, err := oauthRootCAsFromFlags(flags()); pool != nil || err != nil {
		t.Fatalf("without the flag: %v, %v; want the system roots (nil)", pool, err)
	}
	pool, err := oauthRootCAsFromFlags(flags("--oauth-ca-file", caFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Certificate().Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Fatalf("the issuer's certificate against the pool: %v", err)
	}
	for _, bad := range []string{junk, filepath.Join(dir, "missing.pem")} {
		if _, err := oauthRootCAsFromFlags(flags("--oauth-ca-file", bad)); err == nil {
			t.Errorf("--oauth-ca-file %s accepted", bad)
		}
	}
}
