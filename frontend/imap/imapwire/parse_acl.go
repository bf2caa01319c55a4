package imapwire

// ACLArgs are the arguments of the RFC 4314 3 commands: SETACL, DELETEACL, GETACL,
// LISTRIGHTS and MYRIGHTS.
type ACLArgs struct {
	Mailbox string
	// Identifier is the identifier of SETACL, DELETEACL and LISTRIGHTS, as sent.
	Identifier string
	// Rights is SETACL's mod-rights as sent: rights, "+" rights or "-" rights.
	Rights string
}

// aclArgs parses the arguments of the ACL commands (RFC 4314 7):
//
//	setacl     = "SETACL" SP mailbox SP identifier SP mod-rights
//	deleteacl  = "DELETEACL" SP mailbox SP identifier
//	getacl     = "GETACL" SP mailbox
//	listrights = "LISTRIGHTS" SP mailbox SP identifier
//	myrights   = "MYRIGHTS" SP mailbox
//	identifier = astring
//	mod-rights = astring
func (p *parser) aclArgs(name string) *ACLArgs {
	p.sp()
	args := &ACLArgs{Mailbox: p.mailbox()}
	switch name {
	case "GETACL", "MYRIGHTS":
		return args
	}
	p.sp()
	args.Identifier = p.astring()
	if name == "SETACL" {
		p.sp()
		args.Rights = p.astring()
	}
	return args
}
