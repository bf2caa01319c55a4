package identity_test

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/identity"
	"github.com/strata-mail/strata/internal/identity/identitytest"
)

func TestParseURI(t *testing.T) {
	good := map[string]identity.Identity{
		"strata://node/m1":            {Kind: identity.Node, Name: "m1"},
		"strata://frontend/fe-0":      {Kind: identity.Frontend, Name: "fe-0"},
		"strata://admin/cluster":      {Kind: identity.ClusterAdmin},
		"strata://admin/tenant/acme":  {Kind: identity.TenantAdmin, Tenant: "acme"},
		"STRATA://admin/tenant/acme":  {Kind: identity.TenantAdmin, Tenant: "acme"},
		"strata://admin/tenant/a.b_c": {Kind: identity.TenantAdmin, Tenant: "a.b_c"},
	}
	for s, want := range good {
		got, err := identity.Parse(s)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		if again, err := identity.Parse(got.URI()); err != nil || again != got {
			t.Errorf("Parse(URI of %q) = %+v, %v", s, again, err)
		}
	}
	for _, s := range []string{
		"", "strata:", "strata://", "strata://node", "strata://node/", "strata://node/a/b",
		"https://node/m1", "strata://admin", "strata://admin/tenant", "strata://admin/tenant/",
		"strata://admin/tenant/a/b", "strata://admin/clusters", "strata://admin/cluster/x",
		"strata://NODE/m1", "strata://node/m1?x=1", "strata://node/m1#f", "strata://u@node/m1",
		"strata://node:1/m1", "strata://node/m%2f1", "strata://node/a%20b", "strata:node/m1",
		"strata://admin/tenant/" + strings.Repeat("x", 129),
	} {
		if id, err := identity.Parse(s); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", s, id)
		}
	}
}

func TestFromCertificate(t *testing.T) {
	ca := identitytest.NewCA(t)
	one := ca.Issue(t, identitytest.Leaf{URIs: []string{"strata://admin/tenant/acme"}})
	id, err := identity.FromCertificate(one.Leaf)
	if err != nil || id != (identity.Identity{Kind: identity.TenantAdmin, Tenant: "acme"}) {
		t.Errorf("FromCertificate = %+v, %v", id, err)
	}
	for name, uris := range map[string][]string{
		"none":    nil,
		"two":     {"strata://admin/cluster", "strata://node/m1"},
		"foreign": {"spiffe://example.org/ns/x"},
	} {
		cert := ca.Issue(t, identitytest.Leaf{URIs: uris})
		if id, err := identity.FromCertificate(cert.Leaf); err == nil {
			t.Errorf("%s: FromCertificate = %+v, want an error", name, id)
		}
	}
	if _, err := identity.FromCertificate(nil); err == nil {
		t.Error("FromCertificate(nil) succeeded")
	}
}

