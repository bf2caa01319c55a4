package sieve

import (
	"fmt"
	"strings"
)

// Program is a compiled, checked script. It is immutable and safe for
// concurrent Execute calls.
type Program struct {
	name     string
	commands []*node
	requires map[string]bool
	opts     Options
	warnings []*Error
}

// Warnings lists what Compile found questionable but not wrong, in script
// order (a :zone that is no zone); the script runs regardless. ManageSieve
// can pass them on (RFC 5804 1.3, the WARNINGS response code).
func (p *Program) Warnings() []*Error { return p.warnings }

// Name is the script name given to Compile.
func (p *Program) Name() string { return p.name }

// Requires reports whether the script requires a capability.
func (p *Program) Requires(capability string) bool { return p.requires[capability] }

// Options configure compilation and execution.
type Options struct {
	// Extensions enabled for scripts; nil enables every supported one.
	Extensions []string
	Limits     Limits
}

// node is a checked command or test.
type node struct {
	def   *commandDef
	pos   Pos
	tags  map[string]*value
	args  []*value // one per def.args, nil when an optional one is left out
	tests []*node
	block []*node
	// elses is the elsif/else chain of an if (RFC 5228 3.1).
	elses []*node
	match *matchSpec
}

func (n *node) hasTag(name string) bool { _, ok := n.tags[name]; return ok }

// value is a checked argument: a number or a list of strings.
type value struct {
	pos  Pos
	num  int64
	strs []*sstring
}

// compiler checks a syntax tree against the registry and the script's
// require list.
type compiler struct {
	name     string
	opts     Options
	enabled  map[string]bool
	requires map[string]bool
	warnings []*Error
}

// Compile parses and checks a script. A compile error is an *Error with the
// line and column of the offending token.
func Compile(name string, src []byte, opts Options) (*Program, error) {
	resolveRegistry()
	opts.Limits = opts.Limits.withDefaults()
	if len(src) > opts.Limits.MaxScriptSize {
		return nil, &Error{Script: name, Line: 1, Column: 1, Msg: fmt.Sprintf("script is %d bytes, more than the limit of %d", len(src), opts.Limits.MaxScriptSize)}
	}
	ast, perr := parse(name, src, opts.Limits.MaxNesting)
	if perr != nil {
		return nil, perr
	}
	c := &compiler{name: name, opts: opts, requires: map[string]bool{}}
	if opts.Extensions != nil {
		c.enabled = map[string]bool{}
		for _, e := range opts.Extensions {
			c.enabled[strings.ToLower(e)] = true
		}
	}
	cmds, err := c.block(ast, true)
	if err != nil {
		return nil, err
	}
	return &Program{name: name, commands: cmds, requires: c.requires, opts: opts, warnings: c.warnings}, nil
}

func (c *compiler) errorf(p Pos, format string, args ...any) *Error {
	return &Error{Script: c.name, Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}
}

// warnf records a warning at p; compilation goes on.
func (c *compiler) warnf(p Pos, format string, args ...any) {
	c.warnings = append(c.warnings, c.errorf(p, format, args...))
}

func (c *compiler) has(capability string) bool { return capability == "" || c.requires[capability] }

