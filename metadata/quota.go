package metadata

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Quotas (RFC 9208): every account and every tenant is a quota root with optional
// limits on STORAGE (octets of RFC822.SIZE) and MESSAGE (count). Usage is counted
// exactly by the commands that add or remove messages, in the same command, so
// concurrent appends from any number of frontends are serialised by the log and
// the limit is never overshot.
//
// Keys (see keys.go):
//
//	'L' 'a' email   -> QuotaLimits of the account
//	'L' 't' tenant  -> QuotaLimits of the tenant
//	'W' 'a' email   -> QuotaUsage of the account
//	'W' 't' tenant  -> QuotaUsage of the tenant
//
// A missing usage record (a store written before quotas were counted) is computed
// from the mailbox counters, which every command keeps exact (doc.go: Counters).
// Mailbox records are written back only when a command finishes (apply.go), so a
// command that charges usage before it renames or deletes mailbox names computes
// the usage as of before the command.
const (
	prefixQuotaLimits = 'L'
	prefixQuotaUsage  = 'W'
	quotaAccount      = 'a'
	quotaTenant       = 't'
)

func quotaKey(prefix, kind byte, name string) []byte {
	return appendQuotaKey(make([]byte, 0, 2+len(name)), prefix, kind, name)
}

func appendQuotaKey(k []byte, prefix, kind byte, name string) []byte {
	return append(append(k, prefix, kind), name...)
}

func newQuotaUsage() *metadatapb.QuotaUsage   { return &metadatapb.QuotaUsage{} }
func newQuotaLimits() *metadatapb.QuotaLimits { return &metadatapb.QuotaLimits{} }

// errOverQuota refuses a command that would exceed a quota limit; the frontend
// answers it with NO [OVERQUOTA] (RFC 9208 4.3).
func errOverQuota(format string, args ...any) error {
	return newCmdError(codes.ResourceExhausted, format, args...)
}

// accountUsage returns the stored usage of an account or computes it from its
// mailboxes.
func accountUsage(r reader, email string) (*metadatapb.QuotaUsage, error) {
	u := &metadatapb.QuotaUsage{}
	found, err := getProto(r, quotaKey(prefixQuotaUsage, quotaAccount, email), u)
	if err != nil || found {
		return u, err
	}
	names, err := listMailboxNames(r, email, mailboxNamesPrefix(email))
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		rec := &metadatapb.MailboxRecord{}
		if found, err := getProto(r, mailboxKey(n.id), rec); err != nil {
			return nil, err
		} else if found {
			u.Messages += uint64(rec.GetMailbox().GetMessages())
			u.StorageBytes += rec.GetMailbox().GetSize()
		}
	}
	return u, nil
}

// tenantUsage returns the stored usage of a tenant or the sum of its accounts'.
func tenantUsage(r reader, tenant string) (*metadatapb.QuotaUsage, error) {
	u := &metadatapb.QuotaUsage{}
	found, err := getProto(r, quotaKey(prefixQuotaUsage, quotaTenant, tenant), u)
	if err != nil || found {
		return u, err
	}
	emails, err := tenantAccounts(r, tenant)
	if err != nil {
		return nil, err
	}
	// The tenant's shared mailboxes count toward its root only (acl.go).
	for _, e := range append(emails, tenantOwner(tenant)) {
		au, err := accountUsage(r, e)
		if err != nil {
			return nil, err
		}
		u.Messages += au.GetMessages()
		u.StorageBytes += au.GetStorageBytes()
	}
	return u, nil
}

// tenantAccounts lists the emails of a tenant's accounts, sorted.
func tenantAccounts(r reader, tenant string) ([]string, error) {
	prefix := tenantAccountsPrefix(tenant)
	var emails []string
	err := scan(r, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		emails = append(emails, string(k[len(prefix):]))
		return true, nil
	})
	return emails, err
}

func quotaLimits(r reader, kind byte, name string) (*metadatapb.QuotaLimits, error) {
	l := &metadatapb.QuotaLimits{}
	_, err := getProto(r, quotaKey(prefixQuotaLimits, kind, name), l)
	return l, err
}

// addDelta returns v+d, never below zero.
func addDelta(v uint64, d int64) uint64 {
	if d < 0 && uint64(-d) > v {
		return 0
	}
	return uint64(int64(v) + d)
}

// overLimit reports whether adding d to used exceeds limit; only growth is refused,
// so that a root over a lowered limit can still shrink (RFC 9208 4.3).
func overLimit(used uint64, d int64, limit *uint64) bool {
	return d > 0 && limit != nil && used+uint64(d) > *limit
}

