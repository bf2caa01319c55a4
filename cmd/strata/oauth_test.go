package main

import (
	"strings"
	"testing"

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
