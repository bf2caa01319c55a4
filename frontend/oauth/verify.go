package oauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// ErrInvalidToken is every refused token, whatever the reason (wrapped with it).
var ErrInvalidToken = errors.New("invalid token")

// ErrKeysUnavailable is an issuer whose keys could not be fetched: a failure of the
// server's side, not the client's.
var ErrKeysUnavailable = errors.New("issuer keys unavailable")

// allAlgorithms are those a tenant may name (metadata/oauth.go); a token with another
// "alg", "none" among them, does not parse.
var allAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// defaultAlgorithms are accepted when a tenant names none.
var defaultAlgorithms = []string{string(jose.RS256), string(jose.ES256), string(jose.EdDSA)}

// Config configures a Verifier; zero fields take the defaults.
type Config struct {
	Metadata metadatapb.MetadataClient
	// RootCAs are trusted for the issuers' HTTPS; nil: the system roots.
	RootCAs *x509.CertPool
	// Leeway is the clock skew allowed on exp, nbf and iat (default 60s).
	Leeway time.Duration
	// KeyTTL is how long a fetched JWKS is used before it is fetched again (default 1h).
	KeyTTL time.Duration
	// KeyRefreshInterval is the least time between two fetches of one key source, which
	// bounds the fetches that unknown kids cause (default 30s).
	KeyRefreshInterval time.Duration
	// FetchTimeout bounds one HTTPS fetch (default 10s).
	FetchTimeout time.Duration
	// MaxKeySources bounds the cached key sources (default 1024).
	MaxKeySources int
	// IssuerTTL is how long the tenants that trust an issuer (FindOAuthIssuer) are reused
	// before they are asked again (default DefaultIssuerTTL; negative: asked at every
	// login). A changed or cleared setting reaches every frontend within it.
	IssuerTTL time.Duration
}

const (
	// DefaultIssuerTTL is Config.IssuerTTL's default: the LDAP settings' (frontend/ldapauth).
	DefaultIssuerTTL = 10 * time.Second
	// maxIssuers bounds the issuers remembered (tokens name arbitrary ones, unknown
	// issuers are remembered too); past it the whole table is dropped.
	maxIssuers = 1024
)

// Verifier verifies bearer tokens against the tenants' issuers. It is safe for
// concurrent use.
type Verifier struct {
	cfg    Config
	client *http.Client

	mu      sync.Mutex
	sources map[keySourceID]*keySource
	issuers map[string]issuerEntry
}

// issuerEntry is a FindOAuthIssuer answer as read at fetched.
type issuerEntry struct {
	tenants []*metadatapb.TenantOAuthSettings
	fetched time.Time
}

// New returns a Verifier.
func New(cfg Config) *Verifier {
	if cfg.Leeway == 0 {
		cfg.Leeway = 60 * time.Second
	}
	if cfg.KeyTTL == 0 {
		cfg.KeyTTL = time.Hour
	}
	if cfg.KeyRefreshInterval == 0 {
		cfg.KeyRefreshInterval = 30 * time.Second
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 10 * time.Second
	}
	if cfg.MaxKeySources == 0 {
		cfg.MaxKeySources = 1024
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.FetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" || len(via) >= 5 {
				return fmt.Errorf("redirect to %s refused", req.URL.Redacted())
			}
			return nil
		},
	}
	if cfg.IssuerTTL == 0 {
		cfg.IssuerTTL = DefaultIssuerTTL
	}
	return &Verifier{cfg: cfg, client: client, sources: make(map[keySourceID]*keySource), issuers: make(map[string]issuerEntry)}
}

// Verify checks token (and user, the SASL authorization identity, "" if none) and returns
// the account it logs in. See the package doc for the order of the checks.
func (v *Verifier) Verify(ctx context.Context, token, user string) (*metadatapb.Account, error) {
	if len(token) > MaxMessage {
		return nil, fmt.Errorf("%w: too long", ErrInvalidToken)
	}
	// RFC 7515 7.1, RFC 7519 7.2: a JWS in compact form; an "alg" outside allAlgorithms
	// ("none" included, RFC 7518 3.6) is refused here.
	tok, err := jwt.ParseSigned(token, allAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrInvalidToken, len(tok.Headers))
	}
	header := tok.Headers[0]
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalidToken, err)
	}
	if unverified.Issuer == "" {
		return nil, fmt.Errorf("%w: no issuer", ErrInvalidToken)
	}
	tenants, err := v.trusting(ctx, unverified.Issuer)
	if err != nil {
		return nil, err
	}
	if len(tenants) == 0 {
		return nil, fmt.Errorf("%w: no tenant trusts issuer %q", ErrInvalidToken, unverified.Issuer)
	}
	var refusals []error
	for _, t := range tenants {
		account, err := v.verifyFor(ctx, tok, header, t, user)
		if err == nil {
			return account, nil
		}
		if !errors.Is(err, ErrInvalidToken) {
			return nil, err
		}
		refusals = append(refusals, err)
	}
	return nil, errors.Join(refusals...)
}