// chargeUsage adds dMessages and dBytes to the usage of a mailbox owner's roots, refusing
// with ResourceExhausted if a growing resource would exceed a limit of any root: the
// account's and its tenant's, or only the tenant's for the tenant's shared mailboxes
// (owner "tenant:NAME"). All usages are read before any is written.
func (c *cmdCtx) chargeUsage(owner string, dMessages, dBytes int64) error {
	if dMessages == 0 && dBytes == 0 {
		return nil
	}
	type root struct {
		kind  byte
		name  string
		key   []byte
		usage *metadatapb.QuotaUsage
	}
	var rootsBuf [2]root
	roots := rootsBuf[:0]
	tenant, isTenant := cutTenantOwner(owner)
	if !isTenant {
		var err error
		if tenant, err = c.accountTenant(owner); err != nil {
			return err
		}
		key, au, err := c.takeUsage(quotaAccount, owner)
		if err != nil {
			return err
		}
		roots = append(roots, root{quotaAccount, owner, key, au})
	}
	key, tu, err := c.takeUsage(quotaTenant, tenant)
	if err != nil {
		return err
	}
	roots = append(roots, root{quotaTenant, tenant, key, tu})
	for _, root := range roots {
		c.tx.keyBuf = appendQuotaKey(c.tx.keyBuf[:0], prefixQuotaLimits, root.kind, root.name)
		lim, err := peekProto(c.tx, c.tx.keyBuf, newQuotaLimits)
		if err != nil {
			return err
		}
		what := "account"
		if root.kind == quotaTenant {
			what = "tenant"
		}
		if overLimit(root.usage.GetMessages(), dMessages, lim.Messages) {
			return errOverQuota("quota exceeded: %s %s MESSAGE limit %d", what, root.name, lim.GetMessages())
		}
		if overLimit(root.usage.GetStorageBytes(), dBytes, lim.StorageBytes) {
			return errOverQuota("quota exceeded: %s %s STORAGE limit %d bytes", what, root.name, lim.GetStorageBytes())
		}
	}
	for _, root := range roots {
		root.usage.Messages = addDelta(root.usage.GetMessages(), dMessages)
		root.usage.StorageBytes = addDelta(root.usage.GetStorageBytes(), dBytes)
		c.tx.keepProto(root.key, root.usage)
	}
	return nil
}

// takeUsage returns the key and the usage of a quota root, which the caller owns
// (takeProto) and writes back with keepProto.
func (c *cmdCtx) takeUsage(kind byte, name string) ([]byte, *metadatapb.QuotaUsage, error) {
	key := appendQuotaKey(c.tx.alloc(2+len(name)), prefixQuotaUsage, kind, name)
	u, found, err := takeProto(c.tx, key, newQuotaUsage)
	if err != nil || found {
		return key, u, err
	}
	if kind == quotaAccount {
		u, err = accountUsage(c.tx, name)
	} else {
		u, err = tenantUsage(c.tx, name)
	}
	return key, u, err
}

// forgetAccountQuota removes an account's quota records and its usage from its
// tenant's; deleteAccount calls it before it removes any mailbox.
func (c *cmdCtx) forgetAccountQuota(email string) error {
	au, err := accountUsage(c.tx, email)
	if err != nil {
		return err
	}
	if err := c.chargeUsage(email, -int64(au.GetMessages()), -int64(au.GetStorageBytes())); err != nil {
		return err
	}
	c.tx.mustDelete(quotaKey(prefixQuotaUsage, quotaAccount, email))
	c.tx.mustDelete(quotaKey(prefixQuotaLimits, quotaAccount, email))
	return nil
}

// quotaRoot reads one root with its limits and usage.
func quotaRoot(r reader, kind byte, name string) (*metadatapb.QuotaRoot, error) {
	lim, err := quotaLimits(r, kind, name)
	if err != nil {
		return nil, err
	}
	root := &metadatapb.QuotaRoot{Limits: lim}
	if kind == quotaAccount {
		root.Account = name
		root.Usage, err = accountUsage(r, name)
	} else {
		root.Tenant = name
		root.Usage, err = tenantUsage(r, name)
	}
	if err != nil {
		return nil, err
	}
	return root, nil
}

