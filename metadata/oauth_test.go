package metadata

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdOAuthSettings(tenant string, s *metadatapb.OAuthSettings) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_SetOauthSettings{SetOauthSettings: &metadatapb.SetOAuthSettingsRequest{Tenant: tenant, Settings: s}}}
}

func (h *harness) findIssuer(issuer string) []*metadatapb.TenantOAuthSettings {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	found, err := v.findOAuthIssuer(issuer)
	if err != nil {
		h.t.Fatal(err)
	}
	return found
}

// TestOAuthSettings: settings are checked, found by issuer, replaced with their index
// entry, cleared, and go with their tenant.
func TestOAuthSettings(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdTenant("other", "other.org"))
	const issuer = "https://id.example.org/realms/mail"
	for _, bad := range []*metadatapb.OAuthSettings{
		{Issuer: "http://id.example.org", Audience: "imap"},
		{Issuer: "https://id.example.org?x=1", Audience: "imap"},
		{Issuer: "https://id.example.org/\x00", Audience: "imap"},
		{Issuer: "https://id.example.org#f", Audience: "imap"},
		{Issuer: "id.example.org", Audience: "imap"},
		{Issuer: issuer},
		{Issuer: issuer, Audience: "imap", AccountClaim: "e mail"},
		{Issuer: issuer, Audience: "imap", Algorithms: []string{"none"}},
		{Issuer: issuer, Audience: "imap", Algorithms: []string{"HS256"}},
		{Issuer: issuer, Audience: "imap", Algorithms: []string{"RS256", "RS256"}},
		{Issuer: issuer, Audience: "imap", JwksUri: "http://id.example.org/keys"},
	} {
		h.fails(codes.InvalidArgument, cmdOAuthSettings("example", bad))
	}
	h.fails(codes.NotFound, cmdOAuthSettings("ghost", &metadatapb.OAuthSettings{Issuer: issuer, Audience: "imap"}))

	got := h.ok(cmdOAuthSettings("example", &metadatapb.OAuthSettings{Issuer: issuer, Audience: "imap"})).GetOauthSettings()
	if got.GetTenant() != "example" || got.GetSettings().GetAccountClaim() != "email" {
		t.Fatalf("effective settings: %v", got)
	}
	h.ok(cmdOAuthSettings("other", &metadatapb.OAuthSettings{Issuer: issuer, Audience: "other-imap", AccountClaim: "preferred_username", Algorithms: []string{"ES256"}}))
	found := h.findIssuer(issuer)
	if len(found) != 2 || found[0].GetTenant() != "example" || found[1].GetSettings().GetAccountClaim() != "preferred_username" {
		t.Fatalf("find %s: %v", issuer, found)
	}
	if found := h.findIssuer(issuer + "/"); len(found) != 0 {
		t.Fatalf("another issuer found %v", found)
	}

	// A new issuer replaces the old one's index entry.
	h.ok(cmdOAuthSettings("example", &metadatapb.OAuthSettings{Issuer: "https://login.example.org", Audience: "imap", JwksUri: "https://login.example.org/keys?v=2"}))
	if found := h.findIssuer(issuer); len(found) != 1 || found[0].GetTenant() != "other" {
		t.Fatalf("old issuer after the change: %v", found)
	}
	if found := h.findIssuer("https://login.example.org"); len(found) != 1 || found[0].GetSettings().GetJwksUri() != "https://login.example.org/keys?v=2" {
		t.Fatalf("new issuer: %v", found)
	}

	// Cleared: no settings, no index entry.
	if got := h.ok(cmdOAuthSettings("example", nil)).GetOauthSettings(); got.GetSettings() != nil {
		t.Fatalf("cleared settings answer %v", got)
	}
	if found := h.findIssuer("https://login.example.org"); len(found) != 0 {
		t.Fatalf("cleared issuer found: %v", found)
	}
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: "other"}}})
	if n := h.keysWith(prefixOAuth); n != 0 {
		t.Fatalf("%d OAuth keys left after the tenants went", n)
	}
}

// TestServiceOAuth: the OAuth RPCs over gRPC on a Raft group.
func TestServiceOAuth(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	const issuer = "https://id.example.org"
	got := must(s.client.GetOAuthSettings(s.ctx(), &metadatapb.GetOAuthSettingsRequest{Tenant: "example"}))
	if got.GetSettings() != nil {
		t.Fatalf("settings before any were set: %v", got)
	}
	_, err := s.client.GetOAuthSettings(s.ctx(), &metadatapb.GetOAuthSettingsRequest{Tenant: "ghost"})
	wantCode(t, err, codes.NotFound)
	_, err = s.client.SetOAuthSettings(s.ctx(), &metadatapb.SetOAuthSettingsRequest{RequestId: s.reqID(), Tenant: "example", Settings: &metadatapb.OAuthSettings{Issuer: issuer}})
	wantCode(t, err, codes.InvalidArgument)
	must(s.client.SetOAuthSettings(s.ctx(), &metadatapb.SetOAuthSettingsRequest{RequestId: s.reqID(), Tenant: "example", Settings: &metadatapb.OAuthSettings{Issuer: issuer, Audience: "imap"}}))
	if got := must(s.client.GetOAuthSettings(s.ctx(), &metadatapb.GetOAuthSettingsRequest{Tenant: "example"})); got.GetSettings().GetAudience() != "imap" {
		t.Fatalf("get: %v", got)
	}
	found := must(s.client.FindOAuthIssuer(s.ctx(), &metadatapb.FindOAuthIssuerRequest{Issuer: issuer}))
	if len(found.GetTenants()) != 1 || found.GetTenants()[0].GetTenant() != "example" {
		t.Fatalf("find: %v", found)
	}
}
