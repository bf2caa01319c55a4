package managesieve_test

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

// TestAuthenticateOAuth: RFC 5804 2.1 with OAUTHBEARER (RFC 7628) and XOAUTH2: a token of
// the tenant's issuer logs in; a refused one is answered with RFC 7628 3.2.2's error
// challenge, then, after the client's dummy response, NO.
func TestAuthenticateOAuth(t *testing.T) {
	iss := oauthtest.Start(t)
	srv := startServer(t, func(c *embedded.Config) { c.OAuthRootCAs = iss.CAs })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := srv.Metadata().SetOAuthSettings(ctx, &metadatapb.SetOAuthSettingsRequest{RequestId: embedded.NewRequestID(), Tenant: "example", Settings: &metadatapb.OAuthSettings{Issuer: iss.URL, Audience: "sieve"}}); err != nil {
		t.Fatal(err)
	}
	bearer := func(token string) string {
		return base64.StdEncoding.EncodeToString([]byte("n,,\x01auth=Bearer " + token + "\x01\x01"))
	}
	good := iss.Sign(t, oauthtest.ES256, iss.Claims(embedded.DemoAccount, "sieve"))

	c, _ := dial(t, srv.ManageSieveAddr())
	c.expect(`AUTHENTICATE "OAUTHBEARER" "`+bearer(good)+`"`, `OK "Logged in"`)
	c.ok("CAPABILITY")

	c, _ = dial(t, srv.ManageSieveAddr())
	c.challenge(`AUTHENTICATE "XOAUTH2"`, `""`)
	c.send(`"` + base64.StdEncoding.EncodeToString([]byte("user="+embedded.DemoAccount+"\x01auth=Bearer "+good+"\x01\x01")) + `"` + "\r\n")
	if got := c.response(); got[len(got)-1] != `OK "Logged in"` {
		t.Fatalf("XOAUTH2 without initial response: %q", got)
	}

	c, _ = dial(t, srv.ManageSieveAddr())
	expired := iss.Claims(embedded.DemoAccount, "sieve")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	for _, token := range []string{iss.Sign(t, oauthtest.RS256, expired), oauthtest.Unsigned(t, iss.Claims(embedded.DemoAccount, "sieve"))} {
		c.send(`AUTHENTICATE "OAUTHBEARER" "` + bearer(token) + `"` + "\r\n")
		challenge := c.line()
		raw, err := base64.StdEncoding.DecodeString(strings.Trim(challenge, `"`))
		var body struct{ Status string }
		if err != nil || json.Unmarshal(raw, &body) != nil || body.Status != "invalid_token" {
			t.Fatalf("error challenge %q (%s)", challenge, raw)
		}
		c.expect(`"AQ=="`, `NO "Authentication failed"`)
	}
	c.expect(`AUTHENTICATE "OAUTHBEARER" "`+bearer(good)+`"`, `OK "Logged in"`)
}
