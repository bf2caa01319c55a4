package metadata

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// OAuth (issue 15): the token issuer a tenant trusts for SASL OAUTHBEARER (RFC 7628) and
// XOAUTH2. The metadata service only stores and finds the settings; frontend/oauth fetches
// the issuer's keys and verifies tokens.
//
// Keys (see keys.go):
//
//	'o' 't' tenant               -> OAuthSettings as the admin set them
//	'o' 'i' issuer 0x00 tenant   -> empty (the tenants that trust an issuer)
//
// Invariants: a tenant has at most one settings record, and exactly one issuer entry per
// record, for the record's issuer; both go with the tenant (deleteTenant). An issuer
// never holds a NUL (checkOAuthSettings), so the index key splits unambiguously.
const (
	prefixOAuth       = 'o'
	oauthTenantTag    = 't'
	oauthIssuerTag    = 'i'
	maxOAuthURL       = 512
	maxOAuthAudience  = 256
	maxOAuthClaim     = 64
	defaultOAuthClaim = "email"
)

// oauthAlgorithms are the JWS algorithms a tenant may accept (RFC 7518 3.1); "none" and the
// HMAC ones (a shared secret is no issuer key) are not among them.
var oauthAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512", "EdDSA"}

func oauthSettingsKey(tenant string) []byte {
	return append([]byte{prefixOAuth, oauthTenantTag}, tenant...)
}

func oauthIssuerPrefix(issuer string) []byte {
	return append(append([]byte{prefixOAuth, oauthIssuerTag}, issuer...), 0)
}

func oauthIssuerKey(issuer, tenant string) []byte {
	return append(oauthIssuerPrefix(issuer), tenant...)
}

