package sieve

import (
	"sort"
	"sync"
)

// The extension registry: every command, test and tag the compiler accepts,
// each with the capability that a script must require to use it. Each
// ext_*.go file registers its own definitions in an init function, the way
// Pigeonhole keeps an extension's commands, tests and validation together.

// argType is what a positional or tag argument must be.
type argType uint8

const (
	typeString     argType = iota // one string (RFC 5228 2.4.2)
	typeStringList                // a string list; a single string is a list of one (RFC 5228 2.4.2.1)
	typeNumber                    // a number (RFC 5228 2.4.1)
)

func (t argType) String() string {
	switch t {
	case typeString:
		return "a string"
	case typeStringList:
		return "a string list"
	}
	return "a number"
}

// tagDef is a tagged argument (RFC 5228 2.6.2) of a command or test.
type tagDef struct {
	name   string // ":copy"
	ext    string // capability that enables it, "" when part of the command's own extension
	hasArg bool
	arg    argType
	group  string // tags of one group exclude each other
	// constant is set when the tag's string argument may not contain variables.
	constant bool
}

// commandDef is a command or test.
type commandDef struct {
	name string
	ext  string // capability that enables it, "" for RFC 5228 base
	test bool
	tags []*tagDef
	args []argType
	// optional is how many positional arguments may be left out; they are
	// the leading ones when optionalFirst is set, else the trailing ones.
	optional      int
	optionalFirst bool
	// tests is 0 for no test argument, 1 for exactly one, -1 for a test list.
	tests int
	block bool
	// check validates what the generic argument check cannot.
	check func(c *compiler, n *node) error
	// run executes a command, or evaluates a test and returns its value.
	run func(r *run, n *node) (bool, error)
}

func (d *commandDef) tag(name string) *tagDef {
	for _, t := range d.tags {
		if t.name == name {
			return t
		}
	}
	return nil
}

var (
	commandDefs  = map[string]*commandDef{}
	testDefs     = map[string]*commandDef{}
	capabilities = map[string]bool{}
	pendingTags  []pendingTag
	resolveOnce  sync.Once
)

type pendingTag struct {
	target string // command or test name
	test   bool
	tags   []*tagDef
}

func registerCapability(names ...string) {
	for _, n := range names {
		capabilities[n] = true
	}
}

func registerCommand(d *commandDef) { commandDefs[d.name] = d }

func registerTest(d *commandDef) {
	d.test = true
	testDefs[d.name] = d
}

// extendCommand adds tags an extension defines on a command of another
// extension (":copy" on redirect, ":flags" on keep); resolved on first use
// since init order across files is alphabetical.
func extendCommand(name string, tags ...*tagDef) {
	pendingTags = append(pendingTags, pendingTag{target: name, tags: tags})
}

func extendTest(name string, tags ...*tagDef) {
	pendingTags = append(pendingTags, pendingTag{target: name, test: true, tags: tags})
}

func resolveRegistry() {
	resolveOnce.Do(func() {
		for _, p := range pendingTags {
			d := commandDefs[p.target]
			if p.test {
				d = testDefs[p.target]
			}
			d.tags = append(d.tags, p.tags...)
		}
		pendingTags = nil
	})
}

// Extensions lists every capability this interpreter implements, sorted: the
// SIEVE capability a ManageSieve server announces (RFC 5804 1.7).
func Extensions() []string {
	out := make([]string, 0, len(capabilities))
	for c := range capabilities {
		if c == "comparator-i;octet" || c == "comparator-i;ascii-casemap" {
			continue // RFC 5228 2.7.3: always available, need not be announced
		}
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Shared tag groups used by many tests (RFC 5228 2.7).
var (
	tagComparator = &tagDef{name: ":comparator", hasArg: true, arg: typeString, group: "comparator", constant: true}
	tagIs         = &tagDef{name: ":is", group: "match"}
	tagContains   = &tagDef{name: ":contains", group: "match"}
	tagMatches    = &tagDef{name: ":matches", group: "match"}
	tagAll        = &tagDef{name: ":all", group: "address-part"}
	tagLocalpart  = &tagDef{name: ":localpart", group: "address-part"}
	tagDomain     = &tagDef{name: ":domain", group: "address-part"}
)

func matchTags() []*tagDef { return []*tagDef{tagComparator, tagIs, tagContains, tagMatches} }

func addressTags() []*tagDef {
	return append(matchTags(), tagAll, tagLocalpart, tagDomain)
}
