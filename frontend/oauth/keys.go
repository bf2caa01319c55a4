package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Bounds of what an issuer serves.
const (
	maxDocument = 1 << 20
	maxKeys     = 100
)

// keySourceID names where keys come from: the issuer and, when the tenant set one, its
// jwks_uri (else the discovery document's).
type keySourceID struct{ issuer, jwksURI string }

// keySource is the cached JWKS of one keySourceID.
type keySource struct {
	mu        sync.Mutex // held during a fetch, so one source is fetched once at a time
	keys      []jose.JSONWebKey
	fetched   time.Time // the last successful fetch
	attempted time.Time // the last fetch, successful or not
}

// source returns the cache entry of id, making it (and, at the bound, dropping another).
func (v *Verifier) source(id keySourceID) *keySource {
	v.mu.Lock()
	defer v.mu.Unlock()
	if src, ok := v.sources[id]; ok {
		return src
	}
	if len(v.sources) >= v.cfg.MaxKeySources {
		for other := range v.sources { // map order: an arbitrary entry
			delete(v.sources, other)
			break
		}
	}
	src := &keySource{}
	v.sources[id] = src
	return src
}

// keys returns the keys of s's issuer that may have signed a token with header: the key
// of its "kid", or without a kid every signing key for its "alg". The set is fetched when
// none was, when it is older than KeyTTL, and when it lacks the kid (RFC 7517 4.5: a new
// kid is how an issuer rolls its keys), never twice within KeyRefreshInterval.
func (v *Verifier) keys(ctx context.Context, s *metadatapb.OAuthSettings, header jose.Header) ([]jose.JSONWebKey, error) {
	src := v.source(keySourceID{s.GetIssuer(), s.GetJwksUri()})
	src.mu.Lock()
	defer src.mu.Unlock()
	now := time.Now()
	candidates := matchKeys(src.keys, header)
	fresh := !src.fetched.IsZero() && now.Sub(src.fetched) < v.cfg.KeyTTL
	if len(candidates) > 0 && fresh {
		return candidates, nil
	}
	if src.attempted.IsZero() || now.Sub(src.attempted) >= v.cfg.KeyRefreshInterval {
		src.attempted = now
		keys, err := v.fetchKeys(ctx, s)
		switch {
		case err == nil:
			src.keys, src.fetched = keys, now
		case src.fetched.IsZero():
			return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
		}
		// A failed refetch keeps the keys fetched before.
		candidates = matchKeys(src.keys, header)
	}
	if src.fetched.IsZero() {
		return nil, fmt.Errorf("%w: no keys of %s yet", ErrKeysUnavailable, s.GetIssuer())
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: no key %q for %s in the JWKS of %s", ErrInvalidToken, header.KeyID, header.Algorithm, s.GetIssuer())
	}
	return candidates, nil
}

// matchKeys picks the signing keys that fit a token's header (RFC 7517 4.2 "use", 4.4
// "alg", 4.5 "kid").
func matchKeys(keys []jose.JSONWebKey, header jose.Header) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if (header.KeyID != "" && k.KeyID != header.KeyID) || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != header.Algorithm) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// fetchKeys reads the JWKS of s: from its jwks_uri, else from the discovery document's.
func (v *Verifier) fetchKeys(ctx context.Context, s *metadatapb.OAuthSettings) ([]jose.JSONWebKey, error) {
	uri := s.GetJwksUri()
	if uri == "" {
		// OpenID Connect Discovery 1.0 4: the document is at the issuer plus this path.
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := v.getJSON(ctx, strings.TrimSuffix(s.GetIssuer(), "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, err
		}
		// OpenID Connect Discovery 1.0 4.3: the document's issuer is the issuer.
		if doc.Issuer != s.GetIssuer() {
			return nil, fmt.Errorf("discovery document of %s names issuer %q", s.GetIssuer(), doc.Issuer)
		}
		uri = doc.JWKSURI
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := v.getJSON(ctx, uri, &set); err != nil {
		return nil, err
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		// A key go-jose cannot read (another kty, a private key) is skipped, not fatal.
		if json.Unmarshal(raw, &k) != nil || !k.Valid() || !k.IsPublic() {
			continue
		}
		if keys = append(keys, k); len(keys) == maxKeys {
			break
		}
	}
	return keys, nil
}

// getJSON GETs an https URL and decodes its JSON body of at most maxDocument bytes.
func (v *Verifier) getJSON(ctx context.Context, rawURL string, into any) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("fetch %q: not an https URL", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", u.Redacted(), resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("fetch %s: more than %d bytes", u.Redacted(), maxDocument)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	return nil
}
