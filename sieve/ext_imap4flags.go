package sieve

import "strings"

// imap4flags (RFC 5232): setflag, addflag, removeflag, the hasflag test,
// :flags on keep and fileinto, and the internal variable that gives the
// implicit keep its flags.

func init() {
	registerCapability("imap4flags")
	for _, name := range []string{"setflag", "addflag", "removeflag"} {
		registerCommand(&commandDef{
			name: name, ext: "imap4flags",
			// RFC 5232 3: [<variablename: string>] <list-of-flags: string-list>
			args: []argType{typeString, typeStringList}, optional: 1, optionalFirst: true,
			check: checkFlagVariable, run: runFlagCommand,
		})
	}
	registerTest(&commandDef{
		name: "hasflag", ext: "imap4flags", tags: matchTags(),
		// RFC 5232 4: [<variable-list: string-list>] <list-of-flags: string-list>
		args: []argType{typeStringList, typeStringList}, optional: 1, optionalFirst: true,
		check: checkHasflag, run: runHasflag,
	})
	flagsTag := &tagDef{name: ":flags", ext: "imap4flags", hasArg: true, arg: typeStringList}
	extendCommand("keep", flagsTag)
	extendCommand("fileinto", flagsTag)
}

func checkFlagVariable(c *compiler, n *node) error {
	if n.args[0] != nil {
		if !c.requires["variables"] {
			return c.errorf(n.args[0].pos, "a flag variable needs require \"variables\"")
		}
		return checkVariableName(c, n.args[0])
	}
	return nil
}

func checkHasflag(c *compiler, n *node) error {
	if err := checkFlagVariable(c, n); err != nil {
		return err
	}
	return checkMatch(c, n)
}

// parseFlags splits flag strings at spaces and removes duplicates, case
// insensitively (RFC 5232 3: a flag list is a set).
func parseFlags(lists ...[]string) []string {
	var out []string
	for _, list := range lists {
		for _, s := range list {
			for _, f := range strings.Fields(s) {
				if !containsFold(out, f) {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// validFlags keeps the flags IMAP can store and drops the others, as
// Pigeonhole does (with a warning): RFC 5232 3 takes flags to be IMAP
// flags, and RFC 3501 9 has five system flags ("\Recent" is the server's
// alone) and keywords that are atoms.
func validFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if validFlag(f) {
			out = append(out, f)
		}
	}
	return out
}

// systemFlags are the RFC 3501 2.3.2 system flags a client may set, in
// the order sieve-test prints them.
var systemFlags = []string{`\flagged`, `\answered`, `\deleted`, `\seen`, `\draft`}

func validFlag(f string) bool {
	if strings.HasPrefix(f, `\`) {
		return containsFold(systemFlags, f)
	}
	for i := 0; i < len(f); i++ {
		// RFC 3501 9: ATOM-CHAR is a CHAR other than atom-specials:
		// "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]".
		if c := f[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return f != ""
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (r *run) flagVariable(n *node) []string {
	if n.args[0] == nil {
		return r.flags
	}
	return parseFlags([]string{r.variable(n.args[0].strs[0].lit)})
}

func (r *run) setFlagVariable(n *node, flags []string) {
	if n.args[0] == nil {
		r.flags = flags
		return
	}
	r.setVariable(n.args[0].strs[0].lit, strings.Join(flags, " "))
}

// runFlagCommand is setflag, addflag or removeflag (RFC 5232 3.1-3.3).
func runFlagCommand(r *run, n *node) (bool, error) {
	given := parseFlags(r.expandAll(n.args[1]))
	if n.def.name != "removeflag" {
		given = validFlags(given)
	}
	cur := r.flagVariable(n)
	var next []string
	switch n.def.name {
	case "setflag":
		next = given
	case "addflag":
		next = parseFlags(cur, given)
	case "removeflag":
		for _, f := range cur {
			if !containsFold(given, f) {
				next = append(next, f)
			}
		}
	}
	r.setFlagVariable(n, next)
	return true, nil
}

// runHasflag compares each flag with the keys (RFC 5232 4).
func runHasflag(r *run, n *node) (bool, error) {
	var flags []string
	if n.args[0] == nil {
		flags = r.flags
	} else {
		flags = parseFlags(r.expandAll(n.args[0]))
		var values []string
		for _, name := range flags {
			values = append(values, r.variable(name))
		}
		flags = parseFlags(values)
	}
	return r.match(n, flags, parseFlags(r.expandAll(n.args[1]))), nil
}

// actionFlags are the flags of a keep or fileinto: :flags when given, else
// the internal variable's current value (RFC 5232 5). The variable applies
// even in a script that did not require imap4flags when an earlier script
// of a Runner chain (or an included one) set it, as in Pigeonhole.
func (r *run) actionFlags(n *node) []string {
	if v, ok := n.tags[":flags"]; ok {
		return validFlags(parseFlags(r.expandAll(v)))
	}
	if len(r.flags) == 0 {
		return nil
	}
	return append([]string(nil), r.flags...)
}
