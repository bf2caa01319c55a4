package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/identity"
	"github.com/strata-mail/strata/internal/testlog"
)

// runStrata runs a command line that talks to no server.
func runStrata(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runStrataIn(t, "", args...)
}

// TestAdminTokenCommands: keygen writes a private key only its owner reads and refuses to
// overwrite it; issue prints a token the public key verifies, naming the administrator
// asked for, and tells nothing secret on stderr.
func TestAdminTokenCommands(t *testing.T) {
	key := filepath.Join(t.TempDir(), "token.key")
	if _, _, err := runStrata(t, "admin", "token", "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, %v", st, err)
	}
	if _, _, err := runStrata(t, "admin", "token", "keygen", "--out", key); err == nil {
		t.Error("keygen overwrote an existing key")
	}
	keys, err := identity.LoadVerifyKeys(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	verifier := identity.NewVerifier(keys...)

	out, errOut, err := runStrata(t, "admin", "token", "issue", "--key", key, "--tenant", "acme", "--ttl", "2h")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out)
	id, claims, err := verifier.Verify(token)
	if err != nil || id != (identity.Identity{Kind: identity.TenantAdmin, Tenant: "acme"}) {
		t.Fatalf("issued token: %+v, %v", id, err)
	}
	if got := time.Duration(claims.Expires-claims.IssuedAt) * time.Second; got != 2*time.Hour {
		t.Errorf("token lifetime %v, want 2h", got)
	}
	if strings.Contains(errOut, token[strings.LastIndexByte(token, '.'):]) || !strings.Contains(errOut, claims.ID) {
		t.Errorf("issue's stderr %q: want the token id, never the token", errOut)
	}
	out, _, err = runStrata(t, "admin", "token", "issue", "--key", key, "--cluster")
	if err != nil {
		t.Fatal(err)
	}
	if id, _, err := verifier.Verify(strings.TrimSpace(out)); err != nil || id.Kind != identity.ClusterAdmin {
		t.Errorf("cluster token: %+v, %v", id, err)
	}
	for _, args := range [][]string{
		{"--key", key},
		{"--key", key, "--cluster", "--tenant", "acme"},
		{"--key", key, "--tenant", "acme", "--ttl", "3000h"},
		{"--key", key + ".pub", "--cluster"},
		{"--tenant", "acme"},
	} {
		if _, _, err := runStrata(t, append([]string{"admin", "token", "issue"}, args...)...); err == nil {
			t.Errorf("issue %v succeeded", args)
		}
	}
}

// TestTenantAdminCommandAudited: `strata user tenant-admin` against `strata serve`'s
// loopback endpoint works as before authorization (plaintext, trusted) and is audited; a
// token is never sent over that plaintext connection.
func TestTenantAdminCommandAudited(t *testing.T) {
	var audit testlog.Buffer // written by the server's handlers
	srv := startAdminServerWith(t, func(cfg *embedded.Config) {
		cfg.Demo = true
		cfg.AuditLog = slog.New(slog.NewJSONHandler(&audit, nil))
	})
	if out := mustStrata(t, srv, "user", "tenant-admin", embedded.DemoAccount, "on"); !strings.Contains(out, "tenant admin on") {
		t.Errorf("tenant-admin on: %q", out)
	}
	if _, err := strata(t, srv, "user", "tenant-admin", embedded.DemoAccount, "maybe"); err == nil {
		t.Error("tenant-admin maybe succeeded")
	}
	log := audit.String()
	if !strings.Contains(log, `"rpc":"Metadata/SetAccountTenantAdmin"`) || !strings.Contains(log, `"who":"plaintext"`) || !strings.Contains(log, `"email":"`+embedded.DemoAccount+`"`) {
		t.Errorf("audit log lacks the call:\n%s", log)
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("strata-admin-v1.secret.secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := strata(t, srv, "user", "list", "--token-file", tokenFile); err == nil || !strings.Contains(err.Error(), "transport") {
		t.Errorf("a token over plaintext: %v", err)
	}
	if strings.Contains(audit.String(), "secret") {
		t.Errorf("the audit log holds the token:\n%s", audit.String())
	}
}