// trusting answers the tenants that trust issuer (FindOAuthIssuer), from the answer of the
// last IssuerTTL when there is one.
func (v *Verifier) trusting(ctx context.Context, issuer string) ([]*metadatapb.TenantOAuthSettings, error) {
	now := time.Now()
	v.mu.Lock()
	e, ok := v.issuers[issuer]
	v.mu.Unlock()
	if ok && now.Sub(e.fetched) < v.cfg.IssuerTTL {
		return e.tenants, nil
	}
	found, err := v.cfg.Metadata.FindOAuthIssuer(ctx, &metadatapb.FindOAuthIssuerRequest{Issuer: issuer})
	if err != nil {
		return nil, fmt.Errorf("find issuer: %w", err)
	}
	if v.cfg.IssuerTTL > 0 {
		v.mu.Lock()
		if len(v.issuers) >= maxIssuers {
			v.issuers = make(map[string]issuerEntry)
		}
		v.issuers[issuer] = issuerEntry{tenants: found.GetTenants(), fetched: now}
		v.mu.Unlock()
	}
	return found.GetTenants(), nil
}

// verifyFor checks a parsed token against the settings of one tenant that trusts its
// issuer.
func (v *Verifier) verifyFor(ctx context.Context, tok *jwt.JSONWebToken, header jose.Header, t *metadatapb.TenantOAuthSettings, user string) (*metadatapb.Account, error) {
	s := t.GetSettings()
	algorithms := s.GetAlgorithms()
	if len(algorithms) == 0 {
		algorithms = defaultAlgorithms
	}
	if !slices.Contains(algorithms, header.Algorithm) {
		return nil, fmt.Errorf("%w: tenant %s does not accept alg %s", ErrInvalidToken, t.GetTenant(), header.Algorithm)
	}
	keys, err := v.keys(ctx, s, header)
	if err != nil {
		return nil, err
	}
	var registered jwt.Claims
	all := map[string]any{}
	for i := range keys {
		if err = tok.Claims(keys[i].Key, &registered, &all); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrInvalidToken, err)
	}
	// RFC 7519 4.1.4: a token without an expiry would be good forever; refused.
	if registered.Expiry == nil {
		return nil, fmt.Errorf("%w: no exp", ErrInvalidToken)
	}
	// RFC 7519 4.1.1, 4.1.3, 4.1.4, 4.1.5, 4.1.6.
	expected := jwt.Expected{Issuer: s.GetIssuer(), AnyAudience: jwt.Audience{s.GetAudience()}, Time: time.Now()}
	if err := registered.ValidateWithLeeway(expected, v.cfg.Leeway); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	claim, _ := all[s.GetAccountClaim()].(string)
	if claim == "" {
		return nil, fmt.Errorf("%w: no string claim %q", ErrInvalidToken, s.GetAccountClaim())
	}
	email := strings.ToLower(claim)
	// RFC 7628 3.1: the authorization identity, when given, must be one the token may act
	// as; Strata allows no proxying, so only the token's own account.
	if user != "" && !strings.EqualFold(user, email) {
		return nil, fmt.Errorf("%w: authorization identity %q is not the token's account %q", ErrInvalidToken, user, email)
	}
	account, err := v.cfg.Metadata.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: email})
	if status.Code(err) == codes.NotFound || status.Code(err) == codes.InvalidArgument {
		return nil, fmt.Errorf("%w: no account %q", ErrInvalidToken, email)
	}
	if err != nil {
		return nil, fmt.Errorf("account %q: %w", email, err)
	}
	if account.GetTenant() != t.GetTenant() {
		return nil, fmt.Errorf("%w: account %q is not of tenant %s", ErrInvalidToken, email, t.GetTenant())
	}
	if account.GetDisabled() {
		return nil, fmt.Errorf("%w: account %q is disabled", ErrInvalidToken, email)
	}
	return account, nil
}