// setQuota sets or removes the limits of an account or tenant root.
func (c *cmdCtx) setQuota(req *metadatapb.SetQuotaRequest) (*metadatapb.CommandResult, error) {
	var kind byte
	var name string
	switch {
	case req.GetAccount() != "" && req.GetTenant() != "":
		return nil, errInvalid("set quota: give an account or a tenant, not both")
	case req.GetAccount() != "":
		kind, name = quotaAccount, req.GetAccount()
		rec, err := c.loadAccount(name)
		if err != nil {
			return nil, err
		}
		if err := c.checkQuotaSetter(req.GetUser(), rec.GetAccount().GetTenant()); err != nil {
			return nil, err
		}
	case req.GetUser() != "":
		return nil, newCmdError(codes.PermissionDenied, "permission denied: a tenant's quota is set by the provider")
	case req.GetTenant() != "":
		kind, name = quotaTenant, req.GetTenant()
		if _, found, err := getRaw(c.tx, tenantKey(name)); err != nil {
			return nil, err
		} else if !found {
			return nil, errNotFound("tenant %q not found", name)
		}
	default:
		return nil, errInvalid("set quota: no account or tenant")
	}
	lim := req.GetLimits()
	if lim == nil || (lim.StorageBytes == nil && lim.Messages == nil) {
		c.tx.mustDelete(quotaKey(prefixQuotaLimits, kind, name))
	} else {
		c.tx.setProto(quotaKey(prefixQuotaLimits, kind, name), lim)
	}
	root, err := quotaRoot(c.tx, kind, name)
	if err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Quota{Quota: root}}, nil
}

// deleteTenant removes a tenant, its domains, their aliases, its delivery and OAuth settings, global
// Sieve scripts and quota records; with force it first
// deletes every account of the tenant (deleteAccount), else it refuses while the
// tenant has accounts.
func (c *cmdCtx) deleteTenant(req *metadatapb.DeleteTenantRequest) (*metadatapb.CommandResult, error) {
	name := req.GetName()
	tenant := &metadatapb.Tenant{}
	if found, err := getProto(c.tx, tenantKey(name), tenant); err != nil {
		return nil, err
	} else if !found {
		return nil, errNotFound("tenant %q not found", name)
	}
	emails, err := tenantAccounts(c.tx, name)
	if err != nil {
		return nil, err
	}
	if len(emails) > 0 && !req.GetForce() {
		return nil, errPrecondition("tenant %q has %d accounts; delete them first or force", name, len(emails))
	}
	for _, e := range emails {
		if _, err := c.deleteAccount(&metadatapb.DeleteAccountRequest{Email: e}); err != nil {
			return nil, fmt.Errorf("delete tenant %q: %w", name, err)
		}
	}
	// The tenant's shared mailboxes go with it, and their thread index.
	shared, err := c.mailboxNames(tenantOwner(name), "")
	if err != nil {
		return nil, err
	}
	if err := c.forgetThreads(tenantOwner(name)); err != nil {
		return nil, err
	}
	if err := c.forgetDedup(tenantOwner(name)); err != nil {
		return nil, err
	}
	if err := c.forgetSieveScripts(tenantOwner(name)); err != nil {
		return nil, err
	}
	for _, n := range shared {
		ms, err := c.loadMailbox(tenantOwner(name), n.id)
		if err != nil {
			return nil, err
		}
		if err := c.destroyMailbox(ms); err != nil {
			return nil, err
		}
		c.tx.mustDelete(mailboxNameKey(tenantOwner(name), n.name))
	}
	if err := c.forgetServerAnnotations(name); err != nil {
		return nil, err
	}
	c.dropAnnotationUsage(tenantOwner(name))
	for _, d := range tenant.GetDomains() {
		if err := c.forgetDomainAliases(d); err != nil {
			return nil, err
		}
		c.tx.mustDelete(domainKey(d))
	}
	c.tx.mustDelete(deliverySettingsKey(name))
	if err := c.forgetOAuthSettings(name); err != nil {
		return nil, err
	}
	c.tx.mustDelete(ldapSettingsKey(name))
	c.tx.mustDelete(tenantKey(name))
	c.tx.mustDelete(quotaKey(prefixQuotaLimits, quotaTenant, name))
	c.tx.mustDelete(quotaKey(prefixQuotaUsage, quotaTenant, name))
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_DeleteTenant{
		DeleteTenant: &metadatapb.DeleteTenantResponse{DeletedAccounts: emails},
	}}, nil
}

func (c *cmdCtx) loadTenant(name string) (*metadatapb.Tenant, error) {
	tenant := &metadatapb.Tenant{}
	found, err := getProto(c.tx, tenantKey(name), tenant)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotFound("tenant %q not found", name)
	}
	return tenant, nil
}

