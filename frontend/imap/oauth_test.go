package imap_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/oauthtest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

const oauthAudience = "strata-imap"

// startOAuth is startTenants with an issuer the demo tenant ("example") trusts, a second
// issuer the other tenant trusts, and carol disabled. The brute-force guard is off: its
// delays would outlast the reads of the many refused tokens of a test from one address
// (TestEveryMechanismIsGuarded tests tokens under the guard).
func startOAuth(t testing.TB, edit func(*embedded.Config)) (*embedded.Server, *oauthtest.Issuer, *oauthtest.Issuer) {
	t.Helper()
	iss, otherIss := oauthtest.Start(t), oauthtest.Start(t)
	roots := iss.CAs.Clone()
	roots.AddCert(otherIss.Certificate())
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.OAuthRootCAs = roots
		noGuard(cfg)
		edit(cfg)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	md := srv.Metadata()
	if _, err := md.CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: otherTenant, Domains: []string{"other.org"}}); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{alice, carol, eve} {
		if _, err := md.CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: email, Password: testPassword}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := md.SetAccountDisabled(ctx, &metadatapb.SetAccountDisabledRequest{RequestId: embedded.NewRequestID(), Email: carol, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	for tenant, issuer := range map[string]string{"example": iss.URL, otherTenant: otherIss.URL} {
		if _, err := md.SetOAuthSettings(ctx, &metadatapb.SetOAuthSettingsRequest{RequestId: embedded.NewRequestID(), Tenant: tenant, Settings: &metadatapb.OAuthSettings{Issuer: issuer, Audience: oauthAudience}}); err != nil {
			t.Fatal(err)
		}
	}
	return srv, iss, otherIss
}

// noGuard turns the metadata leader's brute-force guard off.
func noGuard(cfg *embedded.Config) { cfg.AuthGuard.Disabled = true }

// oauthBearer is an OAUTHBEARER client message (RFC 7628 3.1), base64.
func oauthBearer(user, token string) string {
	gs2 := "n,,"
	if user != "" {
		gs2 = "n,a=" + user + ","
	}
	return base64.StdEncoding.EncodeToString([]byte(gs2 + "\x01auth=Bearer " + token + "\x01\x01"))
}

// xoauth2 is an XOAUTH2 client message, base64.
func xoauth2(user, token string) string {
	return base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
}

// refused sends an AUTHENTICATE command whose token the server refuses, and checks RFC
// 7628 3.2.2: an error challenge with the JSON status, then, after the client's dummy
// response, NO [AUTHENTICATIONFAILED].
func (rc *rawConn) refused(command, dummy, wantStatus string) {
	rc.t.Helper()
	rc.n++
	tag := "o" + string(rune('a'+rc.n%26))
	rc.write(tag + " " + command + "\r\n")
	challenge := rc.readLine()
	encoded, ok := strings.CutPrefix(challenge, "+ ")
	if !ok {
		rc.t.Fatalf("%.60s...: got %q, want an error challenge", command, challenge)
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	var body struct{ Status string }
	if err != nil || json.Unmarshal(raw, &body) != nil || body.Status != wantStatus {
		rc.t.Fatalf("%.60s...: challenge %q (%s), want status %s", command, raw, err, wantStatus)
	}
	rc.write(dummy + "\r\n")
	if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		rc.t.Fatalf("%.60s...: %q, want NO [AUTHENTICATIONFAILED]", command, tagged)
	}
}

// TestOAuthBearerLogin: tokens of every accepted algorithm log in through OAUTHBEARER,
// with and without the initial response, and through XOAUTH2; the capabilities name both
// mechanisms.
func TestOAuthBearerLogin(t *testing.T) {
	srv, iss, _ := startOAuth(t, func(*embedded.Config) {})
	rc := dialRaw(t, srv)
	caps := rc.ok("CAPABILITY")
	if !contains(caps, " AUTH=OAUTHBEARER") || !contains(caps, " AUTH=XOAUTH2") {
		t.Fatalf("CAPABILITY %q lacks the OAuth mechanisms", caps)
	}
	for _, kid := range []string{oauthtest.RS256, oauthtest.ES256, oauthtest.EdDSA} {
		rc := dialRaw(t, srv)
		token := iss.Sign(t, kid, iss.Claims("Alice@Example.com", oauthAudience))
		_, tagged := rc.cmd("AUTHENTICATE OAUTHBEARER " + oauthBearer("alice@example.com", token))
		if !strings.HasPrefix(tagged, "OK [CAPABILITY ") {
			t.Fatalf("%s: %q", kid, tagged)
		}
		if untagged := rc.ok("NAMESPACE"); !contains(untagged, "NAMESPACE") {
			t.Fatalf("NAMESPACE after OAuth login: %q", untagged)
		}
	}

	// Without an initial response: an empty challenge first (RFC 9051 6.2.2); no
	// authorization identity.
	rc = dialRaw(t, srv)
	rc.write("a1 AUTHENTICATE OAUTHBEARER\r\n")
	if l := rc.readLine(); l != "+ " {
		t.Fatalf("challenge %q", l)
	}
	rc.write(oauthBearer("", iss.Sign(t, oauthtest.ES256, iss.Claims(alice, oauthAudience))) + "\r\n")
	if _, tagged := rc.until("a1"); !strings.HasPrefix(tagged, "OK [CAPABILITY ") {
		t.Fatalf("OAUTHBEARER without initial response: %q", tagged)
	}

	rc = dialRaw(t, srv)
	rc.expect("AUTHENTICATE XOAUTH2 "+xoauth2(alice, iss.Sign(t, oauthtest.RS256, iss.Claims(alice, oauthAudience))), "OK [CAPABILITY ")
}

// TestOAuthBearerRefused: the tokens issue 15 names are refused, each with the error
// challenge, the dummy response and NO [AUTHENTICATIONFAILED], on one connection that
// then still logs in.
func TestOAuthBearerRefused(t *testing.T) {
	srv, iss, otherIss := startOAuth(t, func(*embedded.Config) {})
	iss.AddKey(t, "unpublished", "RS256", false)
	good := func() map[string]any { return iss.Claims(alice, oauthAudience) }
	with := func(key string, value any) map[string]any {
		c := good()
		if value == nil {
			delete(c, key)
		} else {
			c[key] = value
		}
		return c
	}
	hourAgo := time.Now().Add(-time.Hour).Unix()
	rc := dialRaw(t, srv)
	for _, tc := range []struct {
		name, token string
	}{
		{"expired", iss.Sign(t, oauthtest.RS256, with("exp", hourAgo))},
		{"not yet valid", iss.Sign(t, oauthtest.RS256, with("nbf", time.Now().Add(time.Hour).Unix()))},
		{"no expiry", iss.Sign(t, oauthtest.RS256, with("exp", nil))},
		{"wrong audience", iss.Sign(t, oauthtest.ES256, with("aud", "someone-else"))},
		{"wrong issuer", iss.Sign(t, oauthtest.ES256, with("iss", iss.URL+"/other"))},
		{"no issuer", iss.Sign(t, oauthtest.ES256, with("iss", nil))},
		{"unsigned", oauthtest.Unsigned(t, good())},
		{"unknown key", iss.Sign(t, "unpublished", good())},
		{"another issuer's key", otherIss.Sign(t, oauthtest.RS256, good())},
		{"account of another tenant", iss.Sign(t, oauthtest.RS256, iss.Claims(eve, oauthAudience))},
		{"other tenant's issuer for this tenant's account", otherIss.Sign(t, oauthtest.RS256, otherIss.Claims(alice, oauthAudience))},
		{"disabled account", iss.Sign(t, oauthtest.RS256, iss.Claims(carol, oauthAudience))},
		{"no such account", iss.Sign(t, oauthtest.RS256, iss.Claims("nobody@example.com", oauthAudience))},
		{"no account claim", iss.Sign(t, oauthtest.RS256, with("email", nil))},
		{"non-string account claim", iss.Sign(t, oauthtest.RS256, with("email", 42))},
		{"not a JWT", "bm90LWEtand0"},
		{"tampered payload", tamper(iss.Sign(t, oauthtest.EdDSA, good()), iss.Claims(bob, oauthAudience))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc.t = t
			rc.refused("AUTHENTICATE OAUTHBEARER "+oauthBearer("", tc.token), "AQ==", "invalid_token")
		})
	}
	rc.t = t
	token := iss.Sign(t, oauthtest.RS256, good())
	// The authorization identity names another account than the token.
	rc.refused("AUTHENTICATE OAUTHBEARER "+oauthBearer(bob, token), "AQ==", "invalid_token")
	rc.refused("AUTHENTICATE XOAUTH2 "+xoauth2(bob, token), "", "invalid_token")
	// Malformed client messages: RFC 6750 3.1 invalid_request.
	for _, msg := range []string{
		"y", // no gs2 header end
		"p=tls-unique,,\x01auth=Bearer x\x01\x01", // channel binding asked for
		"n,,\x01auth=Basic eA==\x01\x01",          // another scheme
		"n,,\x01host=example.com\x01\x01",         // no auth
		"n,,\x01auth=Bearer x\x01",                // no final kvsep
		"\x01",                                    // a dummy response first
	} {
		rc.refused("AUTHENTICATE OAUTHBEARER "+base64.StdEncoding.EncodeToString([]byte(msg)), "AQ==", "invalid_request")
	}
	rc.expect("AUTHENTICATE OAUTHBEARER !!!", "BAD")
	// Cancelled after the error challenge (RFC 9051 6.2.2).
	rc.write("c1 AUTHENTICATE OAUTHBEARER " + oauthBearer("", iss.Sign(t, oauthtest.RS256, with("aud", "x"))) + "\r\n")
	if l := rc.readLine(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("challenge %q", l)
	}
	rc.write("*\r\n")
	if _, tagged := rc.until("c1"); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("cancel: %q", tagged)
	}
	rc.expect("AUTHENTICATE OAUTHBEARER "+oauthBearer(alice, token), "OK [CAPABILITY ")
}

