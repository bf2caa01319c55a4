package sieve

import (
	"context"
	"errors"
	"strings"
)

// include (RFC 6609): include, return and global. Included scripts come
// from the caller's ScriptLoader, already compiled.

// ScriptLocation says where an included script lives (RFC 6609 3.2).
type ScriptLocation uint8

const (
	Personal ScriptLocation = iota // the user's own scripts (:personal, the default)
	Global                         // the site's scripts (:global)
)

func (l ScriptLocation) String() string {
	if l == Global {
		return "global"
	}
	return "personal"
}

// ScriptLoader finds included scripts. It returns an error wrapping
// ErrScriptNotFound for a script that does not exist.
type ScriptLoader interface {
	LoadScript(ctx context.Context, location ScriptLocation, name string) (*Program, error)
}

func init() {
	registerCapability("include")
	registerCommand(&commandDef{name: "include", ext: "include", tags: []*tagDef{
		{name: ":personal", group: "location"}, {name: ":global", group: "location"},
		{name: ":once"}, {name: ":optional"},
	}, args: []argType{typeString}, check: checkInclude, run: runInclude})
	registerCommand(&commandDef{name: "return", ext: "include", run: runReturn})
	registerCommand(&commandDef{name: "global", ext: "include", args: []argType{typeStringList}, check: checkGlobal, run: runGlobal})
}

// checkInclude: the name is a constant without "/" (RFC 6609 3.2).
func checkInclude(c *compiler, n *node) error {
	name, ok := constString(n.args[0])
	if !ok {
		return c.errorf(n.args[0].pos, "include: the script name must be constant")
	}
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return c.errorf(n.args[0].pos, "include: invalid script name %q", name)
	}
	return nil
}

// runInclude runs another script in the same result (RFC 6609 3.2):
// recursion is an error, :once skips a script already included, :optional
// skips a missing one.
func runInclude(r *run, n *node) (bool, error) {
	loc := Personal
	if n.hasTag(":global") {
		loc = Global
	}
	name := n.args[0].strs[0].lit
	key := loc.String() + "/" + name
	if n.hasTag(":once") && r.included[key] {
		return true, nil
	}
	for _, k := range r.stack {
		if k == key {
			return false, r.errorf(n, "include: %s script %q includes itself", loc, name)
		}
	}
	if len(r.stack) >= r.limits.MaxIncludeDepth {
		return false, r.limitError(r.prog, n.pos, "include depth over %d", r.limits.MaxIncludeDepth)
	}
	if r.in.Scripts == nil {
		if n.hasTag(":optional") {
			return true, nil
		}
		return false, &RuntimeError{Script: r.prog.name, Line: n.pos.Line, Column: n.pos.Column, Msg: "include: no scripts to include from", Err: ErrScriptNotFound}
	}
	p, err := r.in.Scripts.LoadScript(r.ctx, loc, name)
	if err != nil {
		if errors.Is(err, ErrScriptNotFound) && n.hasTag(":optional") {
			return true, nil
		}
		return false, &RuntimeError{Script: r.prog.name, Line: n.pos.Line, Column: n.pos.Column, Msg: "include " + key + ": " + err.Error(), Err: err}
	}
	r.included[key] = true
	return true, r.script(p, key)
}

// runReturn ends the current script; the includer goes on (RFC 6609 3.3).
func runReturn(r *run, _ *node) (bool, error) {
	r.returned = true
	return true, nil
}

// checkGlobal: global needs variables and names variables (RFC 6609 3.4).
func checkGlobal(c *compiler, n *node) error {
	if !c.requires["variables"] {
		return c.errorf(n.pos, "global needs require \"variables\"")
	}
	return checkVariableName(c, n.args[0])
}

// runGlobal makes the names refer to the shared variables (RFC 6609 3.4).
func runGlobal(r *run, n *node) (bool, error) {
	for _, s := range n.args[0].strs {
		r.scope.globals[strings.TrimPrefix(strings.ToLower(s.lit), "global.")] = true
	}
	return true, nil
}
