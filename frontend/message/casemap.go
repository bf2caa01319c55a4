package message

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Casemap returns s in the "titlecased canonicalized UTF-8" form of the i;unicode-casemap
// collation (RFC 5051 2): every character mapped to its titlecase, then decomposed, both
// repeated until nothing changes. Two strings are equal under the collation when their
// forms are equal octet for octet, and order as their forms do (RFC 5051 2.1, 2.3), so SORT
// computes the form once at ingest and compares octets. The decomposition is Unicode's
// compatibility decomposition (NFKD), which is what UnicodeData.txt's mappings, canonical
// and tagged, yield applied recursively, and what Dovecot applies; it also decomposes
// Hangul syllables, as Dovecot does. Invalid UTF-8 (which strings of the structure never
// hold) is mapped to U+FFFD.
func Casemap(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s) // the titlecase of an ASCII letter is its upper case
	}
	for range 4 { // a titlecase mapping yields at most one more round of decomposition
		next := norm.NFKD.String(strings.Map(unicode.ToTitle, strings.ToValidUTF8(s, "\uFFFD")))
		if next == s {
			break
		}
		s = next
	}
	return s
}
