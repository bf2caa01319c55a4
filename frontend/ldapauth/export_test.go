package ldapauth

import "github.com/go-ldap/ldap/v3"

// FillFilter is a search filter as the frontend sends it for a login.
func FillFilter(template, local, email string) string {
	return fill(template, local, email, ldap.EscapeFilter)
}
