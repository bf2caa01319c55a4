package metadata

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Delivery (issue 12): what LMTP needs from the replicated state to take a recipient.
//
// Keys (see keys.go):
//
//	'V' tenant                   -> DeliverySettings as the admin set them
//	'a' domain 0x00 local part   -> Alias ("" local part: the domain's catch-all)
//	'b' account 0x00 alias addr  -> empty (the aliases that name an account)
//
// An alias lives in a domain of one tenant and names accounts of that tenant only; it
// goes with its domain (RemoveDomain, DeleteTenant), and a deleted account leaves the
// aliases that named it (an alias left without targets goes too). An alias never has
// the address of an account: AddAlias refuses one, and CreateAccount refuses the address
// of an alias, so resolution never has two answers for one address.
const (
	prefixDeliverySettings = 'V'
	prefixAlias            = 'a'
	prefixAliasTarget      = 'b'

	defaultSubaddressDelimiter = "+"
	maxSubaddressDelimiters    = 8
	spamFile                   = "file"
	spamTag                    = "tag"
	spamReject                 = "reject"
	defaultDedupWindow         = 24 * time.Hour
	// maxDedupWindow keeps the remembered appends within the history an account keeps.
	maxDedupWindow             = journalRetention
	defaultSieveMaxScriptBytes = 64 << 10
	maxSieveScriptBytes        = 1 << 20
	defaultSieveMaxScripts     = 32
	maxSieveScripts            = 1024
	maxAliasTargets            = 64

	viaAccount  = "account"
	viaAlias    = "alias"
	viaCatchAll = "catchall"
)

func deliverySettingsKey(tenant string) []byte { return strKey(prefixDeliverySettings, tenant) }

func aliasDomainPrefix(domain string) []byte { return append(strKey(prefixAlias, domain), 0) }

func aliasKey(domain, local string) []byte { return append(aliasDomainPrefix(domain), local...) }

func aliasTargetPrefix(account string) []byte {
	return append(strKey(prefixAliasTarget, account), 0)
}

func aliasTargetKey(account, address string) []byte {
	return append(aliasTargetPrefix(account), address...)
}

// checkDeliverySettings refuses settings out of their ranges (metadata.proto
// DeliverySettings).
func checkDeliverySettings(s *metadatapb.DeliverySettings) error {
	if s.SubaddressDelimiter != nil {
		d := s.GetSubaddressDelimiter()
		if len(d) > maxSubaddressDelimiters {
			return errInvalid("subaddress delimiter %q: at most %d characters", d, maxSubaddressDelimiters)
		}
		for i := 0; i < len(d); i++ {
			// RFC 5233 3: the separator is a character of the local part; "@" ends it.
			if d[i] <= 0x20 || d[i] >= 0x7f || d[i] == '@' {
				return errInvalid("subaddress delimiter %q: only printable ASCII characters other than @", d)
			}
		}
	}
	switch s.GetSpamAction() {
	case "", spamFile, spamTag, spamReject:
	default:
		return errInvalid("spam action %q: want file, tag or reject", s.GetSpamAction())
	}
	if math.IsNaN(s.GetSpamRejectScore()) || math.IsInf(s.GetSpamRejectScore(), 0) {
		return errInvalid("spam reject score must be a finite number")
	}
	if time.Duration(s.GetDedupWindowSeconds())*time.Second > maxDedupWindow {
		return errInvalid("dedup window %ds: at most %ds", s.GetDedupWindowSeconds(), int64(maxDedupWindow/time.Second))
	}
	if s.GetSieveMaxScriptBytes() > maxSieveScriptBytes {
		return errInvalid("sieve script size limit %d: at most %d bytes", s.GetSieveMaxScriptBytes(), maxSieveScriptBytes)
	}
	if s.GetSieveMaxScripts() > maxSieveScripts {
		return errInvalid("sieve script count limit %d: at most %d", s.GetSieveMaxScripts(), maxSieveScripts)
	}
	return nil
}

