package metadata

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdLdapSettings(tenant string, s *metadatapb.LdapSettings) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_SetLdapSettings{SetLdapSettings: &metadatapb.SetLdapSettingsRequest{Tenant: tenant, Settings: s}}}
}

func validLdapBind() *metadatapb.LdapSettings {
	return &metadatapb.LdapSettings{Url: "ldaps://ldap.example.org", Mode: "bind", UserDnTemplate: "uid={user},ou=people,dc=example,dc=org", MailAttribute: "mail"}
}

func validLdapSearch() *metadatapb.LdapSettings {
	return &metadatapb.LdapSettings{
		Url: "ldap://ldap.example.org:389", Mode: "search", BindDn: "cn=strata,dc=example,dc=org",
		BindPasswordFile: "/etc/strata/ldap.pw", BaseDn: "ou=people,dc=example,dc=org",
		Filter: "(&(objectClass=inetOrgPerson)(mail={email}))", QuotaAttribute: "mailQuota", AliasAttribute: "mailAlternateAddress",
	}
}

// TestLdapSettingsChecks: settings that would leak a password or that a frontend could not
// use are refused; valid ones are stored, read back by tenant and by domain, cleared, and
// go with their tenant.
func TestLdapSettingsChecks(t *testing.T) {
	h := withAccount(t)
	edit := func(base func() *metadatapb.LdapSettings, change func(*metadatapb.LdapSettings)) *metadatapb.LdapSettings {
		s := base()
		change(s)
		return s
	}
	for name, bad := range map[string]*metadatapb.LdapSettings{
		"http url":             edit(validLdapBind, func(s *metadatapb.LdapSettings) { s.Url = "http://ldap.example.org" }),
		"no host":              edit(validLdapBind, func(s *metadatapb.LdapSettings) { s.Url = "ldaps://" }),
		"credentials in url":   edit(validLdapBind, func(s *metadatapb.LdapSettings) { s.Url = "ldaps://u:p@ldap.example.org" }),
		"plaintext remote":     edit(validLdapSearch, func(s *metadatapb.LdapSettings) { s.AllowPlaintext = true }),
		"plaintext with ldaps": edit(validLdapBind, func(s *metadatapb.LdapSettings) { s.AllowPlaintext = true }),
		"relative ca":          edit(validLdapBind, func(s *metadatapb.LdapSettings) { s.CaFile = "ca.pem" }),
		"mode":                 edit(validLdapBind, func(s *metadatapb.LdapSettings) { s.Mode = "anonymous" }),
		"template without user": edit(validLdapBind, func(s *metadatapb.LdapSettings) {
			s.UserDnTemplate = "uid=alice,dc=example,dc=org"
		}),
		"template not a DN":    edit(validLdapBind, func(s *metadatapb.LdapSettings) { s.UserDnTemplate = "{user}" }),
		"relative pw file":     edit(validLdapSearch, func(s *metadatapb.LdapSettings) { s.BindPasswordFile = "ldap.pw" }),
		"no bind dn":           edit(validLdapSearch, func(s *metadatapb.LdapSettings) { s.BindDn = "" }),
		"no base dn":           edit(validLdapSearch, func(s *metadatapb.LdapSettings) { s.BaseDn = "" }),
		"filter without user":  edit(validLdapSearch, func(s *metadatapb.LdapSettings) { s.Filter = "(objectClass=*)" }),
		"filter unbalanced":    edit(validLdapSearch, func(s *metadatapb.LdapSettings) { s.Filter = "(&(mail={email})" }),
		"attribute not a name": edit(validLdapSearch, func(s *metadatapb.LdapSettings) { s.QuotaAttribute = "quota)(x" }),
		"timeout":              edit(validLdapBind, func(s *metadatapb.LdapSettings) { s.TimeoutMs = 120_000 }),
	} {
		t.Run(name, func(t *testing.T) { h.fails(codes.InvalidArgument, cmdLdapSettings("example", bad)) })
	}
	h.fails(codes.NotFound, cmdLdapSettings("ghost", validLdapBind()))
	loopback := edit(validLdapSearch, func(s *metadatapb.LdapSettings) { s.Url, s.AllowPlaintext = "ldap://127.0.0.1:3890", true })
	got := h.ok(cmdLdapSettings("example", loopback)).GetLdapSettings()
	if got.GetTenant() != "example" || len(got.GetDomains()) != 1 || got.GetSettings().GetUrl() != "ldap://127.0.0.1:3890" {
		t.Fatalf("set: %v", got)
	}
	h.ok(cmdLdapSettings("example", validLdapBind()))
	if h.keysWith(prefixLdapSettings) != 1 {
		t.Fatal("settings not stored once")
	}
	h.ok(cmdLdapSettings("example", nil))
	if h.keysWith(prefixLdapSettings) != 0 {
		t.Fatal("clear left the settings")
	}
	h.ok(cmdLdapSettings("example", validLdapSearch()))
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: "example", Force: true}}})
	if h.keysWith(prefixLdapSettings) != 0 {
		t.Fatal("DeleteTenant left the LDAP settings")
	}
}