// tamper replaces the payload of a signed token with claims, keeping its signature.
func tamper(token string, claims map[string]any) string {
	parts := strings.Split(token, ".")
	payload, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

// TestOAuthNeedsTLS: like passwords, tokens are refused (and the mechanisms not announced)
// where the plaintext policy refuses passwords (RFC 7628 4, RFC 9051 6.2.3).
func TestOAuthNeedsTLS(t *testing.T) {
	srv, iss, _ := startOAuth(t, func(cfg *embedded.Config) {
		cfg.AllowPlaintextAuth = false
		cfg.RequireTLSOnLoopback = true
	})
	rc := dialRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); contains(caps, "OAUTHBEARER") || contains(caps, "XOAUTH2") {
		t.Fatalf("CAPABILITY without TLS: %q", caps)
	}
	rc.expect("AUTHENTICATE OAUTHBEARER "+oauthBearer("", iss.Sign(t, oauthtest.RS256, iss.Claims(alice, oauthAudience))), "NO [PRIVACYREQUIRED]")
}

// TestOAuthIssuerUnavailable: an issuer whose keys cannot be fetched (here: its HTTPS
// certificate is not trusted) is the server's failure, not the client's: after the error
// challenge and the dummy response, NO [UNAVAILABLE] (RFC 5530 3), not
// [AUTHENTICATIONFAILED].
func TestOAuthIssuerUnavailable(t *testing.T) {
	srv, iss, _ := startOAuth(t, func(cfg *embedded.Config) { cfg.OAuthRootCAs = nil })
	rc := dialRaw(t, srv)
	rc.write("u1 AUTHENTICATE OAUTHBEARER " + oauthBearer("", iss.Sign(t, oauthtest.RS256, iss.Claims(alice, oauthAudience))) + "\r\n")
	if l := rc.readLine(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("got %q, want the error challenge", l)
	}
	rc.write("AQ==\r\n") // RFC 7628 3.2.3: %x01
	if _, tagged := rc.until("u1"); !strings.HasPrefix(tagged, "NO [UNAVAILABLE]") {
		t.Fatalf("unreachable issuer: %q, want NO [UNAVAILABLE]", tagged)
	}
}