// checkOAuthURL refuses what is not an absolute https URL without a fragment, NUL or
// control characters (RFC 8414 2: the issuer is an https URL without query or fragment).
func checkOAuthURL(what, raw string, query bool) error {
	if raw == "" || len(raw) > maxOAuthURL || !utf8.ValidString(raw) {
		return errInvalid("%s %q: an https URL of at most %d bytes", what, raw, maxOAuthURL)
	}
	for _, r := range raw {
		if r < 0x21 || r == 0x7f {
			return errInvalid("%s %q: no spaces or control characters", what, raw)
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Fragment != "" || u.User != nil || (!query && u.RawQuery != "") {
		return errInvalid("%s %q: an https URL without user information or fragment (an issuer also without query)", what, raw)
	}
	return nil
}

// checkOAuthSettings refuses settings out of their ranges (metadata.proto OAuthSettings).
func checkOAuthSettings(s *metadatapb.OAuthSettings) error {
	if err := checkOAuthURL("issuer", s.GetIssuer(), false); err != nil {
		return err
	}
	if a := s.GetAudience(); a == "" || len(a) > maxOAuthAudience || !utf8.ValidString(a) {
		return errInvalid("audience %q: 1 to %d bytes of UTF-8", a, maxOAuthAudience)
	}
	if c := s.GetAccountClaim(); len(c) > maxOAuthClaim || strings.ContainsFunc(c, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return errInvalid("account claim %q: at most %d printable ASCII characters", c, maxOAuthClaim)
	}
	for i, alg := range s.GetAlgorithms() {
		if !slices.Contains(oauthAlgorithms, alg) {
			return errInvalid("algorithm %q: want one of %s", alg, strings.Join(oauthAlgorithms, ", "))
		}
		if slices.Contains(s.GetAlgorithms()[:i], alg) {
			return errInvalid("algorithm %q named twice", alg)
		}
	}
	if s.GetJwksUri() != "" {
		if err := checkOAuthURL("jwks_uri", s.GetJwksUri(), true); err != nil {
			return err
		}
	}
	return nil
}

// oauthSettings returns a tenant's stored settings, nil when it has none.
func oauthSettings(r reader, tenant string) (*metadatapb.OAuthSettings, error) {
	s := &metadatapb.OAuthSettings{}
	found, err := getProto(r, oauthSettingsKey(tenant), s)
	if err != nil || !found {
		return nil, err
	}
	return s, nil
}

// effectiveOAuthSettings fills in the default account claim.
func effectiveOAuthSettings(s *metadatapb.OAuthSettings) *metadatapb.OAuthSettings {
	if s != nil && s.AccountClaim == "" {
		s.AccountClaim = defaultOAuthClaim
	}
	return s
}

func (c *cmdCtx) setOAuthSettings(req *metadatapb.SetOAuthSettingsRequest) (*metadatapb.CommandResult, error) {
	tenant := req.GetTenant()
	if _, err := c.loadTenant(tenant); err != nil {
		return nil, err
	}
	s := req.GetSettings()
	if s != nil {
		if err := checkOAuthSettings(s); err != nil {
			return nil, err
		}
	}
	if err := c.forgetOAuthSettings(tenant); err != nil {
		return nil, err
	}
	if s != nil {
		c.tx.setProto(oauthSettingsKey(tenant), s)
		c.tx.mustSet(oauthIssuerKey(s.GetIssuer(), tenant), nil)
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_OauthSettings{OauthSettings: &metadatapb.TenantOAuthSettings{
		Tenant: tenant, Settings: effectiveOAuthSettings(s),
	}}}, nil
}

// forgetOAuthSettings deletes a tenant's settings and its issuer entry.
func (c *cmdCtx) forgetOAuthSettings(tenant string) error {
	old, err := oauthSettings(c.tx, tenant)
	if err != nil || old == nil {
		return err
	}
	c.tx.mustDelete(oauthIssuerKey(old.GetIssuer(), tenant))
	c.tx.mustDelete(oauthSettingsKey(tenant))
	return nil
}

// findOAuthIssuer answers the tenants that trust issuer, with their settings.
func (v *view) findOAuthIssuer(issuer string) ([]*metadatapb.TenantOAuthSettings, error) {
	var out []*metadatapb.TenantOAuthSettings
	if issuer == "" || strings.IndexByte(issuer, 0) >= 0 || len(issuer) > maxOAuthURL {
		return nil, nil
	}
	prefix := oauthIssuerPrefix(issuer)
	var tenants []string
	err := scan(v.r, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		tenants = append(tenants, string(k[len(prefix):]))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, t := range tenants {
		s, err := oauthSettings(v.r, t)
		if err != nil {
			return nil, err
		}
		out = append(out, &metadatapb.TenantOAuthSettings{Tenant: t, Settings: effectiveOAuthSettings(s)})
	}
	return out, nil
}

// tenantOAuthSettings answers a tenant's settings; NotFound for no such tenant.
func (v *view) tenantOAuthSettings(tenant string) (*metadatapb.TenantOAuthSettings, error) {
	if found, err := getProto(v.r, tenantKey(tenant), &metadatapb.Tenant{}); err != nil {
		return nil, err
	} else if !found {
		return nil, errNotFound("tenant %q not found", tenant)
	}
	settings, err := oauthSettings(v.r, tenant)
	if err != nil {
		return nil, err
	}
	return &metadatapb.TenantOAuthSettings{Tenant: tenant, Settings: effectiveOAuthSettings(settings)}, nil
}

func (s *Service) SetOAuthSettings(ctx context.Context, req *metadatapb.SetOAuthSettingsRequest) (*metadatapb.TenantOAuthSettings, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetOauthSettings{SetOauthSettings: req}}, (*metadatapb.CommandResult).GetOauthSettings)
}

func (s *Service) GetOAuthSettings(ctx context.Context, req *metadatapb.GetOAuthSettingsRequest) (*metadatapb.TenantOAuthSettings, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	settings, err := v.tenantOAuthSettings(req.GetTenant())
	if err != nil {
		return nil, readStatus(err)
	}
	return settings, nil
}

func (s *Service) FindOAuthIssuer(ctx context.Context, req *metadatapb.FindOAuthIssuerRequest) (*metadatapb.FindOAuthIssuerResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	tenants, err := v.findOAuthIssuer(req.GetIssuer())
	if err != nil {
		return nil, storageStatus(err)
	}
	return &metadatapb.FindOAuthIssuerResponse{Tenants: tenants}, nil
}