// effectiveSettings fills the defaults into the settings a tenant stored (nil: none).
func effectiveSettings(stored *metadatapb.DeliverySettings) *metadatapb.DeliverySettings {
	s := &metadatapb.DeliverySettings{}
	if stored != nil {
		s = proto.Clone(stored).(*metadatapb.DeliverySettings)
	}
	if s.SubaddressDelimiter == nil {
		s.SubaddressDelimiter = proto.String(defaultSubaddressDelimiter)
	}
	if s.SpamAction == "" {
		s.SpamAction = spamFile
	}
	if s.DedupWindowSeconds == 0 {
		s.DedupWindowSeconds = uint32(defaultDedupWindow / time.Second)
	}
	if s.SieveMaxScriptBytes == 0 {
		s.SieveMaxScriptBytes = defaultSieveMaxScriptBytes
	}
	if s.SieveMaxScripts == 0 {
		s.SieveMaxScripts = defaultSieveMaxScripts
	}
	return s
}

// deliverySettings returns a tenant's settings with the defaults filled in.
func deliverySettings(r reader, tenant string) (*metadatapb.DeliverySettings, error) {
	stored := &metadatapb.DeliverySettings{}
	found, err := getProto(r, deliverySettingsKey(tenant), stored)
	if err != nil {
		return nil, err
	}
	if !found {
		stored = nil
	}
	return effectiveSettings(stored), nil
}

func (c *cmdCtx) setDeliverySettings(req *metadatapb.SetDeliverySettingsRequest) (*metadatapb.CommandResult, error) {
	if _, err := c.loadTenant(req.GetTenant()); err != nil {
		return nil, err
	}
	s := req.GetSettings()
	if s == nil {
		s = &metadatapb.DeliverySettings{}
	}
	if err := checkDeliverySettings(s); err != nil {
		return nil, err
	}
	c.tx.setProto(deliverySettingsKey(req.GetTenant()), s)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_DeliverySettings{DeliverySettings: effectiveSettings(s)}}, nil
}

// parseAliasAddress takes "local@domain" or "@domain" (the catch-all) apart, lower-cased
// like account addresses.
func parseAliasAddress(raw string) (domain, local string, err error) {
	addr := strings.ToLower(strings.TrimSpace(raw))
	if catchAll, isCatchAll := strings.CutPrefix(addr, "@"); isCatchAll {
		d, valid := normalizeDomain(catchAll)
		if !valid {
			return "", "", errInvalid("invalid alias address %q", raw)
		}
		return d, "", nil
	}
	email, valid := NormalizeEmail(addr)
	if !valid {
		return "", "", errInvalid("invalid alias address %q", raw)
	}
	return emailDomain(email), email[:strings.LastIndexByte(email, '@')], nil
}

func aliasAddress(domain, local string) string { return local + "@" + domain }

func (c *cmdCtx) addAlias(req *metadatapb.AddAliasRequest) (*metadatapb.CommandResult, error) {
	domain, local, err := parseAliasAddress(req.GetAddress())
	if err != nil {
		return nil, err
	}
	address := aliasAddress(domain, local)
	tenant, found, err := domainTenant(c.tx, domain)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotFound("no tenant owns domain %q", domain)
	}
	if local != "" {
		if _, isAccount, err := getRaw(c.tx, accountKey(address)); err != nil {
			return nil, err
		} else if isAccount {
			return nil, errExists("%q is an account", address)
		}
	}
	if len(req.GetTargets()) == 0 {
		return nil, errInvalid("alias %q: no target account", address)
	}
	alias := &metadatapb.Alias{}
	if _, err := getProto(c.tx, aliasKey(domain, local), alias); err != nil {
		return nil, err
	}
	alias.Address, alias.Tenant = address, tenant
	for _, raw := range req.GetTargets() {
		target, valid := NormalizeEmail(raw)
		if !valid {
			return nil, errInvalid("alias %q: invalid target %q", address, raw)
		}
		rec, err := c.loadAccount(target)
		if err != nil {
			return nil, err
		}
		if rec.GetAccount().GetTenant() != tenant {
			// No alias delivers into another tenant (DESIGN.md "Security and multi-tenancy").
			return nil, errInvalid("alias %q: %q is not an account of tenant %q", address, target, tenant)
		}
		if !slices.Contains(alias.Targets, target) {
			alias.Targets = append(alias.Targets, target)
			c.tx.mustSet(aliasTargetKey(target, address), nil)
		}
	}
	if len(alias.Targets) > maxAliasTargets {
		return nil, errInvalid("alias %q: at most %d targets", address, maxAliasTargets)
	}
	slices.Sort(alias.Targets)
	c.tx.setProto(aliasKey(domain, local), alias)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Alias{Alias: alias}}, nil
}

