package sieve

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// variables (RFC 5229): the set command, the string test, "${name}" and
// "${n}" references in strings.

func init() {
	registerCapability("variables")
	registerCommand(&commandDef{
		name: "set", ext: "variables",
		tags: []*tagDef{
			// RFC 5229 4.1: modifiers of one precedence exclude each other.
			{name: ":lower", group: "precedence40"}, {name: ":upper", group: "precedence40"},
			{name: ":lowerfirst", group: "precedence30"}, {name: ":upperfirst", group: "precedence30"},
			{name: ":quotewildcard", group: "precedence20"},
			{name: ":length", group: "precedence10"},
		},
		args:  []argType{typeString, typeString},
		check: checkSet,
		run:   runSet,
	})
	registerTest(&commandDef{
		name: "string", ext: "variables",
		tags:  matchTags(),
		args:  []argType{typeStringList, typeStringList},
		check: checkMatch,
		run:   runString,
	})
}

// sstring is a string argument: a literal, or parts with variable
// references when the script requires variables.
type sstring struct {
	lit   string
	parts []strPart
}

type strPart struct {
	lit   string
	isVar bool
	name  string // lower-cased variable name, "" for a match variable
	num   int    // match variable number
}

func (s *sstring) constant() bool { return s.parts == nil }

// str turns a literal string of the script into an sstring, decoding
// encoded characters and variable references as the required extensions say.
func (c *compiler) str(s string, p Pos, constant bool) (*sstring, error) {
	if c.requires["encoded-character"] {
		var msg string
		if s, msg = decodeEncodedCharacters(s); msg != "" {
			return nil, c.errorf(p, "%s", msg)
		}
	}
	if !c.requires["variables"] {
		return &sstring{lit: s}, nil
	}
	parts := parseVariableRefs(s)
	if parts == nil {
		return &sstring{lit: s}, nil
	}
	if constant {
		return nil, c.errorf(p, "this argument must be a constant string, without variables")
	}
	for _, pt := range parts {
		if pt.isVar && strings.Contains(pt.name, ".") && !strings.HasPrefix(pt.name, "global.") {
			// RFC 5229 3: a reference to an unsupported namespace is an error.
			return nil, c.errorf(p, "unknown variable namespace in ${%s}", pt.name)
		}
	}
	return &sstring{lit: s, parts: parts}, nil
}

// parseVariableRefs splits s at its variable references (RFC 5229 3); nil
// when there are none.
func parseVariableRefs(s string) []strPart {
	var parts []strPart
	found := false
	lit := 0
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) || s[i+1] != '{' {
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			break
		}
		ref := s[i+2 : i+2+end]
		part, ok := variableRef(ref)
		if !ok {
			i += 2
			continue
		}
		if lit < i {
			parts = append(parts, strPart{lit: s[lit:i]})
		}
		parts = append(parts, part)
		found = true
		i += end + 3
		lit = i
	}
	if !found {
		return nil
	}
	if lit < len(s) {
		parts = append(parts, strPart{lit: s[lit:]})
	}
	return parts
}

// variableRef parses the inside of "${...}": a number, or identifiers joined
// by dots (RFC 5229 3: variable-ref).
func variableRef(ref string) (strPart, bool) {
	if ref == "" {
		return strPart{}, false
	}
	if isDigit(ref[0]) {
		for i := 0; i < len(ref); i++ {
			if !isDigit(ref[i]) {
				return strPart{}, false
			}
		}
		n, err := strconv.Atoi(ref)
		if err != nil || n > 9 {
			n = 10 // RFC 5229 3.2: only ${0}..${9} hold values
		}
		return strPart{isVar: true, num: n}, true
	}
	for _, id := range strings.Split(ref, ".") {
		if !isIdentifier(id) {
			return strPart{}, false
		}
	}
	return strPart{isVar: true, name: strings.ToLower(ref)}, true
}

func isIdentifier(s string) bool {
	if s == "" || !(isAlpha(s[0]) || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !(isAlpha(s[i]) || isDigit(s[i]) || s[i] == '_') {
			return false
		}
	}
	return true
}

// checkVariableName checks a constant variable name a command assigns to.
func checkVariableName(c *compiler, v *value) error {
	for _, s := range v.strs {
		if !s.constant() {
			return c.errorf(v.pos, "variable name must be constant")
		}
		name := strings.ToLower(s.lit)
		if strings.HasPrefix(name, "global.") && c.requires["include"] {
			name = strings.TrimPrefix(name, "global.") // RFC 6609 5: the "global" namespace
		}
		if !isIdentifier(name) {
			return c.errorf(v.pos, "invalid variable name %q", s.lit)
		}
	}
	return nil
}

func checkSet(c *compiler, n *node) error { return checkVariableName(c, n.args[0]) }

// runSet assigns a variable, applying modifiers from the highest precedence
// to the lowest (RFC 5229 4.1). The case modifiers change ASCII letters
// only, as Pigeonhole does: RFC 5229 4.1 names no Unicode case mapping,
// and the default comparator, i;ascii-casemap (RFC 4790 9.2), folds ASCII
// letters alone, so :lower output compares as the script expects.
func runSet(r *run, n *node) (bool, error) {
	v := r.expand(n.args[1].strs[0])
	switch {
	case n.hasTag(":lower"):
		v = asciiLower(v)
	case n.hasTag(":upper"):
		v = asciiUpper(v)
	}
	if v != "" {
		switch {
		case n.hasTag(":lowerfirst"):
			v = asciiLower(v[:1]) + v[1:]
		case n.hasTag(":upperfirst"):
			v = asciiUpper(v[:1]) + v[1:]
		}
	}
	if n.hasTag(":quotewildcard") {
		v = quoteWildcard(v)
	}
	if n.hasTag(":length") {
		v = strconv.Itoa(utf8.RuneCountInString(v))
	}
	r.setVariable(n.args[0].strs[0].lit, v)
	return true, nil
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// quoteWildcard escapes the characters :matches treats specially (RFC 5229 4.1.2).
func quoteWildcard(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// runString is the string test (RFC 5229 5): for :count, empty source
// strings are not counted.
func runString(r *run, n *node) (bool, error) {
	sources := r.expandAll(n.args[0])
	if n.match.typ == matchCount {
		nonEmpty := sources[:0:0]
		for _, s := range sources {
			if s != "" {
				nonEmpty = append(nonEmpty, s)
			}
		}
		sources = nonEmpty
	}
	return r.match(n, sources, r.expandAll(n.args[1])), nil
}
