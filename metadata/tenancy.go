package metadata

import (
	"strings"
)

// OwnerTenant answers the tenant of what a request names as an account, an alias address
// ("local@domain", "@domain") or a mailbox owner ("tenant:NAME"), with the normalisation
// the handlers apply, so that the authorization of admin calls (internal/authz) scopes a
// tenant administrator by the same name the call will act on. found is false when nothing
// owns the name. It reads this node's state as applied: a domain moves to another tenant
// only while no account uses it, and a call that races such a move fails in the FSM.
func (s *Service) OwnerTenant(owner string) (tenant string, found bool, err error) {
	if t, isTenant := cutTenantOwner(owner); isTenant {
		return t, validTenantName(t), nil
	}
	addr := strings.ToLower(strings.TrimSpace(owner))
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", false, nil
	}
	return s.DomainTenant(addr[at+1:])
}

// DomainTenant answers the tenant owning a domain (see OwnerTenant).
func (s *Service) DomainTenant(domain string) (tenant string, found bool, err error) {
	d, valid := normalizeDomain(domain)
	if !valid {
		return "", false, nil
	}
	v := s.fsm.view()
	defer v.close()
	return domainTenant(v.r, d)
}
