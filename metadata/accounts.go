package metadata

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// defaultMailboxes are created with every account, subscribed, with their RFC 6154
// special-use attributes.
var defaultMailboxes = []struct{ name, specialUse string }{
	{"INBOX", ""},
	{"Drafts", `\Drafts`},
	{"Sent", `\Sent`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
	{"Archive", `\Archive`},
}

func (c *cmdCtx) createTenant(req *metadatapb.CreateTenantRequest) (*metadatapb.CommandResult, error) {
	name := req.GetName()
	if !validTenantName(name) {
		return nil, errInvalid("invalid tenant name %q", name)
	}
	if _, found, err := getRaw(c.tx, tenantKey(name)); err != nil {
		return nil, err
	} else if found {
		return nil, errExists("tenant %q already exists", name)
	}
	tenant := &metadatapb.Tenant{Name: name}
	for _, d := range req.GetDomains() {
		domain, valid := normalizeDomain(d)
		if !valid {
			return nil, errInvalid("invalid domain %q", d)
		}
		owner, found, err := getRaw(c.tx, domainKey(domain))
		if err != nil {
			return nil, err
		}
		if found {
			return nil, errExists("domain %q already belongs to tenant %q", domain, owner)
		}
		c.tx.mustSet(domainKey(domain), []byte(name))
		tenant.Domains = append(tenant.Domains, domain)
	}
	c.tx.setProto(tenantKey(name), tenant)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Tenant{Tenant: tenant}}, nil
}

// accountTenant returns the tenant of account email, as loadAccount does in its record, but
// picks it off the stored record without decoding the rest: every APPEND charges its
// owner's usage, which needs only the tenant.
func (c *cmdCtx) accountTenant(email string) (string, error) {
	c.tx.keyBuf = appendStrKey(c.tx.keyBuf[:0], prefixAccount, email)
	v, closer, err := c.tx.Get(c.tx.keyBuf)
	if errors.Is(err, pebble.ErrNotFound) {
		return "", errNotFound("account %q not found", email)
	}
	if err != nil {
		return "", fmt.Errorf("get account %q: %w", email, err)
	}
	defer closer.Close()
	account, err := lastBytesField(v, accountRecordAccountField)
	if err != nil {
		return "", fmt.Errorf("decode account %q: %w", email, err)
	}
	tenant, err := lastBytesField(account, accountTenantField)
	if err != nil {
		return "", fmt.Errorf("decode account %q: %w", email, err)
	}
	if !utf8.Valid(tenant) {
		return "", fmt.Errorf("decode account %q: tenant is not UTF-8", email)
	}
	return string(tenant), nil
}

var (
	accountRecordAccountField = fieldNumber(&metadatapb.AccountRecord{}, "account")
	accountTenantField        = fieldNumber(&metadatapb.Account{}, "tenant")
)

// lastBytesField returns the value of the last length-delimited field num of an encoded
// message (nil if there is none): a stored record, written by mustMarshal, holds each field
// once.
func lastBytesField(m []byte, num protowire.Number) ([]byte, error) {
	var value []byte
	for len(m) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(m)
		if tagLen < 0 {
			return nil, protowire.ParseError(tagLen)
		}
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(m[tagLen:])
			if l < 0 {
				return nil, protowire.ParseError(l)
			}
			value, m = v, m[tagLen+l:]
			continue
		}
		l := protowire.ConsumeFieldValue(n, typ, m[tagLen:])
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		m = m[tagLen+l:]
	}
	return value, nil
}

func (c *cmdCtx) loadAccount(email string) (*metadatapb.AccountRecord, error) {
	rec := &metadatapb.AccountRecord{}
	found, err := getProto(c.tx, accountKey(email), rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotFound("account %q not found", email)
	}
	return rec, nil
}

