package auth

import (
	"crypto/sha256"
	"time"
)

// SetClock makes c read the time from now (tests of the TTL).
func SetClock(c *Cache, now func() time.Time) { c.now = now }

// KeyOf is c's entry key of email and password.
func KeyOf(c *Cache, email, password string) [sha256.Size]byte { return c.key(email, password) }
