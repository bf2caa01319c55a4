package imapwire

import "strings"

// QuotaRootArgs are the arguments of GETQUOTA (RFC 9208 4.1.1).
type QuotaRootArgs struct {
	Root string
}

// QuotaLimit is one resource of a SETQUOTA list.
type QuotaLimit struct {
	Resource string // upper-case
	Limit    uint64
}

// SetQuotaArgs are the arguments of SETQUOTA (RFC 9208 4.1.3).
type SetQuotaArgs struct {
	Root   string
	Limits []QuotaLimit
}

// maxQuotaResources bounds a SETQUOTA list.
const maxQuotaResources = 64

// quotaArgs parses the arguments of GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 9):
//
//	getquota     = "GETQUOTA" SP quota-root-name
//	getquotaroot = "GETQUOTAROOT" SP mailbox
//	setquota     = "SETQUOTA" SP quota-root-name SP setquota-list
//	setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"
//	setquota-resource = resource-name SP resource-limit
func (p *parser) quotaArgs(name string) any {
	p.sp()
	switch name {
	case "GETQUOTAROOT":
		return &MailboxArgs{Mailbox: p.mailbox()}
	case "GETQUOTA":
		return &QuotaRootArgs{Root: p.astring()}
	}
	args := &SetQuotaArgs{Root: p.astring()}
	p.sp()
	p.expect('(')
	for p.ok() && !p.take(')') {
		if len(args.Limits) > 0 {
			p.sp()
		}
		if len(args.Limits) >= maxQuotaResources {
			p.errorf("too many quota resources")
			return nil
		}
		l := QuotaLimit{Resource: strings.ToUpper(p.atom())}
		p.sp()
		l.Limit = p.number64()
		args.Limits = append(args.Limits, l)
	}
	return args
}
