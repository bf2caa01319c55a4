package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/internal/oauthtest"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

const (
	alice    = "alice@example.com"
	audience = "strata"
)

// startMetadata runs an embedded Strata for its metadata service, with alice in the demo
// tenant "example".
func startMetadata(t *testing.T) metadatapb.MetadataClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, embedded.Config{
		DataDir: t.TempDir(), IMAPListen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", Demo: true,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	md := srv.Metadata()
	if _, err := md.CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: alice, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	return md
}

func setOAuth(t *testing.T, md metadatapb.MetadataClient, s *metadatapb.OAuthSettings) {
	t.Helper()
	if _, err := md.SetOAuthSettings(t.Context(), &metadatapb.SetOAuthSettingsRequest{RequestId: embedded.NewRequestID(), Tenant: "example", Settings: s}); err != nil {
		t.Fatal(err)
	}
}

func verify(t *testing.T, v *oauth.Verifier, token string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	account, err := v.Verify(ctx, token, "")
	if err == nil && account.GetEmail() != alice {
		t.Fatalf("verified as %q", account.GetEmail())
	}
	return err
}

// TestKeyRotation: a token signed with a key the cached JWKS lacks makes one refetch;
// more such tokens within KeyRefreshInterval make none (so made-up kids cannot hammer the
// issuer); once the issuer publishes the key, the next refetch finds it.
func TestKeyRotation(t *testing.T) {
	md := startMetadata(t)
	iss := oauthtest.Start(t)
	setOAuth(t, md, &metadatapb.OAuthSettings{Issuer: iss.URL, Audience: audience})
	const interval = 300 * time.Millisecond
	v := oauth.New(oauth.Config{Metadata: md, RootCAs: iss.CAs, KeyRefreshInterval: interval})

	if err := verify(t, v, iss.Sign(t, oauthtest.RS256, iss.Claims(alice, audience))); err != nil {
		t.Fatal(err)
	}
	if n := iss.JWKSFetches(); n != 1 {
		t.Fatalf("JWKS fetched %d times for the first token", n)
	}
	iss.AddKey(t, "rs2", "RS256", false)
	rotated := iss.Sign(t, "rs2", iss.Claims(alice, audience))
	time.Sleep(interval) // past the rate limit of the first fetch
	start := time.Now()
	for i := 0; i < 20; i++ {
		if err := verify(t, v, rotated); !errors.Is(err, oauth.ErrInvalidToken) {
			t.Fatalf("token of an unpublished key: %v", err)
		}
	}
	// One refetch, and at most one more per interval that the 20 attempts took.
	if n, most := iss.JWKSFetches(), 2+int64(time.Since(start)/interval); n < 2 || n > most {
		t.Fatalf("JWKS fetched %d times after 20 tokens of an unknown kid, want 2 to %d", n, most)
	}
	iss.Publish("rs2")
	time.Sleep(interval)
	if err := verify(t, v, rotated); err != nil {
		t.Fatalf("token of the rotated key once published: %v", err)
	}
	// Known kids need no fetch.
	before := iss.JWKSFetches()
	for _, kid := range []string{oauthtest.RS256, oauthtest.ES256, oauthtest.EdDSA, "rs2"} {
		if err := verify(t, v, iss.Sign(t, kid, iss.Claims(alice, audience))); err != nil {
			t.Fatalf("%s: %v", kid, err)
		}
	}
	if n := iss.JWKSFetches(); n != before {
		t.Fatalf("JWKS fetched %d more times for known keys", n-before)
	}
}

// TestTenantSettings: the tenant's algorithms, account claim and jwks_uri apply; a cleared
// setting applies once the IssuerTTL of the cached answer has passed.
func TestTenantSettings(t *testing.T) {
	md := startMetadata(t)
	iss := oauthtest.Start(t)
	v := oauth.New(oauth.Config{Metadata: md, RootCAs: iss.CAs, IssuerTTL: 5 * time.Second})

	setOAuth(t, md, &metadatapb.OAuthSettings{Issuer: iss.URL, Audience: audience, Algorithms: []string{"ES256"}, AccountClaim: "preferred_username", JwksUri: iss.URL + "/jwks"})
	claims := iss.Claims("someone@else.example", audience)
	claims["preferred_username"] = "ALICE@example.com"
	if err := verify(t, v, iss.Sign(t, oauthtest.ES256, claims)); err != nil {
		t.Fatalf("ES256 with preferred_username: %v", err)
	}
	if err := verify(t, v, iss.Sign(t, oauthtest.RS256, claims)); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Fatalf("RS256 where only ES256 is accepted: %v", err)
	}
	if err := verify(t, v, iss.Sign(t, oauthtest.ES256, iss.Claims(alice, audience))); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Fatalf("token without the account claim: %v", err)
	}
	// A token for the audience of a tenant that cleared its settings: still accepted from
	// the answer cached at the first verification (seconds ago), refused once it expired.
	setOAuth(t, md, nil)
	if err := verify(t, v, iss.Sign(t, oauthtest.ES256, claims)); err != nil {
		t.Fatalf("right after the settings were cleared, within IssuerTTL: %v (the answer was not cached)", err)
	}
	testwait.Until(t, 15*time.Second, func() error {
		if err := verify(t, v, iss.Sign(t, oauthtest.ES256, claims)); !errors.Is(err, oauth.ErrInvalidToken) {
			return fmt.Errorf("token of an issuer no tenant trusts any more: %v", err)
		}
		return nil
	})
}

// TestIssuerUnavailable: keys that cannot be fetched (an untrusted certificate, a
// discovery document naming another issuer) are the server's failure, not a refusal.
func TestIssuerUnavailable(t *testing.T) {
	md := startMetadata(t)
	iss := oauthtest.Start(t)
	setOAuth(t, md, &metadatapb.OAuthSettings{Issuer: iss.URL, Audience: audience})
	token := iss.Sign(t, oauthtest.RS256, iss.Claims(alice, audience))
	if err := verify(t, oauth.New(oauth.Config{Metadata: md}), token); !errors.Is(err, oauth.ErrKeysUnavailable) {
		t.Fatalf("issuer with a certificate of an untrusted CA: %v", err)
	}
	// OpenID Connect Discovery 4.3: the document's issuer must be the tenant's.
	setOAuth(t, md, &metadatapb.OAuthSettings{Issuer: iss.URL + "/", Audience: audience})
	claims := iss.Claims(alice, audience)
	claims["iss"] = iss.URL + "/"
	if err := verify(t, oauth.New(oauth.Config{Metadata: md, RootCAs: iss.CAs}), iss.Sign(t, oauthtest.RS256, claims)); !errors.Is(err, oauth.ErrKeysUnavailable) {
		t.Fatalf("discovery document of another issuer: %v", err)
	}
}
