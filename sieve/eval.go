package sieve

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Envelope is the SMTP envelope of the delivery (RFC 5228 5.4). Addresses
// are addr-specs; From is "" for the null reverse-path.
type Envelope struct {
	From string
	// To is the final recipient: the user's own address after alias
	// expansion, which vacation answers from and counts as the user's.
	To string
	// OrigTo is the original recipient (RFC 3461 4.2 ORCPT, or the RCPT TO
	// the message arrived with) when known; the envelope test's "to"
	// compares it, To when it is "".
	OrigTo string
}

// Score is a spam or virus verdict (RFC 5235). Value is 1 to 10 for spam
// (1 to 5 for viruses); Percent 0 to 100 for spamtestplus.
type Score struct {
	Tested  bool
	Value   int
	Percent int
}

// Input is everything a script may read besides the script itself. The
// interpreter does no I/O: state lives behind the interfaces, time in Now.
type Input struct {
	Message  Message
	Envelope Envelope
	// Now is the time of delivery (currentdate, vacation and duplicate periods).
	Now time.Time
	// Location is the local zone for date tests without :zone; nil uses Now's.
	Location *time.Location
	// SubaddressDelimiter separates user and detail (RFC 5233); "" means "+".
	SubaddressDelimiter string
	// UserAddresses are the recipient's own addresses besides Envelope.To
	// (RFC 5230 4.5, vacation's "addressed to me" check).
	UserAddresses []string
	// Environment holds RFC 5183 items ("domain", "host", "remote-ip", ...).
	Environment map[string]string
	Spam        Score
	Virus       Score
	Mailboxes   Mailboxes
	Vacations   VacationTracker
	Duplicates  DuplicateTracker
	Scripts     ScriptLoader
}

// Mailboxes answers mailbox questions (RFC 5490 mailboxexists, RFC 8579
// specialuse_exists).
type Mailboxes interface {
	MailboxExists(ctx context.Context, name string) (bool, error)
	// SpecialUseExists reports whether mailbox (any mailbox when "") has
	// the special-use attribute ("\Junk").
	SpecialUseExists(ctx context.Context, mailbox, use string) (bool, error)
}

// VacationTracker remembers vacation responses (RFC 5230 4.2). The caller
// records a response after it sends one.
type VacationTracker interface {
	// Responded reports whether a response with handle went to sender
	// after since.
	Responded(ctx context.Context, handle, sender string, since time.Time) (bool, error)
}

// DuplicateTracker remembers unique IDs (RFC 7352). The caller records the
// Result's DuplicateMarks once delivery succeeded (RFC 7352 3).
type DuplicateTracker interface {
	Seen(ctx context.Context, handle, id string, now time.Time) (bool, error)
}

// run is one execution of a program and everything it includes.
type run struct {
	ctx    context.Context
	in     *Input
	limits Limits
	res    *Result
	prog   *Program
	scope  *scope
	// globals are the variables shared across includes (RFC 6609 5).
	globals   map[string]string
	matchVars []string
	// flags is imap4flags' internal variable (RFC 5232 3).
	flags  []string
	header []HeaderField
	steps  int
	// stack holds the scripts being run, for the include recursion check.
	stack    []string
	included map[string]bool
	stopped  bool
	returned bool
	canceled bool // the implicit keep is canceled (RFC 5228 2.10.2)
	// explicitKeep is set by a keep action of the current script (for Runner).
	explicitKeep bool
}

type scope struct {
	vars    map[string]string
	globals map[string]bool // names declared global in this script
}

// Execute runs the program against one message. On a runtime error (a
// limit, an action conflict) it returns the error together with a Result
// that holds only the implicit keep, which the caller should deliver.
func (p *Program) Execute(ctx context.Context, in Input) (*Result, error) {
	r := newRun(ctx, &in, p.opts.Limits)
	err := r.script(p, "personal/"+p.name)
	return r.finish(err)
}

func newRun(ctx context.Context, in *Input, limits Limits) *run {
	if in.SubaddressDelimiter == "" {
		in.SubaddressDelimiter = "+"
	}
	if in.Location == nil {
		in.Location = in.Now.Location()
	}
	r := &run{ctx: ctx, in: in, limits: limits.withDefaults(), res: &Result{}, globals: map[string]string{}, included: map[string]bool{}}
	if in.Message != nil {
		r.header = append([]HeaderField(nil), in.Message.Header()...)
	}
	return r
}

