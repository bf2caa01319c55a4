package main

import (
	"strings"
	"testing"
)

// TestTenantLdapCommands: `strata tenant ldap set|show|clear` against a running server; the
// service's checks refuse settings that would send a password in the clear.
func TestTenantLdapCommands(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	if out := mustStrata(t, srv, "tenant", "ldap", "show", "acme"); out != "tenant acme: no LDAP (passwords kept by Strata)\n" {
		t.Fatalf("show before set: %q", out)
	}
	out := mustStrata(t, srv, "tenant", "ldap", "set", "acme", "--url", "ldap://ldap.acme.test", "--mode", "search",
		"--bind-dn", "cn=strata,dc=acme,dc=test", "--bind-password-file", "/etc/strata/ldap.pw",
		"--base-dn", "ou=people,dc=acme,dc=test", "--filter", "(&(objectClass=inetOrgPerson)(mail={email}))",
		"--mail-attr", "mail", "--quota-attr", "mailQuota", "--alias-attr", "mailAlias", "--timeout", "2s")
	for _, want := range []string{"mode                search\n", "bind-password-file  /etc/strata/ldap.pw\n", "quota-attr          mailQuota\n", "timeout             2s\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("set = %q, want a line %q", out, want)
		}
	}
	if show := mustStrata(t, srv, "tenant", "ldap", "show", "acme"); show != out {
		t.Fatalf("show = %q, want what set printed %q", show, out)
	}
	for _, bad := range [][]string{
		{"tenant", "ldap", "set", "acme", "--url", "ldap://ldap.acme.test", "--allow-plaintext", "--mode", "bind", "--user-dn", "uid={user},dc=acme,dc=test"},
		{"tenant", "ldap", "set", "acme", "--url", "ldaps://ldap.acme.test", "--mode", "bind", "--user-dn", "uid=alice,dc=acme,dc=test"},
		{"tenant", "ldap", "set", "acme", "--url", "ldaps://ldap.acme.test", "--mode", "search", "--bind-dn", "cn=x", "--bind-password-file", "pw", "--base-dn", "dc=x", "--filter", "(uid={user})"},
		{"tenant", "ldap", "set", "acme", "--url", "ldaps://ldap.acme.test", "--mode", "bind", "--user-dn", "uid={user},dc=acme,dc=test", "--timeout", "2m"},
		{"tenant", "ldap", "show", "ghost"},
	} {
		if out, err := strata(t, srv, bad...); err == nil {
			t.Errorf("strata %s succeeded: %s", strings.Join(bad, " "), out)
		}
	}
	if out := mustStrata(t, srv, "tenant", "ldap", "clear", "acme"); out != "tenant acme: no LDAP (passwords kept by Strata)\n" {
		t.Fatalf("clear: %q", out)
	}
}
