package message

import (
	"net/mail"
	"strings"
	"time"
)

// canonicalDateLayout is the form RFC 5322 3.3 recommends and nearly every sender writes
// (time.RFC1123Z, with a day of one or two digits): the first of net/mail's layouts that
// begins with a day of the week.
const canonicalDateLayout = "Mon, 2 Jan 2006 15:04:05 -0700"

// ParseDate parses a Date field (RFC 5322 3.3) as net/mail.ParseDate does, with the same
// answer for every input. A field in the canonical form takes one time.Parse instead of
// ParseDate's 25: ParseDate tries its 24 layouts without a day of the week first, each
// failing with an allocated error before the canonical one matches (issue 14: 13 µs of
// every APPEND's parse, in SortKeys).
func ParseDate(date string) (time.Time, error) {
	if canonicalShape(date) {
		if t, err := time.Parse(canonicalDateLayout, date); err == nil {
			return t, nil
		}
	}
	return mail.ParseDate(date)
}

// canonicalShape says whether net/mail.ParseDate hands date to its layouts whole: no CR or
// LF (it removes CRLF pairs), no leading space or tab (it trims them), and the first '+'
// or '-' starts the last five bytes (it cuts the date after the numeric zone and reads a
// comment from the rest). For such a date ParseDate's first layout that parses it is
// canonicalDateLayout whenever that one parses it: every layout before it begins with the
// day of the month, a digit, where canonicalDateLayout begins with a day name.
func canonicalShape(date string) bool {
	if date == "" || date[0] == ' ' || date[0] == '\t' || strings.ContainsAny(date, "\r\n") {
		return false
	}
	return strings.IndexAny(date, "+-") == len(date)-5
}
