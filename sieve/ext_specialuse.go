package sieve

import "strings"

// special-use (RFC 8579): fileinto :specialuse and specialuse_exists.

func init() {
	registerCapability("special-use")
	extendCommand("fileinto", &tagDef{name: ":specialuse", ext: "special-use", hasArg: true, arg: typeString})
	registerTest(&commandDef{
		name: "specialuse_exists", ext: "special-use",
		// RFC 8579 3: [<mailbox: string>] <special-use-attrs: string-list>
		args: []argType{typeString, typeStringList}, optional: 1, optionalFirst: true,
		check: checkSpecialUse, run: runSpecialUseExists,
	})
}

// validSpecialUse: a special-use attribute is "\" and an atom (RFC 6154 2).
func validSpecialUse(s string) bool {
	return len(s) > 1 && s[0] == '\\' && !strings.ContainsAny(s[1:], " \t\\\"(){%*]")
}

func checkSpecialUse(c *compiler, n *node) error {
	if uses, ok := constStrings(n.args[1]); ok {
		for _, u := range uses {
			if !validSpecialUse(u) {
				return c.errorf(n.args[1].pos, "invalid special-use attribute %q", u)
			}
		}
	}
	return nil
}

// runSpecialUseExists holds when every attribute is on the mailbox, or on
// some mailbox when none is named (RFC 8579 3).
func runSpecialUseExists(r *run, n *node) (bool, error) {
	if r.in.Mailboxes == nil {
		return false, nil
	}
	mailbox := ""
	if n.args[0] != nil {
		mailbox = r.expand(n.args[0].strs[0])
	}
	for _, use := range r.expandAll(n.args[1]) {
		ok, err := r.in.Mailboxes.SpecialUseExists(r.ctx, mailbox, use)
		if err != nil {
			return false, r.errorf(n, "specialuse_exists %q: %v", use, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}
