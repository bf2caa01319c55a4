package authz

import (
	"maps"
	"slices"

	"github.com/strata-mail/strata/internal/identity"
)

// Rule is a row of the table, for the tests.
type Rule struct{ r rule }

// RuleFor returns the row of a full method name.
func RuleFor(method string) (Rule, bool) {
	r, ok := rules[method]
	return Rule{r}, ok
}

// Methods lists the rows.
func Methods() []string { return sortedMethods() }

// TenantAdmins reports whether tenant admins may call the RPC.
func (r Rule) TenantAdmins() bool { return r.r.callers&identity.TenantAdmin != 0 }

// Fields lists every request field the row names.
func (r Rule) Fields() []string {
	return slices.Concat(r.r.owners, r.r.tenants, r.r.domains, r.r.clusterOnly)
}

// Scope returns the scope fields by what they name: "owner", "tenant", "domain".
func (r Rule) Scope() map[string][]string {
	return maps.Collect(func(yield func(string, []string) bool) {
		_ = yield("owner", r.r.owners) && yield("tenant", r.r.tenants) && yield("domain", r.r.domains)
	})
}
