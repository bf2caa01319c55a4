package sieve

import (
	"net/mail"
	"strings"
)

// RFC 5228: the base language's control commands (3), actions (4) and
// tests (5).

func init() {
	registerCapability("fileinto", "envelope", "comparator-i;octet", "comparator-i;ascii-casemap")
	registerCommand(&commandDef{name: "if", tests: 1, block: true, run: runIf})
	registerCommand(&commandDef{name: "elsif", tests: 1, block: true, run: runNothing})
	registerCommand(&commandDef{name: "else", block: true, run: runNothing})
	registerCommand(&commandDef{name: "stop", run: runStop})
	registerCommand(&commandDef{name: "keep", run: runKeep})
	registerCommand(&commandDef{name: "discard", run: runDiscard})
	registerCommand(&commandDef{name: "fileinto", ext: "fileinto", args: []argType{typeString}, run: runFileinto})
	registerCommand(&commandDef{name: "redirect", args: []argType{typeString}, check: checkRedirect, run: runRedirect})

	registerTest(&commandDef{name: "address", tags: addressTags(), args: []argType{typeStringList, typeStringList}, check: checkMatch, run: runAddress})
	registerTest(&commandDef{name: "envelope", ext: "envelope", tags: addressTags(), args: []argType{typeStringList, typeStringList}, check: checkEnvelope, run: runEnvelope})
	registerTest(&commandDef{name: "header", tags: matchTags(), args: []argType{typeStringList, typeStringList}, check: checkMatch, run: runHeader})
	registerTest(&commandDef{name: "exists", args: []argType{typeStringList}, run: runExists})
	registerTest(&commandDef{name: "size", tags: []*tagDef{
		{name: ":over", group: "size"}, {name: ":under", group: "size"},
	}, args: []argType{typeNumber}, check: checkSize, run: runSize})
	registerTest(&commandDef{name: "allof", tests: -1, run: runAllof})
	registerTest(&commandDef{name: "anyof", tests: -1, run: runAnyof})
	registerTest(&commandDef{name: "not", tests: 1, run: runNot})
	registerTest(&commandDef{name: "true", run: func(*run, *node) (bool, error) { return true, nil }})
	registerTest(&commandDef{name: "false", run: func(*run, *node) (bool, error) { return false, nil }})
}

func runNothing(*run, *node) (bool, error) { return true, nil }

// runIf runs the first branch whose test holds (RFC 5228 3.1).
func runIf(r *run, n *node) (bool, error) {
	ok, err := r.test(n.tests[0])
	if err != nil || ok {
		if err == nil {
			err = r.block(n.block)
		}
		return true, err
	}
	for _, e := range n.elses {
		if e.def.name == "elsif" {
			if err := r.step(e); err != nil {
				return false, err
			}
			if ok, err = r.test(e.tests[0]); err != nil {
				return false, err
			}
			if !ok {
				continue
			}
		}
		return true, r.block(e.block)
	}
	return true, nil
}

// runStop ends all processing (RFC 5228 3.3; RFC 6609 3.2 within includes too).
func runStop(r *run, _ *node) (bool, error) {
	r.stopped = true
	return true, nil
}

// runKeep stores into INBOX (RFC 5228 4.3).
func runKeep(r *run, n *node) (bool, error) {
	return true, r.addAction(n, Action{Kind: ActionKeep, Mailbox: "INBOX", Flags: r.actionFlags(n), flagsGiven: n.hasTag(":flags")})
}

// runDiscard cancels the implicit keep silently (RFC 5228 4.4).
func runDiscard(r *run, n *node) (bool, error) {
	return true, r.addAction(n, Action{Kind: ActionDiscard})
}

// runFileinto stores into a mailbox (RFC 5228 4.1).
func runFileinto(r *run, n *node) (bool, error) {
	mailbox := r.expand(n.args[0].strs[0])
	if mailbox == "" {
		return false, r.errorf(n, "fileinto: empty mailbox name")
	}
	a := Action{Kind: ActionFileInto, Mailbox: mailbox, Flags: r.actionFlags(n),
		Copy: n.hasTag(":copy"), Create: n.hasTag(":create")}
	if v, ok := n.tags[":specialuse"]; ok {
		a.SpecialUse = r.expand(v.strs[0])
	}
	return true, r.addAction(n, a)
}

// redirectAddress checks a redirect target: an RFC 5322 address (RFC 5228 4.2).
func redirectAddress(s string) (string, bool) {
	a, err := mail.ParseAddress(s)
	if err != nil || !strings.Contains(a.Address, "@") {
		return "", false
	}
	return a.Address, true
}

func checkRedirect(c *compiler, n *node) error {
	if s, ok := constString(n.args[0]); ok {
		if _, valid := redirectAddress(s); !valid {
			// RFC 5228 4.2: a syntactically invalid address is an error.
			return c.errorf(n.args[0].pos, "invalid redirect address %q", s)
		}
	}
	return nil
}

