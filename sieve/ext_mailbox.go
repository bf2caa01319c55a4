package sieve

// mailbox (RFC 5490 3): fileinto :create and the mailboxexists test.

func init() {
	registerCapability("mailbox")
	extendCommand("fileinto", &tagDef{name: ":create", ext: "mailbox"})
	registerTest(&commandDef{name: "mailboxexists", ext: "mailbox", args: []argType{typeStringList}, run: runMailboxExists})
}

// runMailboxExists holds when every named mailbox exists (RFC 5490 3.1);
// without a Mailboxes implementation nothing exists.
func runMailboxExists(r *run, n *node) (bool, error) {
	if r.in.Mailboxes == nil {
		return false, nil
	}
	for _, name := range r.expandAll(n.args[0]) {
		ok, err := r.in.Mailboxes.MailboxExists(r.ctx, name)
		if err != nil {
			return false, r.errorf(n, "mailboxexists %q: %v", name, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}
