package ldapauth

import "github.com/go-ldap/ldap/v3"

// FillFilter is a search filter as the frontend sends it for a login.
func FillFilter(template, local, email string) string {
	return fill(template, local, email, ldap.EscapeFilter)
}

// FillDN is a user DN as the frontend builds it for a bind-mode login.
func FillDN(template, local, email string) string {
	return fill(template, local, email, ldap.EscapeDN)
}