// script runs one script in a fresh variable scope (RFC 6609 3.2: included
// scripts have their own local variables).
func (r *run) script(p *Program, key string) error {
	savedProg, savedScope := r.prog, r.scope
	r.prog = p
	r.scope = &scope{vars: map[string]string{}, globals: map[string]bool{}}
	r.stack = append(r.stack, key)
	err := r.block(p.commands)
	r.stack = r.stack[:len(r.stack)-1]
	r.prog, r.scope = savedProg, savedScope
	r.returned = false
	return err
}

func (r *run) block(cmds []*node) error {
	for _, n := range cmds {
		if r.stopped || r.returned {
			return nil
		}
		if err := r.step(n); err != nil {
			return err
		}
		if _, err := n.def.run(r, n); err != nil {
			return err
		}
	}
	return nil
}

// test evaluates a test node.
func (r *run) test(n *node) (bool, error) {
	if err := r.step(n); err != nil {
		return false, err
	}
	return n.def.run(r, n)
}

// step counts one command or test against MaxSteps and checks the context.
func (r *run) step(n *node) error {
	r.steps++
	if r.steps > r.limits.MaxSteps {
		return r.limitError(r.prog, n.pos, "more than %d steps", r.limits.MaxSteps)
	}
	if r.steps%256 == 0 {
		if err := r.ctx.Err(); err != nil {
			return &RuntimeError{Script: r.prog.name, Line: n.pos.Line, Column: n.pos.Column, Msg: err.Error(), Err: err}
		}
	}
	return nil
}

func (r *run) errorf(n *node, format string, args ...any) error {
	return &RuntimeError{Script: r.prog.name, Line: n.pos.Line, Column: n.pos.Column, Msg: fmt.Sprintf(format, args...)}
}

func (r *run) limitError(p *Program, pos Pos, format string, args ...any) error {
	name := ""
	if p != nil {
		name = p.name
	}
	return &RuntimeError{Script: name, Line: pos.Line, Column: pos.Column, Msg: fmt.Sprintf(format, args...), Err: ErrLimit}
}

// expand evaluates a string argument, substituting variables (RFC 5229 3).
func (r *run) expand(s *sstring) string {
	if s.constant() {
		return s.lit
	}
	var b strings.Builder
	for _, p := range s.parts {
		if !p.isVar {
			b.WriteString(p.lit)
			continue
		}
		if p.name == "" {
			if p.num < len(r.matchVars) {
				b.WriteString(r.matchVars[p.num])
			}
			continue
		}
		b.WriteString(r.variable(p.name))
	}
	return b.String()
}

func (r *run) expandAll(v *value) []string {
	if v == nil {
		return nil
	}
	out := make([]string, len(v.strs))
	for i, s := range v.strs {
		out[i] = r.expand(s)
	}
	return out
}

// variable reads a variable; names are case-insensitive and an unset one
// is "" (RFC 5229 3).
func (r *run) variable(name string) string {
	name = strings.ToLower(name)
	if g, ok := strings.CutPrefix(name, "global."); ok {
		return r.globals[g]
	}
	if r.scope.globals[name] {
		return r.globals[name]
	}
	return r.scope.vars[name]
}

func (r *run) setVariable(name, v string) {
	if len(v) > r.limits.MaxVariableSize {
		v = truncateUTF8(v, r.limits.MaxVariableSize)
	}
	name = strings.ToLower(name)
	if g, ok := strings.CutPrefix(name, "global."); ok {
		r.globals[g] = v
		return
	}
	if r.scope.globals[name] {
		r.globals[name] = v
		return
	}
	r.scope.vars[name] = v
}

func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// match applies the node's match spec and, on a :matches success, sets the
// match variables (RFC 5229 3.2) when the script uses variables.
func (r *run) match(n *node, values, keys []string) bool {
	ok, caps := matchValues(n.match, values, keys)
	if ok && caps != nil && r.prog.requires["variables"] {
		r.matchVars = caps
	}
	return ok
}

// headerValues returns the decoded values of the fields named name in the
// current (possibly edited) header.
func (r *run) headerValues(name string) []string {
	var out []string
	for _, f := range r.header {
		if strings.EqualFold(f.Name, name) {
			out = append(out, headerText(f.Value))
		}
	}
	return out
}

func (r *run) rawHeaderValues(name string) []string {
	var out []string
	for _, f := range r.header {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// finish turns the run into a Result: on error only the implicit keep
// remains (RFC 5228 2.10.6).
func (r *run) finish(err error) (*Result, error) {
	res := r.res
	if err != nil {
		return &Result{ImplicitKeep: true, Err: err}, err
	}
	res.ImplicitKeep = !r.canceled
	if res.ImplicitKeep {
		res.ImplicitKeepFlags = append([]string(nil), r.flags...)
	}
	return res, nil
}