func TestTokenRoundTrip(t *testing.T) {
	priv, err := identity.GenerateTokenKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privPEM, _ := identity.MarshalSigningKey(priv)
	pubPEM, _ := identity.MarshalVerifyKey(priv.Public().(ed25519.PublicKey))
	other, _ := identity.GenerateTokenKey()
	otherPEM, _ := identity.MarshalVerifyKey(other.Public().(ed25519.PublicKey))
	must(t, os.WriteFile(filepath.Join(dir, "key"), privPEM, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "pub"), append(otherPEM, pubPEM...), 0o644))

	loaded, err := identity.LoadSigningKey(filepath.Join(dir, "key"))
	if err != nil || !loaded.Equal(priv) {
		t.Fatalf("LoadSigningKey = %v", err)
	}
	keys, err := identity.LoadVerifyKeys(filepath.Join(dir, "pub"))
	if err != nil || len(keys) != 2 {
		t.Fatalf("LoadVerifyKeys = %d keys, %v", len(keys), err)
	}
	if _, err := identity.LoadVerifyKeys(filepath.Join(dir, "key")); err == nil {
		t.Error("LoadVerifyKeys accepted a private key file")
	}

	now := time.Unix(1_800_000_000, 0)
	admin := identity.Identity{Kind: identity.TenantAdmin, Tenant: "acme"}
	token, claims, err := identity.IssueToken(loaded, admin, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	v := identity.NewVerifier(keys...).WithClock(func() time.Time { return now.Add(59 * time.Minute) })
	id, got, err := v.Verify(token)
	if err != nil || id != admin || got != claims || claims.ID == "" {
		t.Fatalf("Verify = %+v %+v %v", id, got, err)
	}

	expired := identity.NewVerifier(keys...).WithClock(func() time.Time { return now.Add(time.Hour) })
	if _, _, err := expired.Verify(token); !errors.Is(err, identity.ErrTokenExpired) {
		t.Errorf("expired token: %v", err)
	}
	if _, _, err := identity.NewVerifier(other.Public().(ed25519.PublicKey)).Verify(token); !errors.Is(err, identity.ErrTokenSignature) {
		t.Errorf("token under another key: %v", err)
	}
	// A changed claim (another tenant) breaks the signature.
	parts := strings.Split(token, ".")
	forged, _, _ := identity.IssueToken(other, identity.Identity{Kind: identity.ClusterAdmin}, time.Hour, now)
	fparts := strings.Split(forged, ".")
	if _, _, err := v.Verify(parts[0] + "." + fparts[1] + "." + parts[2]); err == nil {
		t.Error("a token with swapped claims verified")
	}
	for _, bad := range []string{"", "x", token + "x", strings.TrimPrefix(token, "strata-"), parts[0] + "." + parts[1], token[:len(token)-2], strings.Repeat("a", 5000)} {
		if _, _, err := v.Verify(bad); err == nil {
			t.Errorf("Verify(%.20q...) succeeded", bad)
		} else if strings.Contains(err.Error(), parts[2]) {
			t.Errorf("error %q contains the signature", err)
		}
	}

	for _, id := range []identity.Identity{{Kind: identity.Node, Name: "m1"}, {Kind: identity.Frontend, Name: "f"}, {Kind: identity.TenantAdmin}} {
		if _, _, err := identity.IssueToken(priv, id, time.Hour, now); err == nil {
			t.Errorf("IssueToken(%+v) succeeded", id)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Second, identity.MaxTokenTTL + time.Second} {
		if _, _, err := identity.IssueToken(priv, admin, ttl, now); err == nil {
			t.Errorf("IssueToken with ttl %v succeeded", ttl)
		}
	}
}

func FuzzVerify(f *testing.F) {
	priv, err := identity.GenerateTokenKey()
	if err != nil {
		f.Fatal(err)
	}
	token, _, _ := identity.IssueToken(priv, identity.Identity{Kind: identity.ClusterAdmin}, time.Hour, time.Now())
	f.Add(token)
	f.Add("strata-admin-v1.e30.AAAA")
	f.Add("strata-admin-v1..")
	v := identity.NewVerifier(priv.Public().(ed25519.PublicKey))
	f.Fuzz(func(t *testing.T, s string) {
		id, _, err := v.Verify(s)
		if err == nil && s != token {
			t.Fatalf("a token that was not issued verified as %+v", id)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"strata://node/m1", "strata://admin/tenant/acme", "strata://admin/cluster", "strata://x/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := identity.Parse(s)
		if err != nil {
			return
		}
		if again, err := identity.Parse(id.URI()); err != nil || again != id {
			t.Fatalf("Parse(%q) = %+v, but its URI parses as %+v, %v", s, id, again, err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkVerify is the cost an admin token adds to every call it comes with.
func BenchmarkVerify(b *testing.B) {
	priv, err := identity.GenerateTokenKey()
	if err != nil {
		b.Fatal(err)
	}
	token, _, _ := identity.IssueToken(priv, identity.Identity{Kind: identity.TenantAdmin, Tenant: "acme"}, time.Hour, time.Now())
	v := identity.NewVerifier(priv.Public().(ed25519.PublicKey))
	for b.Loop() {
		if _, _, err := v.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}