func (c *cmdCtx) deleteAlias(req *metadatapb.DeleteAliasRequest) (*metadatapb.CommandResult, error) {
	domain, local, err := parseAliasAddress(req.GetAddress())
	if err != nil {
		return nil, err
	}
	alias := &metadatapb.Alias{}
	if found, err := getProto(c.tx, aliasKey(domain, local), alias); err != nil {
		return nil, err
	} else if !found {
		return nil, errNotFound("alias %q not found", aliasAddress(domain, local))
	}
	remove := alias.GetTargets()
	if len(req.GetTargets()) > 0 {
		remove = nil
		for _, raw := range req.GetTargets() {
			target, _ := NormalizeEmail(raw)
			if !slices.Contains(alias.GetTargets(), target) {
				return nil, errNotFound("%q is not a target of alias %q", raw, alias.GetAddress())
			}
			remove = append(remove, target)
		}
	}
	left, err := c.dropAliasTargets(domain, local, alias, remove)
	if err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_DeleteAlias{DeleteAlias: &metadatapb.DeleteAliasResponse{Alias: left}}}, nil
}

// dropAliasTargets removes targets from alias and writes it back, or deletes it when none
// is left (then it returns nil).
func (c *cmdCtx) dropAliasTargets(domain, local string, alias *metadatapb.Alias, targets []string) (*metadatapb.Alias, error) {
	for _, t := range targets {
		c.tx.mustDelete(aliasTargetKey(t, alias.GetAddress()))
	}
	alias.Targets = slices.DeleteFunc(slices.Clone(alias.GetTargets()), func(t string) bool { return slices.Contains(targets, t) })
	if len(alias.Targets) == 0 {
		c.tx.mustDelete(aliasKey(domain, local))
		return nil, nil
	}
	c.tx.setProto(aliasKey(domain, local), alias)
	return alias, nil
}

// forgetAliasTarget takes a deleted account out of every alias that names it.
func (c *cmdCtx) forgetAliasTarget(account string) error {
	prefix := aliasTargetPrefix(account)
	var addresses []string
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		addresses = append(addresses, string(k[len(prefix):]))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, address := range addresses {
		domain, local, err := parseAliasAddress(address)
		if err != nil {
			return err
		}
		alias := &metadatapb.Alias{}
		if _, err := getProto(c.tx, aliasKey(domain, local), alias); err != nil {
			return err
		}
		if _, err := c.dropAliasTargets(domain, local, alias, []string{account}); err != nil {
			return err
		}
	}
	return nil
}

// forgetDomainAliases deletes the aliases of a domain that leaves its tenant.
func (c *cmdCtx) forgetDomainAliases(domain string) error {
	aliases, err := domainAliases(c.tx, domain)
	if err != nil {
		return err
	}
	for _, a := range aliases {
		_, local, err := parseAliasAddress(a.GetAddress())
		if err != nil {
			return err
		}
		if _, err := c.dropAliasTargets(domain, local, a, a.GetTargets()); err != nil {
			return err
		}
	}
	return nil
}

// domainAliases lists the aliases of a domain, the catch-all first.
func domainAliases(r reader, domain string) ([]*metadatapb.Alias, error) {
	prefix := aliasDomainPrefix(domain)
	var out []*metadatapb.Alias
	err := scan(r, prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		a := &metadatapb.Alias{}
		if err := proto.Unmarshal(v, a); err != nil {
			return false, fmt.Errorf("decode alias %q: %w", k, err)
		}
		out = append(out, a)
		return true, nil
	})
	return out, err
}

// aliasAt returns the alias of (domain, local), if any.
func aliasAt(r reader, domain, local string) (*metadatapb.Alias, bool, error) {
	a := &metadatapb.Alias{}
	found, err := getProto(r, aliasKey(domain, local), a)
	return a, found, err
}