// TestServiceLdapSettings: the RPCs over gRPC: GetLdapSettings by tenant and by domain,
// absent settings for a tenant that set none.
func TestServiceLdapSettings(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	got := must(s.client.GetLdapSettings(s.ctx(), &metadatapb.GetLdapSettingsRequest{Domain: "Example.org"}))
	if got.GetTenant() != "example" || got.GetSettings() != nil {
		t.Fatalf("before set: %v", got)
	}
	must(s.client.SetLdapSettings(s.ctx(), &metadatapb.SetLdapSettingsRequest{RequestId: s.reqID(), Tenant: "example", Settings: validLdapSearch()}))
	got = must(s.client.GetLdapSettings(s.ctx(), &metadatapb.GetLdapSettingsRequest{Domain: "example.org"}))
	if got.GetSettings().GetBindPasswordFile() != "/etc/strata/ldap.pw" || got.GetDomains()[0] != "example.org" {
		t.Fatalf("by domain: %v", got)
	}
	got = must(s.client.GetLdapSettings(s.ctx(), &metadatapb.GetLdapSettingsRequest{Tenant: "example"}))
	if got.GetSettings().GetMode() != "search" {
		t.Fatalf("by tenant: %v", got)
	}
	_, err := s.client.GetLdapSettings(s.ctx(), &metadatapb.GetLdapSettingsRequest{Domain: "nowhere.org"})
	wantCode(t, err, codes.NotFound)
	_, err = s.client.GetLdapSettings(s.ctx(), &metadatapb.GetLdapSettingsRequest{Tenant: "ghost"})
	wantCode(t, err, codes.NotFound)
}

func cmdProvisionLdap(req *metadatapb.ProvisionLdapAccountRequest) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_ProvisionLdapAccount{ProvisionLdapAccount: req}}
}

// TestProvisionLdapAccount: the frontend's one write for an LDAP login creates the account
// without a password, sets its STORAGE limit (keeping the MESSAGE limit) and adds aliases in
// the tenant's domains only; it is refused for a tenant without LDAP settings.
func TestProvisionLdapAccount(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdTenant("other", "other.org"))
	h.ok(cmdAccount("mallory@other.org"))
	h.fails(codes.FailedPrecondition, cmdProvisionLdap(&metadatapb.ProvisionLdapAccountRequest{Email: "bob@example.org"}))
	h.ok(cmdLdapSettings("example", validLdapSearch()))
	h.fails(codes.NotFound, cmdProvisionLdap(&metadatapb.ProvisionLdapAccountRequest{Email: "bob@nowhere.org"}))
	storage := uint64(5000)
	got := h.ok(cmdProvisionLdap(&metadatapb.ProvisionLdapAccountRequest{
		Email: "Bob@example.org", SetStorage: true, StorageBytes: &storage,
		Aliases: []string{"robert@example.org", "alice@example.org", "bob2@other.org", "not an address"},
	})).GetAccount()
	if got.GetEmail() != "bob@example.org" || got.GetTenant() != "example" {
		t.Fatalf("provisioned: %v", got)
	}
	v := h.f.view()
	rec := &metadatapb.AccountRecord{}
	if _, err := getProto(v.r, accountKey("bob@example.org"), rec); err != nil || rec.GetPasswordHash() != "" {
		t.Fatalf("account record: %v, %v", rec, err)
	}
	limits := &metadatapb.QuotaLimits{}
	if _, err := getProto(v.r, quotaKey(prefixQuotaLimits, quotaAccount, "bob@example.org"), limits); err != nil || limits.GetStorageBytes() != 5000 {
		t.Fatalf("limits: %v, %v", limits, err)
	}
	v.close()
	if n := h.keysWith(prefixAlias); n != 1 {
		t.Fatalf("aliases: %d, want only robert@example.org", n)
	}
	// Again, with no limit: the account stays, the limit goes.
	h.ok(cmdProvisionLdap(&metadatapb.ProvisionLdapAccountRequest{Email: "bob@example.org", SetStorage: true}))
	v = h.f.view()
	defer v.close()
	if found, _ := getProto(v.r, quotaKey(prefixQuotaLimits, quotaAccount, "bob@example.org"), &metadatapb.QuotaLimits{}); found {
		t.Fatal("the storage limit was not removed")
	}
}
