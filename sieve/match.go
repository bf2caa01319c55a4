package sieve

import (
	"strconv"
	"strings"
)

// Match types, comparators and relational matching (RFC 5228 2.7, RFC 4790,
// RFC 5231).

type matchType uint8

const (
	matchIs matchType = iota
	matchContains
	matchMatches
	matchCount // RFC 5231 4.1
	matchValue // RFC 5231 4.2
)

type addressPart uint8

const (
	partAll addressPart = iota
	partLocalpart
	partDomain
	partUser   // RFC 5233 4
	partDetail // RFC 5233 4
)

// matchSpec is the checked COMPARATOR, MATCH-TYPE and ADDRESS-PART of a test.
type matchSpec struct {
	typ  matchType
	rel  string // RFC 5231 5: gt, ge, lt, le, eq, ne
	cmp  *comparator
	part addressPart
}

// comparator is a collation (RFC 4790): an equality, an order and, for
// substring matching, a fold.
type comparator struct {
	name string
	// fold maps a string to the form compared octet by octet; nil for
	// i;ascii-numeric, which has no substring operations (RFC 4790 9.1).
	fold    func(string) string
	compare func(a, b string) int
}

var comparators = map[string]*comparator{
	// RFC 4790 9.3: i;octet compares octets.
	"i;octet": {name: "i;octet", fold: func(s string) string { return s }, compare: strings.Compare},
	// RFC 4790 9.2: i;ascii-casemap folds ASCII letters only.
	"i;ascii-casemap": {name: "i;ascii-casemap", fold: asciiLower, compare: func(a, b string) int {
		return strings.Compare(asciiLower(a), asciiLower(b))
	}},
	// RFC 4790 9.1: i;ascii-numeric compares the leading digits as numbers.
	"i;ascii-numeric": {name: "i;ascii-numeric", compare: compareNumeric},
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// compareNumeric: a string that does not start with a digit is positive
// infinity; leading zeros do not count (RFC 4790 9.1.1).
func compareNumeric(a, b string) int {
	na, infA := numericPrefix(a)
	nb, infB := numericPrefix(b)
	switch {
	case infA && infB:
		return 0
	case infA:
		return 1
	case infB:
		return -1
	}
	if len(na) != len(nb) {
		if len(na) < len(nb) {
			return -1
		}
		return 1
	}
	return strings.Compare(na, nb)
}

func numericPrefix(s string) (string, bool) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 {
		return "", true
	}
	return strings.TrimLeft(s[:i], "0"), false
}

var relations = map[string]func(int) bool{
	"gt": func(c int) bool { return c > 0 },
	"ge": func(c int) bool { return c >= 0 },
	"lt": func(c int) bool { return c < 0 },
	"le": func(c int) bool { return c <= 0 },
	"eq": func(c int) bool { return c == 0 },
	"ne": func(c int) bool { return c != 0 },
}

// checkMatch builds n.match with i;ascii-casemap as the default comparator
// (RFC 5228 2.7.3).
func checkMatch(c *compiler, n *node) error { return checkMatchWith(c, n, "i;ascii-casemap") }

func checkMatchWith(c *compiler, n *node, defaultComparator string) error {
	if err := checkIndex(c, n); err != nil {
		return err
	}
	m := &matchSpec{cmp: comparators[defaultComparator]}
	switch {
	case n.hasTag(":contains"):
		m.typ = matchContains
	case n.hasTag(":matches"):
		m.typ = matchMatches
	case n.hasTag(":count"), n.hasTag(":value"):
		m.typ = matchValue
		v := n.tags[":value"]
		if n.hasTag(":count") {
			m.typ, v = matchCount, n.tags[":count"]
		}
		rel, _ := constString(v)
		m.rel = strings.ToLower(rel)
		if relations[m.rel] == nil {
			// RFC 5231 5: the relation is one of gt ge lt le eq ne.
			return c.errorf(v.pos, "unknown relational match %q", rel)
		}
	}
	if v, ok := n.tags[":comparator"]; ok {
		name, _ := constString(v)
		cmp := comparators[strings.ToLower(name)]
		if cmp == nil {
			return c.errorf(v.pos, "unknown comparator %q", name)
		}
		// RFC 5228 2.7.3: comparators other than the two base ones must be required.
		if cmp.name == "i;ascii-numeric" && !c.requires["comparator-i;ascii-numeric"] {
			return c.errorf(v.pos, "comparator %q needs require \"comparator-%s\"", name, cmp.name)
		}
		m.cmp = cmp
	}
	if m.cmp.fold == nil && (m.typ == matchContains || m.typ == matchMatches) {
		// RFC 4790 9.1: i;ascii-numeric supports equality and ordering only.
		return c.errorf(n.pos, "comparator %s cannot be used with :contains or :matches", m.cmp.name)
	}
	switch {
	case n.hasTag(":localpart"):
		m.part = partLocalpart
	case n.hasTag(":domain"):
		m.part = partDomain
	case n.hasTag(":user"):
		m.part = partUser
	case n.hasTag(":detail"):
		m.part = partDetail
	}
	n.match = m
	return nil
}

