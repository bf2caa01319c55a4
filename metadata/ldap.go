package metadata

import (
	"context"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// LDAP as a tenant's account source (issue 15; metadata.proto LdapSettings). The state
// machine only keeps and checks the settings; the frontend (frontend/ldapauth) talks to the
// directory. Key (see keys.go):
//
//	'l' tenant -> LdapSettings
//
// Invariants:
//
//   - No secret is stored: the service account's password stays in a file on each frontend
//     host, the settings name the file.
//   - Settings that would send a password in the clear off the machine are refused here as
//     well as at the frontend: ldap:// without StartTLS only to a loopback host.
//   - The settings go with their tenant (DeleteTenant).
const (
	prefixLdapSettings = 'l'

	ldapModeBind      = "bind"
	ldapModeSearch    = "search"
	maxLdapTimeoutMs  = 60_000
	maxLdapFieldBytes = 1024
)

func ldapSettingsKey(tenant string) []byte { return strKey(prefixLdapSettings, tenant) }

// ldapAttributeName is an RFC 4512 1.4 descr (keystring) or numericoid.
var ldapAttributeName = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$`)

// checkLdapSettings refuses settings a frontend could not use or that would leak a password.
func checkLdapSettings(s *metadatapb.LdapSettings) error {
	for _, f := range []string{s.GetUrl(), s.GetCaFile(), s.GetUserDnTemplate(), s.GetBindDn(), s.GetBindPasswordFile(), s.GetBaseDn(), s.GetFilter()} {
		if len(f) > maxLdapFieldBytes {
			return errInvalid("ldap settings: a field is longer than %d bytes", maxLdapFieldBytes)
		}
	}
	u, err := url.Parse(s.GetUrl())
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return errInvalid("ldap url %q: want ldaps://host[:port] or ldap://host[:port]", s.GetUrl())
	}
	switch u.Scheme {
	case "ldaps":
		if s.GetAllowPlaintext() {
			return errInvalid("ldap allow_plaintext is for ldap:// URLs only")
		}
	case "ldap":
		if s.GetAllowPlaintext() && !loopbackHost(u.Hostname()) {
			return errInvalid("ldap url %q: plaintext only to a loopback host; use ldaps:// or StartTLS", s.GetUrl())
		}
	default:
		return errInvalid("ldap url %q: want ldaps://host[:port] or ldap://host[:port]", s.GetUrl())
	}
	if f := s.GetCaFile(); f != "" && !filepath.IsAbs(f) {
		return errInvalid("ldap ca file %q: want an absolute path", f)
	}
	switch s.GetMode() {
	case ldapModeBind:
		t := s.GetUserDnTemplate()
		if !hasLoginPlaceholder(t) {
			return errInvalid("ldap user DN template %q: must contain {user} or {email}", t)
		}
		if _, err := ldap.ParseDN(fillPlaceholders(t, "x")); err != nil {
			return errInvalid("ldap user DN template %q: %v", t, err)
		}
	case ldapModeSearch:
		if _, err := ldap.ParseDN(s.GetBindDn()); err != nil || s.GetBindDn() == "" {
			return errInvalid("ldap bind DN %q: want a DN", s.GetBindDn())
		}
		if f := s.GetBindPasswordFile(); !filepath.IsAbs(f) {
			return errInvalid("ldap bind password file %q: want an absolute path on the frontend hosts", f)
		}
		if _, err := ldap.ParseDN(s.GetBaseDn()); err != nil || s.GetBaseDn() == "" {
			return errInvalid("ldap base DN %q: want a DN", s.GetBaseDn())
		}
		f := s.GetFilter()
		if !hasLoginPlaceholder(f) {
			return errInvalid("ldap filter %q: must contain {user} or {email}", f)
		}
		if _, err := ldap.CompileFilter(fillPlaceholders(f, "x")); err != nil {
			return errInvalid("ldap filter %q: %v", f, err)
		}
	default:
		return errInvalid("ldap mode %q: want bind or search", s.GetMode())
	}
	for _, a := range []string{s.GetMailAttribute(), s.GetQuotaAttribute(), s.GetAliasAttribute()} {
		if a != "" && !ldapAttributeName.MatchString(a) {
			return errInvalid("ldap attribute %q: not an attribute name", a)
		}
	}
	if s.GetTimeoutMs() > maxLdapTimeoutMs {
		return errInvalid("ldap timeout %dms: at most %dms", s.GetTimeoutMs(), maxLdapTimeoutMs)
	}
	return nil
}

func hasLoginPlaceholder(s string) bool {
	return strings.Contains(s, "{user}") || strings.Contains(s, "{email}")
}

func fillPlaceholders(s, value string) string {
	return strings.NewReplacer("{user}", value, "{email}", value).Replace(s)
}

// loopbackHost reports whether host (of a URL, no port) names the loopback interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *cmdCtx) setLdapSettings(req *metadatapb.SetLdapSettingsRequest) (*metadatapb.CommandResult, error) {
	tenant, err := c.loadTenant(req.GetTenant())
	if err != nil {
		return nil, err
	}
	s := req.GetSettings()
	if s == nil {
		c.tx.mustDelete(ldapSettingsKey(tenant.GetName()))
	} else {
		if err := checkLdapSettings(s); err != nil {
			return nil, err
		}
		c.tx.setProto(ldapSettingsKey(tenant.GetName()), s)
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_LdapSettings{LdapSettings: &metadatapb.LdapSettingsResponse{
		Tenant: tenant.GetName(), Domains: tenant.GetDomains(), Settings: s,
	}}}, nil
}

func (s *Service) SetLdapSettings(ctx context.Context, req *metadatapb.SetLdapSettingsRequest) (*metadatapb.LdapSettingsResponse, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetLdapSettings{SetLdapSettings: req}}, (*metadatapb.CommandResult).GetLdapSettings)
}

// GetLdapSettings answers a tenant's LDAP settings, found by name or by one of its domains.
func (s *Service) GetLdapSettings(ctx context.Context, req *metadatapb.GetLdapSettingsRequest) (*metadatapb.LdapSettingsResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	name := req.GetTenant()
	if name == "" {
		domain := strings.ToLower(req.GetDomain())
		raw, found, err := getRaw(v.r, domainKey(domain))
		if err != nil {
			return nil, storageStatus(err)
		}
		if !found {
			return nil, status.Errorf(codes.NotFound, "domain %q not found", domain)
		}
		name = string(raw)
	}
	tenant := &metadatapb.Tenant{}
	if found, err := getProto(v.r, tenantKey(name), tenant); err != nil {
		return nil, storageStatus(err)
	} else if !found {
		return nil, status.Errorf(codes.NotFound, "tenant %q not found", name)
	}
	resp := &metadatapb.LdapSettingsResponse{Tenant: tenant.GetName(), Domains: tenant.GetDomains()}
	settings := &metadatapb.LdapSettings{}
	if found, err := getProto(v.r, ldapSettingsKey(name), settings); err != nil {
		return nil, storageStatus(err)
	} else if found {
		resp.Settings = settings
	}
	return resp, nil
}

// provisionLdapAccount creates an LDAP tenant's account when missing and applies its
// directory attributes, all in one command (metadata.proto ProvisionLdapAccount).
func (c *cmdCtx) provisionLdapAccount(req *metadatapb.ProvisionLdapAccountRequest) (*metadatapb.CommandResult, error) {
	email, valid := NormalizeEmail(req.GetEmail())
	if !valid {
		return nil, errInvalid("invalid account address %q", req.GetEmail())
	}
	tenant, found, err := domainTenant(c.tx, emailDomain(email))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotFound("no tenant owns domain %q", emailDomain(email))
	}
	if _, isLdap, err := getRaw(c.tx, ldapSettingsKey(tenant)); err != nil {
		return nil, err
	} else if !isLdap {
		return nil, errPrecondition("tenant %q does not keep its accounts in LDAP", tenant)
	}
	rec := &metadatapb.AccountRecord{}
	if found, err := getProto(c.tx, accountKey(email), rec); err != nil {
		return nil, err
	} else if !found {
		if _, err := c.createAccount(&metadatapb.CreateAccountCommand{Email: email}); err != nil {
			return nil, err
		}
		if _, err := getProto(c.tx, accountKey(email), rec); err != nil {
			return nil, err
		}
	}
	if req.GetSetStorage() {
		limits := &metadatapb.QuotaLimits{}
		if _, err := getProto(c.tx, quotaKey(prefixQuotaLimits, quotaAccount, email), limits); err != nil {
			return nil, err
		}
		limits.StorageBytes = req.StorageBytes
		if _, err := c.setQuota(&metadatapb.SetQuotaRequest{Account: email, Limits: limits}); err != nil {
			return nil, err
		}
	}
	for _, raw := range req.GetAliases() {
		domain, local, err := parseAliasAddress(raw)
		if err != nil || local == "" {
			continue
		}
		if owner, found, err := domainTenant(c.tx, domain); err != nil {
			return nil, err
		} else if !found || owner != tenant {
			continue // no alias into another tenant's domains
		}
		if _, isAccount, err := getRaw(c.tx, accountKey(aliasAddress(domain, local))); err != nil {
			return nil, err
		} else if isAccount {
			continue
		}
		if _, err := c.addAlias(&metadatapb.AddAliasRequest{Address: aliasAddress(domain, local), Targets: []string{email}}); err != nil {
			return nil, err
		}
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Account{Account: rec.GetAccount()}}, nil
}

func (s *Service) ProvisionLdapAccount(ctx context.Context, req *metadatapb.ProvisionLdapAccountRequest) (*metadatapb.Account, error) {
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_ProvisionLdapAccount{ProvisionLdapAccount: req}})
	if err != nil {
		return nil, err
	}
	// A copy: the result may be the one kept for the request's retries.
	return s.loginAnswer(proto.Clone(res.GetAccount()).(*metadatapb.Account)), nil
}
