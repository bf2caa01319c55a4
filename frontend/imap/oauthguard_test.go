package imap_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/oauthtest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestOAuthLoginBookkeeping: an OAuth login goes through the abuse bookkeeping of a
// password login. A refused token sent through the trusted proxy logs the fail2ban line
// with the client's address from the PROXY header and counts as a failure; an accepted
// one counts as a success and takes a slot of the per-account connection limit.
func TestOAuthLoginBookkeeping(t *testing.T) {
	iss := oauthtest.Start(t)
	srv, logs := startGuardedWith(t, func(cfg *embedded.Config) {
		cfg.OAuthRootCAs = iss.CAs
		cfg.IMAPLimits.MaxConnectionsPerAccount = 1
	})
	trustIssuer(t, srv, iss)

	rc := imapProxied(t, srv, "198.51.100.7", 2)
	bad := iss.Sign(t, oauthtest.ES256, iss.Claims(embedded.DemoAccount, "someone-else"))
	rc.refused("AUTHENTICATE OAUTHBEARER "+oauthBearer("", bad), "AQ==", "invalid_token")
	lines := logs.failureLines()
	if len(lines) != 1 || !strings.Contains(lines[0], "client_ip=198.51.100.7 protocol=imap") || !strings.Contains(lines[0], `reason="invalid token"`) {
		t.Fatalf("failure lines %q, want one for 198.51.100.7 with reason \"invalid token\"", lines)
	}

	good := iss.Sign(t, oauthtest.ES256, iss.Claims(embedded.DemoAccount, oauthAudience))
	if _, tagged := rc.cmd("AUTHENTICATE OAUTHBEARER " + oauthBearer("", good)); !strings.HasPrefix(tagged, "OK [CAPABILITY ") {
		t.Fatalf("OAuth login: %q", tagged)
	}
	second := imapFrom(t, srv, "127.0.0.9")
	if _, tagged := second.cmd("AUTHENTICATE XOAUTH2 " + xoauth2(embedded.DemoAccount, good)); !strings.HasPrefix(tagged, "NO [LIMIT]") {
		t.Fatalf("second OAuth session over the per-account limit: %q, want NO [LIMIT]", tagged)
	}
	metric, _ := embeddedtest.Scrape(t, srv.MetricsAddr())
	for series, want := range map[string]float64{
		`strata_auth_logins_total{protocol="imap",result="failure"}`: 1,
		`strata_auth_logins_total{protocol="imap",result="success"}`: 2,
	} {
		if got := metric(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// trustIssuer makes the demo tenant trust iss's tokens for oauthAudience.
func trustIssuer(t *testing.T, srv *embedded.Server, iss *oauthtest.Issuer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := srv.Metadata().SetOAuthSettings(ctx, &metadatapb.SetOAuthSettingsRequest{RequestId: embedded.NewRequestID(), Tenant: embedded.DemoTenant, Settings: &metadatapb.OAuthSettings{Issuer: iss.URL, Audience: oauthAudience}}); err != nil {
		t.Fatal(err)
	}
}

// addAppPassword adds an app password of the demo account scoped to IMAP and returns it.
func addAppPassword(t *testing.T, srv *embedded.Server, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	app, err := srv.Metadata().AddAppPassword(ctx, &metadatapb.AddAppPasswordRequest{RequestId: embedded.NewRequestID(), Email: embedded.DemoAccount, Name: name, Scopes: []string{"imap"}})
	if err != nil {
		t.Fatal(err)
	}
	return app.GetPassword()
}