func (c *cmdCtx) createAccount(req *metadatapb.CreateAccountCommand) (*metadatapb.CommandResult, error) {
	email, valid := NormalizeEmail(req.GetEmail())
	if !valid {
		return nil, errInvalid("invalid account address %q", req.GetEmail())
	}
	tenant, found, err := getRaw(c.tx, domainKey(emailDomain(email)))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotFound("no tenant owns domain %q", emailDomain(email))
	}
	if _, found, err := getRaw(c.tx, accountKey(email)); err != nil {
		return nil, err
	} else if found {
		return nil, errExists("account %q already exists", email)
	}
	if _, isAlias, err := aliasAt(c.tx, emailDomain(email), email[:strings.LastIndexByte(email, '@')]); err != nil {
		return nil, err
	} else if isAlias {
		// An address is an account or an alias, never both (delivery.go).
		return nil, errExists("%q is an alias", email)
	}
	account := &metadatapb.Account{Email: email, Tenant: string(tenant), CreatedUnix: c.now / 1e9}
	c.tx.setProto(accountKey(email), &metadatapb.AccountRecord{Account: account, PasswordHash: req.GetPasswordHash(), Scram: req.GetScram()})
	c.tx.mustSet(tenantAccountKey(string(tenant), email), nil)
	for _, m := range defaultMailboxes {
		if _, err := c.newMailbox(email, m.name, m.specialUse, true, nil); err != nil {
			return nil, err
		}
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Account{Account: account}}, nil
}

func (c *cmdCtx) setPassword(req *metadatapb.SetPasswordCommand) (*metadatapb.CommandResult, error) {
	email, _ := NormalizeEmail(req.GetEmail())
	rec, err := c.loadAccount(email)
	if err != nil {
		return nil, err
	}
	rec.PasswordHash = req.GetPasswordHash()
	rec.Scram = req.GetScram() // derived from the same password (credentials.go)
	c.tx.setProto(accountKey(email), rec)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Account{Account: rec.GetAccount()}}, nil
}

// deleteAccount removes the account, all its mailboxes and messages, the ACL entries that
// name it, its private \Seen records, annotations and thread index, its place in aliases
// (delivery.go), its dedup records (dedup.go), its Sieve
// scripts (sieve.go), its delivery marks (marks.go), and releases its blob references.
func (c *cmdCtx) deleteAccount(req *metadatapb.DeleteAccountRequest) (*metadatapb.CommandResult, error) {
	email, _ := NormalizeEmail(req.GetEmail())
	rec, err := c.loadAccount(email)
	if err != nil {
		return nil, err
	}
	if err := c.forgetAccountQuota(email); err != nil {
		return nil, err
	}
	if err := c.removeGrantsTo(rec.GetAccount().GetTenant(), email); err != nil {
		return nil, err
	}
	if err := c.forgetReader(email); err != nil {
		return nil, err
	}
	if err := c.forgetAnnotator(email, rec.GetAccount().GetTenant()); err != nil {
		return nil, err
	}
	if err := c.forgetThreads(email); err != nil {
		return nil, err
	}
	if err := c.forgetAliasTarget(email); err != nil {
		return nil, err
	}
	if err := c.forgetDedup(email); err != nil {
		return nil, err
	}
	if err := c.forgetSieveScripts(email); err != nil {
		return nil, err
	}
	if err := c.forgetMarks(email); err != nil {
		return nil, err
	}
	names, err := c.mailboxNames(email, "")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		ms, err := c.loadMailbox(email, n.id)
		if err != nil {
			return nil, err
		}
		if err := c.destroyMailbox(ms); err != nil {
			return nil, err
		}
		c.tx.mustDelete(mailboxNameKey(email, n.name))
	}
	subscribed, err := subscriptions(c.tx, email)
	if err != nil {
		return nil, err
	}
	for _, name := range subscribed {
		c.tx.mustDelete(subscriptionKey(email, name))
	}
	c.tx.mustDelete(accountKey(email))
	c.tx.mustDelete(tenantAccountKey(rec.GetAccount().GetTenant(), email))
	c.dropAnnotationUsage(email)
	return okResult(), nil
}
