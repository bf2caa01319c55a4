package migrate_test

import (
	"fmt"

	"github.com/strata-mail/strata/internal/dovecottest"
)

// dovecotPassword is the password of the source Dovecot's users test1 to test9.
const dovecotPassword = "secret"

// startDovecot starts the Debian Dovecot every test of this binary copies from (one per
// binary, TestMain): users test1 to test9, sdbox mail, "." as the hierarchy delimiter,
// the RFC 6154 special-use folders, IMAP with STARTTLS and IMAPS.
func startDovecot(dir string) (*dovecottest.Server, error) {
	var users []dovecottest.User
	for i := 1; i <= 9; i++ {
		users = append(users, dovecottest.User{Name: fmt.Sprintf("test%d", i), Password: dovecotPassword})
	}
	return dovecottest.Start(dir, dovecottest.Options{
		Instance: "strata-migrate-test", Users: users, Separator: ".", SpecialUse: true, TLS: true,
	})
}