// listAliases lists the aliases of a domain, of a tenant's domains, or all of them.
func (v *view) listAliases(tenant, domain string) ([]*metadatapb.Alias, error) {
	var domains []string
	switch {
	case tenant != "" && domain != "":
		return nil, errInvalid("list aliases: give a tenant or a domain, not both")
	case domain != "":
		d, valid := normalizeDomain(domain)
		if !valid {
			return nil, errInvalid("invalid domain %q", domain)
		}
		if _, found, err := domainTenant(v.r, d); err != nil {
			return nil, err
		} else if !found {
			return nil, errNotFound("no tenant owns domain %q", d)
		}
		domains = []string{d}
	case tenant != "":
		t := &metadatapb.Tenant{}
		if found, err := getProto(v.r, tenantKey(tenant), t); err != nil {
			return nil, err
		} else if !found {
			return nil, errNotFound("tenant %q not found", tenant)
		}
		domains = slices.Sorted(slices.Values(t.GetDomains()))
	default:
		var out []*metadatapb.Alias
		err := scan(v.r, []byte{prefixAlias}, []byte{prefixAlias + 1}, func(k, val []byte) (bool, error) {
			a := &metadatapb.Alias{}
			if err := proto.Unmarshal(val, a); err != nil {
				return false, fmt.Errorf("decode alias %q: %w", k, err)
			}
			out = append(out, a)
			return true, nil
		})
		return out, err
	}
	var out []*metadatapb.Alias
	for _, d := range domains {
		as, err := domainAliases(v.r, d)
		if err != nil {
			return nil, err
		}
		out = append(out, as...)
	}
	return out, nil
}

// splitSubaddress splits a local part at the first of the delimiter characters (RFC 5233
// 3: user "+" detail). A local part that starts with a delimiter has no user part and is
// not split.
func splitSubaddress(local, delimiters string) (user, detail string, split bool) {
	if delimiters == "" {
		return local, "", false
	}
	i := strings.IndexAny(local, delimiters)
	if i <= 0 {
		return local, "", false
	}
	return local[:i], local[i+1:], true
}

// resolveRecipient resolves an envelope recipient (metadata.proto "delivery"): the exact
// address as an account, then as an alias; then, when the tenant's delimiter splits its
// local part (RFC 5233), the address without the detail likewise; then the domain's
// catch-all. The detail is answered with its case as given; the rest compares without
// case, like account addresses.
func (v *view) resolveRecipient(address string) (*metadatapb.ResolveRecipientResponse, error) {
	raw := strings.TrimSpace(address)
	at := strings.LastIndexByte(raw, '@')
	if at <= 0 {
		return nil, errInvalid("invalid recipient address %q", address)
	}
	email, valid := NormalizeEmail(raw)
	if !valid {
		return nil, errInvalid("invalid recipient address %q", address)
	}
	domain := emailDomain(email)
	tenant, found, err := domainTenant(v.r, domain)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotFound("no tenant owns domain %q", domain)
	}
	settings, err := deliverySettings(v.r, tenant)
	if err != nil {
		return nil, err
	}
	resp := &metadatapb.ResolveRecipientResponse{Tenant: tenant, Settings: settings}
	locals := []struct{ local, detail string }{{local: email[:strings.LastIndexByte(email, '@')]}}
	if user, detail, split := splitSubaddress(raw[:at], settings.GetSubaddressDelimiter()); split {
		locals = append(locals, struct{ local, detail string }{strings.ToLower(user), detail})
	}
	var targets []string
	for _, l := range locals {
		addr := aliasAddress(domain, l.local)
		if _, isAccount, err := getRaw(v.r, accountKey(addr)); err != nil {
			return nil, err
		} else if isAccount {
			targets, resp.Via, resp.Detail = []string{addr}, viaAccount, l.detail
			break
		}
		alias, isAlias, err := aliasAt(v.r, domain, l.local)
		if err != nil {
			return nil, err
		}
		if isAlias {
			targets, resp.Via, resp.Detail = alias.GetTargets(), viaAlias, l.detail
			break
		}
	}
	if targets == nil {
		alias, isCatchAll, err := aliasAt(v.r, domain, "")
		if err != nil {
			return nil, err
		}
		if !isCatchAll {
			return nil, errNotFound("no account, alias or catch-all for %q", address)
		}
		targets, resp.Via = alias.GetTargets(), viaCatchAll
	}
	for _, t := range targets {
		target, found, err := v.resolvedAccount(t)
		if err != nil {
			return nil, err
		}
		if found {
			resp.Targets = append(resp.Targets, target)
		}
	}
	if len(resp.Targets) == 0 {
		return nil, errNotFound("no account for %q", address)
	}
	first := resp.Targets[0]
	resp.Account, resp.Disabled, resp.OverQuota = first.GetAccount(), first.GetDisabled(), first.GetOverQuota()
	return resp, nil
}

