package ldapauth_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/strata-mail/strata/frontend/ldapauth"
)

// FuzzLoginEscaping: whatever the login name, the filter sent is a valid RFC 4515 filter
// whose uid assertion is the name itself (no wildcard, no added term), and the DN built is a
// valid RFC 4514 DN whose first attribute value is the name itself.
func FuzzLoginEscaping(f *testing.F) {
	for _, seed := range []string{"alice", "*", "*)(uid=*", "admin)(|(uid=*", `a\2a`, "a,ou=x", "a+cn=b", " lead", "trail ", "#x", "{user}", "é"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, local string) {
		if !utf8.ValidString(local) || strings.ContainsFunc(local, unicode.IsControl) {
			return // the Source takes no such name for an address (splitAddress)
		}
		filter := ldapauth.FillFilter("(&(objectClass=inetOrgPerson)(uid={user}))", local, local+"@example.org")
		packet, err := ldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("name %q made filter %q: %v", local, filter, err)
		}
		and := packet.Children
		if len(and) != 2 || len(and[1].Children) != 2 {
			t.Fatalf("name %q changed the filter's structure: %q", local, filter)
		}
		if got := and[1].Children[1].Data.String(); got != local || packet.Tag != ldap.FilterAnd || and[1].Tag != ldap.FilterEqualityMatch {
			t.Fatalf("name %q: the filter %q asserts uid=%q", local, filter, got)
		}
		if local == "" {
			return
		}
		dn, err := ldap.ParseDN(ldapauth.FillDN("uid={user},ou=people,dc=example,dc=org", local, ""))
		if err != nil {
			t.Fatalf("name %q made an invalid DN: %v", local, err)
		}
		if len(dn.RDNs) != 4 || len(dn.RDNs[0].Attributes) != 1 || dn.RDNs[0].Attributes[0].Value != local {
			t.Fatalf("name %q changed the DN: %v", local, dn)
		}
	})
}
