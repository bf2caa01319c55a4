// Package oauthtest runs an OAuth token issuer for tests: an HTTPS server (httptest's TLS,
// trusted through CAs) with an OpenID Connect discovery document and a JWKS, and the
// signing keys to mint tokens with (RS256, ES256, EdDSA), some of them kept out of the
// JWKS to sign with a key the verifier cannot know.
package oauthtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key ids of the keys an Issuer starts with, published in its JWKS.
const (
	RS256 = "rs1"
	ES256 = "es1"
	EdDSA = "ed1"
)

// Issuer is a running token issuer.
type Issuer struct {
	// URL is the issuer identifier ("iss") and the base of its discovery document.
	URL string
	// CAs trust the issuer's HTTPS certificate.
	CAs *x509.CertPool

	srv         *httptest.Server
	jwksFetches atomic.Int64

	mu        sync.Mutex
	keys      map[string]jose.JSONWebKey // private keys by kid
	published map[string]bool
}

// Start runs an issuer until the test ends.
func Start(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{keys: map[string]jose.JSONWebKey{}, published: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"issuer": iss.URL, "jwks_uri": iss.URL + "/jwks", "response_types_supported": []string{"code"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksFetches.Add(1)
		writeJSON(w, iss.jwks())
	})
	iss.srv = httptest.NewUnstartedServer(mux)
	// A verifier that does not trust the certificate is a case tests make on purpose.
	iss.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	iss.srv.StartTLS()
	t.Cleanup(iss.srv.Close)
	iss.URL = iss.srv.URL
	iss.CAs = x509.NewCertPool()
	iss.CAs.AddCert(iss.srv.Certificate())
	iss.AddKey(t, RS256, jose.RS256, true)
	iss.AddKey(t, ES256, jose.ES256, true)
	iss.AddKey(t, EdDSA, jose.EdDSA, true)
	return iss
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// AddKey makes a new signing key kid for alg (RS256, ES256 or EdDSA), in the JWKS when
// publish is set.
func (iss *Issuer) AddKey(t testing.TB, kid string, alg jose.SignatureAlgorithm, publish bool) {
	t.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("oauthtest: no keys for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.keys[kid] = jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg), Use: "sig"}
	iss.published[kid] = publish
}

// Publish puts key kid into the JWKS (a key rotation).
func (iss *Issuer) Publish(kid string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.published[kid] = true
}

func (iss *Issuer) jwks() jose.JSONWebKeySet {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	var set jose.JSONWebKeySet
	for kid, k := range iss.keys {
		if iss.published[kid] {
			set.Keys = append(set.Keys, k.Public())
		}
	}
	return set
}

// Certificate is the issuer's HTTPS certificate.
func (iss *Issuer) Certificate() *x509.Certificate { return iss.srv.Certificate() }

// JWKSFetches counts the requests of the JWKS so far.
func (iss *Issuer) JWKSFetches() int64 { return iss.jwksFetches.Load() }

// Claims are the claims of a good token for email and audience: this issuer, valid from a
// minute ago for an hour.
func (iss *Issuer) Claims(email, audience string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss.URL, "aud": audience, "sub": "user-" + email, "email": email,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// Sign mints a compact JWS of claims with key kid (its algorithm; kid in the header).
func (iss *Issuer) Sign(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	iss.mu.Lock()
	key, ok := iss.keys[kid]
	iss.mu.Unlock()
	if !ok {
		t.Fatalf("oauthtest: no key %q", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// Unsigned mints a token with "alg": "none" (RFC 7519 6.1) and no signature.
func Unsigned(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
}