// matchValues reports whether any value matches any key (RFC 5228 2.7.1).
// On a successful :matches it returns the wildcard captures of the matching
// pair, the whole value first (RFC 5229 3.2).
func matchValues(m *matchSpec, values, keys []string) (bool, []string) {
	switch m.typ {
	case matchCount:
		// RFC 5231 4.1: the number of values is compared with each key.
		count := strconv.Itoa(len(values))
		for _, k := range keys {
			if relations[m.rel](m.cmp.compare(count, k)) {
				return true, nil
			}
		}
		return false, nil
	case matchValue:
		for _, v := range values {
			for _, k := range keys {
				if relations[m.rel](m.cmp.compare(v, k)) {
					return true, nil
				}
			}
		}
		return false, nil
	}
	for _, v := range values {
		for _, k := range keys {
			switch m.typ {
			case matchIs:
				if m.cmp.compare(v, k) == 0 {
					return true, nil
				}
			case matchContains:
				if strings.Contains(m.cmp.fold(v), m.cmp.fold(k)) {
					return true, nil
				}
			case matchMatches:
				if caps, ok := globMatch(k, v, m.cmp.name == "i;ascii-casemap"); ok {
					return true, append([]string{v}, caps...)
				}
			}
		}
	}
	return false, nil
}

// globElem is one element of a :matches pattern segment: a literal rune or
// "?" (any one character).
type globElem struct {
	r   rune
	any bool
}

// globMatch matches s against a :matches pattern (RFC 5228 2.7.1: "*" is any
// sequence, "?" one character, "\" escapes the next character) and returns
// what each wildcard matched, in pattern order. Each "*" takes the shortest
// text that lets the rest match, the last one the remainder; time is
// O(len(pattern)*len(s)), never exponential.
func globMatch(pattern, s string, fold bool) ([]string, bool) {
	var segs [][]globElem
	var cur []globElem
	escaped := false
	for _, r := range pattern {
		switch {
		case escaped:
			cur = append(cur, globElem{r: r})
			escaped = false
		case r == '\\':
			escaped = true
		case r == '*':
			segs = append(segs, cur)
			cur = nil
		case r == '?':
			cur = append(cur, globElem{any: true})
		default:
			cur = append(cur, globElem{r: r})
		}
	}
	segs = append(segs, cur)
	text := []rune(s)
	eq := func(a, b rune) bool {
		if fold {
			if a >= 'A' && a <= 'Z' {
				a += 'a' - 'A'
			}
			if b >= 'A' && b <= 'Z' {
				b += 'a' - 'A'
			}
		}
		return a == b
	}
	segAt := func(seg []globElem, at int) bool {
		if at < 0 || at+len(seg) > len(text) {
			return false
		}
		for i, e := range seg {
			if !e.any && !eq(e.r, text[at+i]) {
				return false
			}
		}
		return true
	}
	var caps []string
	anyCaps := func(seg []globElem, at int) {
		for i, e := range seg {
			if e.any {
				caps = append(caps, string(text[at+i]))
			}
		}
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(segs) == 1 {
		if len(first) != len(text) || !segAt(first, 0) {
			return nil, false
		}
		anyCaps(first, 0)
		return caps, true
	}
	lastStart := len(text) - len(last)
	if len(first) > lastStart || !segAt(first, 0) || !segAt(last, lastStart) {
		return nil, false
	}
	anyCaps(first, 0)
	pos := len(first)
	for _, seg := range segs[1 : len(segs)-1] {
		found := -1
		for j := pos; j+len(seg) <= lastStart; j++ {
			if segAt(seg, j) {
				found = j
				break
			}
		}
		if found < 0 {
			return nil, false
		}
		caps = append(caps, string(text[pos:found]))
		anyCaps(seg, found)
		pos = found + len(seg)
	}
	caps = append(caps, string(text[pos:lastStart]))
	anyCaps(last, lastStart)
	return caps, true
}