// resolvedAccount describes one account a recipient delivers to, with its room under the
// limits of its quota roots (RFC 9208: the account's and its tenant's).
func (v *view) resolvedAccount(email string) (*metadatapb.ResolvedAccount, bool, error) {
	rec, found, err := v.account(email)
	if err != nil || !found {
		return nil, false, err
	}
	out := &metadatapb.ResolvedAccount{Account: email, Disabled: rec.GetAccount().GetDisabled()}
	for _, root := range []struct {
		kind byte
		name string
	}{{quotaAccount, email}, {quotaTenant, rec.GetAccount().GetTenant()}} {
		q, err := quotaRoot(v.r, root.kind, root.name)
		if err != nil {
			return nil, false, err
		}
		lim, used := q.GetLimits(), q.GetUsage()
		if lim.Messages != nil && used.GetMessages() >= lim.GetMessages() {
			out.OverQuota = true
		}
		if lim.StorageBytes != nil {
			left := uint64(0)
			if used.GetStorageBytes() < lim.GetStorageBytes() {
				left = lim.GetStorageBytes() - used.GetStorageBytes()
			}
			if out.StorageAvailable == nil || left < out.GetStorageAvailable() {
				out.StorageAvailable = proto.Uint64(left)
			}
		}
	}
	if out.StorageAvailable != nil && out.GetStorageAvailable() == 0 {
		out.OverQuota = true
	}
	return out, true, nil
}

// The delivery RPCs.

// ResolveRecipient is a linearizable read (or session read) like the other reads: an
// account or alias created before the call is found.
func (s *Service) ResolveRecipient(ctx context.Context, req *metadatapb.ResolveRecipientRequest) (*metadatapb.ResolveRecipientResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	resp, err := v.resolveRecipient(req.GetAddress())
	if err != nil {
		return nil, readStatus(err)
	}
	return resp, nil
}

func (s *Service) SetDeliverySettings(ctx context.Context, req *metadatapb.SetDeliverySettingsRequest) (*metadatapb.DeliverySettings, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetDeliverySettings{SetDeliverySettings: req}}, (*metadatapb.CommandResult).GetDeliverySettings)
}

func (s *Service) GetDeliverySettings(ctx context.Context, req *metadatapb.GetDeliverySettingsRequest) (*metadatapb.DeliverySettings, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	if _, found, err := getRaw(v.r, tenantKey(req.GetTenant())); err != nil {
		return nil, storageStatus(err)
	} else if !found {
		return nil, status.Errorf(codes.NotFound, "tenant %q not found", req.GetTenant())
	}
	settings, err := deliverySettings(v.r, req.GetTenant())
	if err != nil {
		return nil, storageStatus(err)
	}
	return settings, nil
}

func (s *Service) AddAlias(ctx context.Context, req *metadatapb.AddAliasRequest) (*metadatapb.Alias, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_AddAlias{AddAlias: req}}, (*metadatapb.CommandResult).GetAlias)
}

func (s *Service) DeleteAlias(ctx context.Context, req *metadatapb.DeleteAliasRequest) (*metadatapb.DeleteAliasResponse, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_DeleteAlias{DeleteAlias: req}}, (*metadatapb.CommandResult).GetDeleteAlias)
}

func (s *Service) ListAliases(ctx context.Context, req *metadatapb.ListAliasesRequest) (*metadatapb.ListAliasesResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	aliases, err := v.listAliases(req.GetTenant(), req.GetDomain())
	if err != nil {
		return nil, readStatus(err)
	}
	return &metadatapb.ListAliasesResponse{Aliases: aliases}, nil
}