func runRedirect(r *run, n *node) (bool, error) {
	s := r.expand(n.args[0].strs[0])
	addr, ok := redirectAddress(s)
	if !ok {
		return false, r.errorf(n, "invalid redirect address %q", s)
	}
	return true, r.addAction(n, Action{Kind: ActionRedirect, Address: addr, Copy: n.hasTag(":copy")})
}

// selectIndex keeps the field an :index/:last pair selects (RFC 5260 6).
func selectIndex(r *run, n *node, fields []string) []string {
	v, ok := n.tags[":index"]
	if !ok {
		return fields
	}
	i := int(v.num)
	if n.hasTag(":last") {
		i = len(fields) - i + 1
	}
	if i < 1 || i > len(fields) {
		return nil
	}
	return fields[i-1 : i]
}

// runAddress is the address test (RFC 5228 5.1).
func runAddress(r *run, n *node) (bool, error) {
	var values []string
	for _, name := range r.expandAll(n.args[0]) {
		for _, raw := range selectIndex(r, n, r.rawHeaderValues(name)) {
			addrs, unparsed := addressesOf(raw)
			for _, addr := range addrs {
				switch {
				case n.match.typ == matchCount:
					// RFC 5231 4.1: :count counts the addresses, whatever
					// the address part, as Pigeonhole does.
					values = append(values, addr)
				case unparsed:
					// A value without an address has no local part or
					// domain: only :all (or an empty value) tests it.
					if n.match.part == partAll || addr == "" {
						values = append(values, addr)
					}
				default:
					if part, ok := addressPartOf(addr, n.match.part, r.in.SubaddressDelimiter); ok {
						values = append(values, part)
					}
				}
			}
		}
	}
	return r.match(n, values, r.expandAll(n.args[1])), nil
}

func checkEnvelope(c *compiler, n *node) error {
	if parts, ok := constStrings(n.args[0]); ok {
		for _, p := range parts {
			if !validEnvelopePart(p) {
				// RFC 5228 5.4: an unsupported envelope-part is an error.
				return c.errorf(n.args[0].pos, "unknown envelope part %q", p)
			}
		}
	}
	return checkMatch(c, n)
}

func validEnvelopePart(p string) bool {
	switch strings.ToLower(p) {
	case "from", "to":
		return true
	}
	return false
}

// runEnvelope is the envelope test (RFC 5228 5.4): the null reverse-path
// compares as "" whatever the address part.
func runEnvelope(r *run, n *node) (bool, error) {
	var values []string
	for _, p := range r.expandAll(n.args[0]) {
		var addr string
		switch strings.ToLower(p) {
		case "from":
			addr = r.in.Envelope.From
		case "to":
			// RFC 5228 5.4: "to" is the RCPT TO that caused the delivery
			// to this user, the address as the sender gave it: the
			// original recipient before alias expansion, as Pigeonhole
			// compares it (sieve-test -a).
			addr = r.in.Envelope.OrigTo
			if addr == "" {
				addr = r.in.Envelope.To
			}
		default:
			continue
		}
		if addr == "" {
			if strings.ToLower(p) == "from" {
				values = append(values, "")
			}
			continue
		}
		if part, ok := addressPartOf(addr, n.match.part, r.in.SubaddressDelimiter); ok {
			values = append(values, part)
		}
	}
	return r.match(n, values, r.expandAll(n.args[1])), nil
}

// runHeader is the header test (RFC 5228 5.7).
func runHeader(r *run, n *node) (bool, error) {
	var values []string
	for _, name := range r.expandAll(n.args[0]) {
		values = append(values, selectIndex(r, n, r.headerValues(name))...)
	}
	return r.match(n, values, r.expandAll(n.args[1])), nil
}

// runExists holds when every named header field is present (RFC 5228 5.5).
func runExists(r *run, n *node) (bool, error) {
	for _, name := range r.expandAll(n.args[0]) {
		if len(r.rawHeaderValues(name)) == 0 {
			return false, nil
		}
	}
	return true, nil
}

func checkSize(c *compiler, n *node) error {
	if !n.hasTag(":over") && !n.hasTag(":under") {
		// RFC 5228 5.9: one of :over and :under is required.
		return c.errorf(n.pos, "size needs :over or :under")
	}
	return nil
}

// runSize compares the message size (RFC 5228 5.9).
func runSize(r *run, n *node) (bool, error) {
	var size int64
	if r.in.Message != nil {
		size = r.in.Message.Size()
	}
	if n.hasTag(":over") {
		return size > n.args[0].num, nil
	}
	return size < n.args[0].num, nil
}

// runAllof and runAnyof short-circuit (RFC 5228 5.2, 5.3).
func runAllof(r *run, n *node) (bool, error) {
	for _, t := range n.tests {
		if ok, err := r.test(t); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func runAnyof(r *run, n *node) (bool, error) {
	for _, t := range n.tests {
		if ok, err := r.test(t); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func runNot(r *run, n *node) (bool, error) {
	ok, err := r.test(n.tests[0])
	return !ok, err
}
