package managesieve_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/internal/scram"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// quotedB64 is msg in base64 as a quoted string.
func quotedB64(msg []byte) string { return `"` + base64.StdEncoding.EncodeToString(msg) + `"` }

// unquoteB64 decodes a challenge line: a quoted base64 string.
func unquoteB64(t testing.TB, line string) []byte {
	t.Helper()
	if len(line) < 2 || line[0] != '"' || line[len(line)-1] != '"' {
		t.Fatalf("challenge %q is not a quoted string", line)
	}
	b, err := base64.StdEncoding.DecodeString(line[1 : len(line)-1])
	if err != nil {
		t.Fatalf("challenge %q: %v", line, err)
	}
	return b
}

// scramAuth runs a SCRAM exchange (RFC 5804 2.1: challenges as strings, the server's final
// message in the OK's SASL code) and returns the final response line.
func (c *client) scramAuth(mechanism string, sc *scram.Client) string {
	c.t.Helper()
	c.send(`AUTHENTICATE "` + mechanism + `" ` + quotedB64(sc.First()) + "\r\n")
	line := c.line()
	if !strings.HasPrefix(line, `"`) {
		return line
	}
	final, err := sc.Final(unquoteB64(c.t, line))
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(quotedB64(final) + "\r\n")
	line = c.line()
	if rest, ok := strings.CutPrefix(line, `OK (SASL "`); ok {
		serverFinal, err := base64.StdEncoding.DecodeString(rest[:strings.IndexByte(rest, '"')])
		if err != nil {
			c.t.Fatal(err)
		}
		if err := sc.Verify(serverFinal); err != nil {
			c.t.Fatalf("server-final-message: %v", err)
		}
	}
	return line
}

// TestAuthenticateScram: ManageSieve runs the SCRAM mechanisms of frontend/sasl: the
// server-final-message in OK (SASL ...) (RFC 5804 2.1), a wrong password refused, -PLUS
// with tls-exporter after STARTTLS.
func TestAuthenticateScram(t *testing.T) {
	srv := startServer(t, nil)
	c, _ := dial(t, srv.ManageSieveAddr())
	wrong := &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, Password: "wrong"}
	if got := c.scramAuth("SCRAM-SHA-256", wrong); got != `NO "Authentication failed"` {
		t.Fatalf("wrong password: %q", got)
	}
	good := &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, Password: embedded.DemoPassword}
	if got := c.scramAuth("SCRAM-SHA-256", good); !strings.HasPrefix(got, `OK (SASL "`) || !strings.HasSuffix(got, `"Logged in"`) {
		t.Fatalf("SCRAM-SHA-256: %q", got)
	}
	c.ok("LISTSCRIPTS")

	c, _ = dial(t, srv.ManageSieveAddr())
	c.expect(`AUTHENTICATE "SCRAM-SHA-256-PLUS" "`+base64.StdEncoding.EncodeToString([]byte("p=tls-exporter,,n=a,r=b"))+`"`,
		`NO "Unsupported authentication mechanism"`)
	c.startTLS(tlsClientConfig(t, srv))
	state := c.nc.(*tls.Conn).ConnectionState()
	binding, err := state.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	plus := &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, Password: embedded.DemoPassword,
		GS2Header: "p=tls-exporter,,", ChannelBinding: binding}
	if got := c.scramAuth("SCRAM-SHA-256-PLUS", plus); !strings.HasPrefix(got, `OK (SASL "`) {
		t.Fatalf("SCRAM-SHA-256-PLUS: %q", got)
	}
}

// TestAppPasswordScope: an app password logs in to ManageSieve only when scoped to it.
func TestAppPasswordScope(t *testing.T) {
	srv := startServer(t, nil)
	add := func(name string, scopes ...string) string {
		resp, err := srv.Metadata().AddAppPassword(t.Context(), &metadatapb.AddAppPasswordRequest{
			RequestId: "app-" + name, Email: embedded.DemoAccount, Name: name, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetPassword()
	}
	imapOnly, sieve := add("mail", "imap"), add("sieve", "managesieve")
	c, _ := dial(t, srv.ManageSieveAddr())
	c.expect(`AUTHENTICATE "PLAIN" "`+plain("", embedded.DemoAccount, imapOnly)+`"`, `NO "Authentication failed"`)
	c.ok(`AUTHENTICATE "PLAIN" "` + plain("", embedded.DemoAccount, sieve) + `"`)
	c.ok("LISTSCRIPTS")
}

// TestRevokedAppPasswordEndsSession: a session logged in with an app password ends at its
// next command once the app password is revoked (RFC 5804 4: BYE, then the server closes
// the connection); a session of the account's password goes on.
func TestRevokedAppPasswordEndsSession(t *testing.T) {
	srv := startServer(t, nil)
	resp, err := srv.Metadata().AddAppPassword(t.Context(), &metadatapb.AddAppPasswordRequest{
		RequestId: "app-sieve", Email: embedded.DemoAccount, Name: "sieve", Scopes: []string{"managesieve"}})
	if err != nil {
		t.Fatal(err)
	}
	byApp, _ := dial(t, srv.ManageSieveAddr())
	byApp.ok(`AUTHENTICATE "PLAIN" "` + plain("", embedded.DemoAccount, resp.GetPassword()) + `"`)
	byPassword := login(t, srv.ManageSieveAddr())
	if _, err := srv.Metadata().RevokeAppPassword(t.Context(), &metadatapb.RevokeAppPasswordRequest{
		RequestId: "revoke-sieve", Email: embedded.DemoAccount, IdOrName: "sieve"}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 20*time.Second, func() error {
		lines := byApp.do("LISTSCRIPTS")
		if last := lines[len(lines)-1]; strings.HasPrefix(last, "BYE") {
			if !strings.Contains(last, "revoked") {
				t.Fatalf("BYE %q", last)
			}
			return nil
		}
		return errors.New("the app password's session goes on")
	})
	byApp.closed()
	time.Sleep(auth.RecheckInterval) // a re-check after the revocation
	byPassword.ok("LISTSCRIPTS")
}