// addDomain gives a tenant one more domain; a domain belongs to one tenant.
func (c *cmdCtx) addDomain(req *metadatapb.AddDomainRequest) (*metadatapb.CommandResult, error) {
	tenant, err := c.loadTenant(req.GetTenant())
	if err != nil {
		return nil, err
	}
	domain, valid := normalizeDomain(req.GetDomain())
	if !valid {
		return nil, errInvalid("invalid domain %q", req.GetDomain())
	}
	if owner, found, err := getRaw(c.tx, domainKey(domain)); err != nil {
		return nil, err
	} else if found {
		return nil, errExists("domain %q already belongs to tenant %q", domain, owner)
	}
	c.tx.mustSet(domainKey(domain), []byte(tenant.GetName()))
	tenant.Domains = append(tenant.Domains, domain)
	c.tx.setProto(tenantKey(tenant.GetName()), tenant)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Tenant{Tenant: tenant}}, nil
}

// removeDomain takes a domain from its tenant, refused while an account uses it; its
// aliases go with it (delivery.go).
func (c *cmdCtx) removeDomain(req *metadatapb.RemoveDomainRequest) (*metadatapb.CommandResult, error) {
	tenant, err := c.loadTenant(req.GetTenant())
	if err != nil {
		return nil, err
	}
	domain, _ := normalizeDomain(req.GetDomain())
	owner, found, err := getRaw(c.tx, domainKey(domain))
	if err != nil {
		return nil, err
	}
	if !found || string(owner) != tenant.GetName() {
		return nil, errNotFound("tenant %q does not own domain %q", tenant.GetName(), req.GetDomain())
	}
	emails, err := tenantAccounts(c.tx, tenant.GetName())
	if err != nil {
		return nil, err
	}
	users := 0
	for _, e := range emails {
		if emailDomain(e) == domain {
			users++
		}
	}
	if users > 0 {
		return nil, errPrecondition("domain %q has %d accounts; delete them first", domain, users)
	}
	if err := c.forgetDomainAliases(domain); err != nil {
		return nil, err
	}
	c.tx.mustDelete(domainKey(domain))
	kept := tenant.Domains[:0]
	for _, d := range tenant.GetDomains() {
		if d != domain {
			kept = append(kept, d)
		}
	}
	tenant.Domains = kept
	c.tx.setProto(tenantKey(tenant.GetName()), tenant)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Tenant{Tenant: tenant}}, nil
}

// checkQuotaSetter lets an acting user (IMAP SETQUOTA, RFC 9208 4.1.3) set the root of an
// account of tenant only if the user is an enabled tenant admin of that tenant; an admin
// call (no user) may set any root.
func (c *cmdCtx) checkQuotaSetter(user, tenant string) error {
	if user == "" {
		return nil
	}
	rec := &metadatapb.AccountRecord{}
	found, err := getProto(c.tx, accountKey(user), rec)
	if err != nil {
		return err
	}
	acct := rec.GetAccount()
	if !found {
		return newCmdError(codes.PermissionDenied, "permission denied: %q is no account", user)
	}
	if !acct.GetTenantAdmin() || acct.GetDisabled() || acct.GetTenant() != tenant {
		return newCmdError(codes.PermissionDenied, "permission denied: quotas are set by the tenant's administrators")
	}
	return nil
}

// setAccountTenantAdmin flags or unflags an account as its tenant's administrator in the
// mail protocols (IMAP SETQUOTA).
func (c *cmdCtx) setAccountTenantAdmin(req *metadatapb.SetAccountTenantAdminRequest) (*metadatapb.CommandResult, error) {
	return c.setAccountFlag(req.GetEmail(), func(a *metadatapb.Account) *bool { return &a.TenantAdmin }, req.GetTenantAdmin())
}

// setAccountDisabled disables or enables an account; Authenticate refuses a
// disabled one and frontends end its sessions (frontend/account.go).
func (c *cmdCtx) setAccountDisabled(req *metadatapb.SetAccountDisabledRequest) (*metadatapb.CommandResult, error) {
	return c.setAccountFlag(req.GetEmail(), func(a *metadatapb.Account) *bool { return &a.Disabled }, req.GetDisabled())
}

// setAccountFlag sets the boolean field of an account that field points at to value,
// writing the account only when it changes, and answers the account.
func (c *cmdCtx) setAccountFlag(email string, field func(*metadatapb.Account) *bool, value bool) (*metadatapb.CommandResult, error) {
	email, _ = NormalizeEmail(email)
	rec, err := c.loadAccount(email)
	if err != nil {
		return nil, err
	}
	if flag := field(rec.GetAccount()); *flag != value {
		*flag = value
		c.tx.setProto(accountKey(email), rec)
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Account{Account: proto.Clone(rec.GetAccount()).(*metadatapb.Account)}}, nil
}