// block checks a command sequence; top is set for the script's top level,
// the only place require may appear.
func (c *compiler) block(cmds []*astCommand, top bool) ([]*node, error) {
	var out []*node
	requireAllowed := top
	for _, a := range cmds {
		if a.name == "require" {
			// RFC 5228 3.2: require only at the start of a script.
			if !requireAllowed {
				return nil, c.errorf(a.pos, "require must come before any other command")
			}
			if err := c.require(a); err != nil {
				return nil, err
			}
			continue
		}
		requireAllowed = false
		n, err := c.command(a)
		if err != nil {
			return nil, err
		}
		if a.name == "elsif" || a.name == "else" {
			// RFC 5228 3.1: elsif and else follow an if or an elsif.
			if len(out) == 0 || out[len(out)-1].def.name != "if" {
				return nil, c.errorf(a.pos, "%s without a preceding if", a.name)
			}
			prev := out[len(out)-1]
			if len(prev.elses) > 0 && prev.elses[len(prev.elses)-1].def.name == "else" {
				return nil, c.errorf(a.pos, "%s after else", a.name)
			}
			prev.elses = append(prev.elses, n)
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// require checks a require command (RFC 5228 3.2): every capability must be
// known and enabled, else compilation fails.
func (c *compiler) require(a *astCommand) error {
	if len(a.args) != 1 || a.args[0].kind != argStringList || len(a.tests) > 0 || a.hasBlock {
		return c.errorf(a.pos, "require takes one string list")
	}
	for i, s := range a.args[0].strs {
		name := strings.ToLower(s)
		if !capabilities[name] || !c.enabledCapability(name) {
			return c.errorf(a.args[0].strPos[i], "unsupported extension %q", s)
		}
		c.requires[name] = true
		for _, implied := range impliedCapabilities[name] {
			c.requires[implied] = true
		}
	}
	return nil
}

// impliedCapabilities: requiring one capability also grants these.
var impliedCapabilities = map[string][]string{
	"vacation-seconds": {"vacation"}, // RFC 6131 2: vacation-seconds implies vacation
	"spamtestplus":     {"spamtest"}, // RFC 5235 3.2: spamtestplus implies spamtest
}

// enabledCapability reports whether Options.Extensions allows a capability;
// the two base comparators are always there (RFC 5228 2.7.3).
func (c *compiler) enabledCapability(name string) bool {
	if c.enabled == nil || name == "comparator-i;octet" || name == "comparator-i;ascii-casemap" {
		return true
	}
	return c.enabled[name]
}

func (c *compiler) command(a *astCommand) (*node, error) {
	def := commandDefs[a.name]
	if def == nil {
		if testDefs[a.name] != nil {
			return nil, c.errorf(a.pos, "%s is a test, not a command", a.name)
		}
		return nil, c.errorf(a.pos, "unknown command %q", a.name)
	}
	if !c.has(def.ext) {
		return nil, c.errorf(a.pos, "command %s requires the %q extension", a.name, def.ext)
	}
	n, err := c.arguments(def, a.pos, a.args, a.tests)
	if err != nil {
		return nil, err
	}
	if def.block && !a.hasBlock {
		return nil, c.errorf(a.pos, "%s needs a block", a.name)
	}
	if !def.block && a.hasBlock {
		return nil, c.errorf(a.pos, "%s takes no block", a.name)
	}
	if a.hasBlock {
		if n.block, err = c.block(a.block, false); err != nil {
			return nil, err
		}
	}
	if def.check != nil {
		if err := def.check(c, n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (c *compiler) test(a *astTest) (*node, error) {
	def := testDefs[a.name]
	if def == nil {
		if commandDefs[a.name] != nil {
			return nil, c.errorf(a.pos, "%s is a command, not a test", a.name)
		}
		return nil, c.errorf(a.pos, "unknown test %q", a.name)
	}
	if !c.has(def.ext) {
		return nil, c.errorf(a.pos, "test %s requires the %q extension", a.name, def.ext)
	}
	if def.tests == 1 && a.paren {
		return nil, c.errorf(a.pos, "%s takes one test, not a test list", a.name)
	}
	n, err := c.arguments(def, a.pos, a.args, a.tests)
	if err != nil {
		return nil, err
	}
	if def.check != nil {
		if err := def.check(c, n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// arguments checks tagged and positional arguments and the test argument
// against a definition (RFC 5228 2.6).
func (c *compiler) arguments(def *commandDef, pos Pos, args []astArg, tests []*astTest) (*node, error) {
	n := &node{def: def, pos: pos, tags: map[string]*value{}}
	groups := map[string]string{}
	var positional []astArg
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a.kind != argTag {
			positional = append(positional, a)
			continue
		}
		// RFC 5228 2.6.2: tagged arguments precede positional ones.
		if len(positional) > 0 {
			return nil, c.errorf(a.pos, "tag %s after a positional argument", a.tag)
		}
		t := def.tag(a.tag)
		if t == nil || !c.has(t.ext) {
			if t != nil {
				return nil, c.errorf(a.pos, "tag %s of %s requires the %q extension", a.tag, def.name, t.ext)
			}
			return nil, c.errorf(a.pos, "unknown tag %s for %s", a.tag, def.name)
		}
		if _, dup := n.tags[t.name]; dup {
			return nil, c.errorf(a.pos, "tag %s given twice", a.tag)
		}
		if t.group != "" {
			if other, ok := groups[t.group]; ok {
				return nil, c.errorf(a.pos, "tag %s conflicts with %s", a.tag, other)
			}
			groups[t.group] = t.name
		}
		var v *value
		if t.hasArg {
			if i+1 >= len(args) || args[i+1].kind == argTag {
				return nil, c.errorf(a.pos, "tag %s needs %s", a.tag, t.arg)
			}
			i++
			var err error
			if v, err = c.value(args[i], t.arg, t.constant); err != nil {
				return nil, err
			}
		}
		n.tags[t.name] = v
	}
	min := len(def.args) - def.optional
	if len(positional) < min || len(positional) > len(def.args) {
		p := pos
		if len(positional) > len(def.args) {
			p = positional[len(def.args)].pos
		}
		if def.optional == 0 {
			return nil, c.errorf(p, "%s takes %d positional argument(s), got %d", def.name, len(def.args), len(positional))
		}
		return nil, c.errorf(p, "%s takes %d to %d positional arguments, got %d", def.name, min, len(def.args), len(positional))
	}
	n.args = make([]*value, len(def.args))
	skip := 0
	if def.optionalFirst {
		skip = len(def.args) - len(positional)
	}
	for i, a := range positional {
		v, err := c.value(a, def.args[skip+i], false)
		if err != nil {
			return nil, err
		}
		n.args[skip+i] = v
	}
	switch def.tests {
	case 0:
		if len(tests) > 0 {
			return nil, c.errorf(tests[0].pos, "%s takes no test", def.name)
		}
	case 1:
		if len(tests) != 1 {
			return nil, c.errorf(pos, "%s needs one test", def.name)
		}
	default:
		if len(tests) == 0 {
			return nil, c.errorf(pos, "%s needs a test list", def.name)
		}
	}
	for _, t := range tests {
		tn, err := c.test(t)
		if err != nil {
			return nil, err
		}
		n.tests = append(n.tests, tn)
	}
	return n, nil
}

func (c *compiler) value(a astArg, want argType, constant bool) (*value, error) {
	switch want {
	case typeNumber:
		if a.kind != argNumber {
			return nil, c.errorf(a.pos, "expected a number")
		}
		return &value{pos: a.pos, num: a.num}, nil
	case typeString:
		if a.kind != argStringList || a.list {
			return nil, c.errorf(a.pos, "expected a string")
		}
	default:
		if a.kind != argStringList {
			return nil, c.errorf(a.pos, "expected a string list")
		}
	}
	v := &value{pos: a.pos}
	for i, s := range a.strs {
		str, err := c.str(s, a.strPos[i], constant)
		if err != nil {
			return nil, err
		}
		v.strs = append(v.strs, str)
	}
	return v, nil
}

// constString returns the value of a string argument that must be
// constant; ok is false when it holds a variable reference.
func constString(v *value) (string, bool) {
	if v == nil || len(v.strs) == 0 || !v.strs[0].constant() {
		return "", false
	}
	return v.strs[0].lit, true
}

func constStrings(v *value) ([]string, bool) {
	if v == nil {
		return nil, false
	}
	out := make([]string, 0, len(v.strs))
	for _, s := range v.strs {
		if !s.constant() {
			return nil, false
		}
		out = append(out, s.lit)
	}
	return out, true
}
