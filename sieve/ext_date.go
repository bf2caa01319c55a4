package sieve

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// date and index (RFC 5260): the date and currentdate tests, :zone and
// :originalzone, and :index/:last on header, address and date.

func init() {
	registerCapability("date", "index")
	zone := &tagDef{name: ":zone", hasArg: true, arg: typeString, group: "zone"}
	registerTest(&commandDef{name: "date", ext: "date",
		tags: append(matchTags(), zone, &tagDef{name: ":originalzone", group: "zone"}),
		args: []argType{typeString, typeString, typeStringList}, check: checkDate, run: runDate})
	registerTest(&commandDef{name: "currentdate", ext: "date", tags: append(matchTags(), zone),
		args: []argType{typeString, typeStringList}, check: checkDate, run: runCurrentdate})
	index := &tagDef{name: ":index", ext: "index", hasArg: true, arg: typeNumber}
	last := &tagDef{name: ":last", ext: "index"}
	for _, t := range []string{"header", "address", "date"} {
		extendTest(t, index, last)
	}
}

// dateParts are the date-part names (RFC 5260 4.2).
var dateParts = map[string]func(t time.Time) string{
	"year":   func(t time.Time) string { return fmt.Sprintf("%04d", t.Year()) },
	"month":  func(t time.Time) string { return fmt.Sprintf("%02d", int(t.Month())) },
	"day":    func(t time.Time) string { return fmt.Sprintf("%02d", t.Day()) },
	"date":   func(t time.Time) string { return t.Format("2006-01-02") },
	"julian": julianDay,
	"hour":   func(t time.Time) string { return fmt.Sprintf("%02d", t.Hour()) },
	"minute": func(t time.Time) string { return fmt.Sprintf("%02d", t.Minute()) },
	"second": func(t time.Time) string { return fmt.Sprintf("%02d", t.Second()) },
	"time":   func(t time.Time) string { return t.Format("15:04:05") },
	// RFC 5260 4.2: iso8601 is an RFC 3339 5.6 date-time, whose time-offset
	// is "Z" / time-numoffset; offset zero is "Z", as Pigeonhole writes it.
	// std11 is an RFC 5322 date.
	"iso8601": func(t time.Time) string { return t.Format(time.RFC3339) },
	"std11":   func(t time.Time) string { return t.Format("Mon, 02 Jan 2006 15:04:05 -0700") },
	"zone":    func(t time.Time) string { return t.Format("-0700") },
	"weekday": func(t time.Time) string { return strconv.Itoa(int(t.Weekday())) },
}

// julianDay is the Modified Julian Day of the date (RFC 5260 4.2: days
// since 1858-11-17).
func julianDay(t time.Time) string {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	epoch := time.Date(1858, 11, 17, 0, 0, 0, 0, time.UTC)
	return strconv.FormatInt(int64(day.Sub(epoch)/(24*time.Hour)), 10)
}

// parseZone reads a "+hhmm" / "-hhmm" time zone (RFC 5260 4.1). Like
// Pigeonhole it takes any four digits as hours and minutes ("+0160" is
// "+0200").
func parseZone(s string) (*time.Location, bool) {
	if len(s) != 5 || (s[0] != '+' && s[0] != '-') {
		return nil, false
	}
	for i := 1; i < 5; i++ {
		if !isDigit(s[i]) {
			return nil, false
		}
	}
	h, _ := strconv.Atoi(s[1:3])
	m, _ := strconv.Atoi(s[3:5])
	off := (h*60 + m) * 60
	if s[0] == '-' {
		off = -off
	}
	return time.FixedZone(s, off), true
}

func checkDate(c *compiler, n *node) error {
	if v, ok := n.tags[":zone"]; ok {
		if z, isConst := constString(v); isConst {
			if _, valid := parseZone(z); !valid {
				// RFC 5260 4.1 defines only "+hhmm"/"-hhmm"; Pigeonhole
				// warns and uses the local zone, as zoneOf does.
				c.warnf(v.pos, "invalid time zone %q: the local zone is used", z)
			}
		}
	}
	part := n.args[len(n.args)-2]
	if p, ok := constString(part); ok && dateParts[strings.ToLower(p)] == nil {
		return c.errorf(part.pos, "unknown date part %q", p)
	}
	return checkMatch(c, n)
}

// checkIndex: :last needs :index, and an index counts from 1 (RFC 5260 6).
func checkIndex(c *compiler, n *node) error {
	if n.hasTag(":last") && !n.hasTag(":index") {
		return c.errorf(n.pos, ":last needs :index")
	}
	if v, ok := n.tags[":index"]; ok && v.num < 1 {
		return c.errorf(v.pos, ":index must be 1 or more")
	}
	return nil
}

// zoneOf chooses the zone a date is shown in (RFC 5260 4.1); a :zone
// that is no zone gives the local zone, as in Pigeonhole.
func (r *run) zoneOf(n *node, original *time.Location) *time.Location {
	if v, ok := n.tags[":zone"]; ok {
		if z, valid := parseZone(r.expand(v.strs[0])); valid {
			return z
		}
	}
	if n.hasTag(":originalzone") && original != nil {
		return original
	}
	return r.in.Location
}

// runDate extracts a date from a header field; a Received field's date
// follows its last ";" (RFC 5260 4.1). A field that is no date does not match.
func runDate(r *run, n *node) (bool, error) {
	name := r.expand(n.args[0].strs[0])
	part := dateParts[strings.ToLower(r.expand(n.args[1].strs[0]))]
	if part == nil {
		return false, nil
	}
	var values []string
	for _, raw := range selectIndex(r, n, r.headerValues(name)) {
		if strings.EqualFold(name, "received") {
			if i := strings.LastIndexByte(raw, ';'); i >= 0 {
				raw = raw[i+1:]
			}
		}
		t, err := mail.ParseDate(strings.TrimSpace(raw))
		if err != nil {
			continue
		}
		values = append(values, part(t.In(r.zoneOf(n, t.Location()))))
	}
	return r.match(n, values, r.expandAll(n.args[2])), nil
}

// runCurrentdate uses Input.Now (RFC 5260 5).
func runCurrentdate(r *run, n *node) (bool, error) {
	part := dateParts[strings.ToLower(r.expand(n.args[0].strs[0]))]
	if part == nil {
		return false, nil
	}
	return r.match(n, []string{part(r.in.Now.In(r.zoneOf(n, nil)))}, r.expandAll(n.args[1])), nil
}
