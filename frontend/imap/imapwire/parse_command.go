package imapwire

import (
	"maps"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// ParseCommand parses one complete command: its line with any literals inline, as the client
// sent them ("{n}" CRLF data), without the final CRLF. On a syntax error it returns a
// *ParseError and, when the tag could be read, a Command with the tag (and the name, when it
// could be read too) so the engine can answer "tag BAD".
//
// APPEND is not parsed here: its message literal is streamed (see ParseAppendHead), so an
// APPEND reaching ParseCommand lacks its literal and is an error.
func ParseCommand(b []byte) (*Command, error) {
	p := &parser{b: b}
	cmd := &Command{Tag: p.tag()}
	p.sp()
	cmd.Base = strings.ToUpper(p.atom())
	cmd.Name = cmd.Base
	if cmd.Base == "UID" { // RFC 9051 6.4.9: uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)
		p.sp()
		cmd.Base = strings.ToUpper(p.atom())
		cmd.Name = "UID " + cmd.Base
		cmd.UID = true
	}
	if !p.ok() {
		if cmd.Tag == "" {
			return nil, p.err
		}
		return cmd, p.err
	}
	parseArgs, known := commandArgs[cmd.Name]
	if !known {
		p.errorf("unknown command %s", cmd.Name)
		return cmd, p.err
	}
	cmd.Args = parseArgs(p, cmd)
	p.end()
	if !p.ok() {
		return cmd, p.err
	}
	return cmd, nil
}

// commandArgs is the parser's command table: every command name it knows, UID forms as
// their own entries ("UID FETCH"), and the parser of the arguments that follow the name.
// frontend/imap's dispatch table has exactly these names (a test there checks both ways).
var commandArgs map[string]func(p *parser, cmd *Command) any

func init() {
	noArgs := func(*parser, *Command) any { return nil }
	mailboxOnly := func(p *parser, _ *Command) any {
		p.sp()
		return &MailboxArgs{Mailbox: p.mailbox()}
	}
	// APPEND and REPLACE are parsed by ParseAppendHead, since their message literal is
	// streamed; here they lack it.
	appendHead := func(p *parser, cmd *Command) any {
		p.errorf("%s without a message literal", cmd.Name)
		return nil
	}
	copyArgs := func(p *parser, cmd *Command) any { // RFC 9051 6.4.7, 6.4.8
		p.sp()
		args := &CopyArgs{Set: p.sequenceSet(cmd.UID)}
		p.sp()
		args.Mailbox = p.mailbox()
		return args
	}
	quotaArgs := func(p *parser, cmd *Command) any { return p.quotaArgs(cmd.Name) } // RFC 9208 4.1
	aclArgs := func(p *parser, cmd *Command) any { return p.aclArgs(cmd.Name) }     // RFC 4314 3
	fetchArgs := func(p *parser, cmd *Command) any { return p.fetchArgs(cmd.UID) }
	storeArgs := func(p *parser, cmd *Command) any { return p.storeArgs(cmd.UID) }
	searchArgs := func(p *parser, cmd *Command) any { return p.searchArgs(cmd.UID) }
	commandArgs = map[string]func(p *parser, cmd *Command) any{
		"CAPABILITY": noArgs,
		"NOOP":       noArgs,
		"LOGOUT":     noArgs,
		"STARTTLS":   noArgs,
		"CHECK":      noArgs,
		"CLOSE":      noArgs,
		"UNSELECT":   noArgs,
		"EXPUNGE":    noArgs,
		"IDLE":       noArgs,
		"NAMESPACE":  noArgs,
		// RFC 8437 6: command-auth =/ "UNAUTHENTICATE"
		"UNAUTHENTICATE": noArgs,
		"LOGIN": func(p *parser, _ *Command) any { // RFC 9051 6.2.3: login = "LOGIN" SP userid SP password
			p.sp()
			args := &LoginArgs{Username: p.astring()}
			p.sp()
			args.Password = p.astring()
			return args
		},
		"AUTHENTICATE": func(p *parser, _ *Command) any { // RFC 9051 6.2.2, RFC 4959 for the initial response
			p.sp()
			args := &AuthenticateArgs{Mechanism: strings.ToUpper(p.atom())}
			if p.take(' ') {
				if p.take('=') {
					args.InitialResponse = []byte("=")
				} else {
					args.InitialResponse = []byte(p.takeWhile(isBase64Char))
					if len(args.InitialResponse) == 0 {
						p.errorf("expected a base64 initial response")
					}
				}
			}
			return args
		},
		"COMPRESS": func(p *parser, _ *Command) any { // RFC 4978 5: compress = "COMPRESS" SP algorithm
			p.sp()
			return &CompressArgs{Mechanism: strings.ToUpper(p.atom())}
		},
		"ID": func(p *parser, _ *Command) any { return p.idArgs() }, // RFC 2971 3.1
		"ENABLE": func(p *parser, _ *Command) any { // RFC 9051 6.3.1: enable = "ENABLE" 1*(SP capability)
			args := &EnableArgs{}
			for p.take(' ') {
				args.Capabilities = append(args.Capabilities, strings.ToUpper(p.atom()))
			}
			if len(args.Capabilities) == 0 {
				p.errorf("expected a capability")
			}
			return args
		},
		"SELECT":  selectArgs,
		"EXAMINE": selectArgs,
		"CREATE": func(p *parser, _ *Command) any { // RFC 9051 6.3.4 with create-params (RFC 4466 2.2) for USE (RFC 6154 3)
			p.sp()
			args := &MailboxArgs{Mailbox: p.mailbox()}
			if p.take(' ') {
				p.expect('(')
				if !p.takeFold("USE ") {
					p.errorf("expected USE")
				}
				args.SpecialUse = p.useAttrs()
				p.expect(')')
			}
			return args
		},
		"DELETE":      mailboxOnly,
		"SUBSCRIBE":   mailboxOnly,
		"UNSUBSCRIBE": mailboxOnly,
		"RENAME": func(p *parser, _ *Command) any { // RFC 9051 6.3.6
			p.sp()
			args := &RenameArgs{From: p.mailbox()}
			p.sp()
			args.To = p.mailbox()
			return args
		},
		"LIST": func(p *parser, _ *Command) any { return p.listArgs() },
		"LSUB": func(p *parser, _ *Command) any { // RFC 3501 6.3.9
			p.sp()
			args := &ListArgs{Reference: p.mailbox()}
			p.sp()
			args.Patterns = []string{p.listMailbox()}
			return args
		},
		"STATUS": func(p *parser, _ *Command) any { // RFC 9051 6.3.11
			p.sp()
			args := &StatusArgs{Mailbox: p.mailbox()}
			p.sp()
			args.Items = p.upperAtomList()
			if p.ok() && len(args.Items) == 0 {
				p.errorf("expected a status item")
			}
			return args
		},
		"APPEND":      appendHead,
		"REPLACE":     appendHead,
		"UID REPLACE": appendHead,
		"FETCH":       fetchArgs,
		"UID FETCH":   fetchArgs,
		"STORE":       storeArgs,
		"UID STORE":   storeArgs,
		"COPY":        copyArgs,
		"UID COPY":    copyArgs,
		"MOVE":        copyArgs,
		"UID MOVE":    copyArgs,
		"SEARCH":      searchArgs,
		"UID SEARCH":  searchArgs,
		"SORT":        func(p *parser, cmd *Command) any { return p.sortArgs(cmd.UID) },
		"UID SORT":    func(p *parser, cmd *Command) any { return p.sortArgs(cmd.UID) },
		"THREAD":      func(p *parser, cmd *Command) any { return p.threadArgs(cmd.UID) },
		"UID THREAD":  func(p *parser, cmd *Command) any { return p.threadArgs(cmd.UID) },
		"UID EXPUNGE": func(p *parser, _ *Command) any { // RFC 9051 6.4.9: uid-expunge = "EXPUNGE" SP sequence-set
			p.sp()
			set, _ := p.sequenceSet(true).(imap.UIDSet)
			return &UIDExpungeArgs{Set: set}
		},
		"GETQUOTA":     quotaArgs,
		"GETQUOTAROOT": quotaArgs,
		"SETQUOTA":     quotaArgs,
		"SETACL":       aclArgs,
		"DELETEACL":    aclArgs,
		"GETACL":       aclArgs,
		"LISTRIGHTS":   aclArgs,
		"MYRIGHTS":     aclArgs,
		"GETMETADATA":  func(p *parser, _ *Command) any { return p.getMetadataArgs() },  // RFC 5464 4.2
		"SETMETADATA":  func(p *parser, _ *Command) any { return p.setMetadataArgs() },  // RFC 5464 4.3
		"NOTIFY":       func(p *parser, _ *Command) any { return p.notifyArgs() },       // RFC 5465 8
		"CANCELUPDATE": func(p *parser, _ *Command) any { return p.cancelUpdateArgs() }, // RFC 5267 4.3.5
		"ESEARCH":      func(p *parser, _ *Command) any { return p.multiSearchArgs() },  // RFC 7377, formal syntax
	}
}

// selectArgs parses SELECT and EXAMINE (RFC 9051 6.3.2, 6.3.3) with select-params (RFC
// 4466 2.1).
func selectArgs(p *parser, _ *Command) any {
	p.sp()
	args := &MailboxArgs{Mailbox: p.mailbox()}
	if p.take(' ') {
		p.selectParams(args)
	}
	return args
}

// CommandNames returns, sorted, every command name ParseCommand and ParseAppendHead accept,
// UID forms as "UID FETCH".
func CommandNames() []string {
	return slices.Sorted(maps.Keys(commandArgs))
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// listArgs parses RFC 9051 6.3.9: list = "LIST" [SP list-select-opts] SP mailbox SP
// mbox-or-pat [SP list-return-opts].
func (p *parser) listArgs() *ListArgs {
	args := &ListArgs{}
	p.sp()
	if p.peek() == '(' {
		args.SelectOptions = p.upperAtomList()
		p.sp()
	}
	args.Reference = p.mailbox()
	p.sp()
	if p.take('(') {
		for p.ok() && !p.take(')') {
			if len(args.Patterns) > 0 {
				p.sp()
			}
			args.Patterns = append(args.Patterns, p.listMailbox())
		}
		if p.ok() && len(args.Patterns) == 0 {
			p.errorf("expected a mailbox pattern")
		}
	} else {
		args.Patterns = []string{p.listMailbox()}
	}
	if p.take(' ') {
		if !p.takeFold("RETURN ") {
			p.errorf("expected RETURN")
		}
		args.ReturnOptions, args.StatusItems = p.listReturnOptions()
	}
	return args
}

// listReturnOptions reads "(" [return-option *(SP return-option)] ")" where a return
// option is an atom or "STATUS" SP "(" status-att *(SP status-att) ")" (RFC 5258 6, RFC
// 5819 4). The STATUS items come back apart.
func (p *parser) listReturnOptions() (opts, statusItems []string) {
	p.expect('(')
	for p.ok() && !p.take(')') {
		if len(opts) > 0 {
			p.sp()
		}
		opt := strings.ToUpper(p.atom())
		opts = append(opts, opt)
		if opt == "STATUS" {
			p.sp()
			statusItems = p.upperAtomList()
			if p.ok() && len(statusItems) == 0 {
				p.errorf("expected a status item")
			}
		}
	}
	return opts, statusItems
}

// useAttrs reads "(" use-attr *(SP use-attr) ")" (RFC 6154 6): "\" atom each.
func (p *parser) useAttrs() []string {
	p.expect('(')
	var attrs []string
	for p.ok() && !p.take(')') {
		if len(attrs) > 0 {
			p.sp()
		}
		p.expect('\\')
		attrs = append(attrs, "\\"+p.atom())
	}
	if p.ok() && len(attrs) == 0 {
		p.errorf("expected a special-use attribute")
	}
	return attrs
}

// ParseAppendHead parses the start of an APPEND command up to and including the literal that
// carries its message (RFC 9051 6.3.12, literal8 from RFC 3516):
//
//	append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal
//	append-data =/ "UTF8" SP "(" literal8 ")"   ; RFC 6855 4
//	replace = "REPLACE" SP seq-number SP mailbox [SP flag-list] [SP date-time] SP literal
//	uid-replace = "UID" SP "REPLACE" SP uniqueid SP mailbox ...   ; RFC 8508 6
//
// b holds the command so far, with any earlier literals (a mailbox name) inline, and must
// end right after the literal's "}". An error means b is not an APPEND at its message
// literal; the caller then reads the literal like any other.
func ParseAppendHead(b []byte) (*Command, error) {
	p := &parser{b: b}
	cmd := &Command{Tag: p.tag()}
	p.sp()
	var replace uint32
	switch {
	case p.takeFold("APPEND "):
		cmd.Name, cmd.Base = "APPEND", "APPEND"
	case p.takeFold("REPLACE "): // RFC 8508 6: "REPLACE" SP seq-number SP mailbox ...
		cmd.Name, cmd.Base = "REPLACE", "REPLACE"
		replace = p.nzNumber()
		p.sp()
	case p.takeFold("UID REPLACE "): // RFC 8508 6: "UID" SP "REPLACE" SP uniqueid SP mailbox ...
		cmd.Name, cmd.Base, cmd.UID = "UID REPLACE", "REPLACE", true
		replace = p.nzNumber()
		p.sp()
	default:
		p.errorf("not APPEND or REPLACE")
	}
	args := &AppendArgs{Mailbox: p.mailbox(), Replace: replace}
	p.sp()
	p.appendMessage(args)
	if !p.ok() {
		return nil, p.err
	}
	cmd.Args = args
	return cmd, nil
}

// ParseAppendNext parses what follows a message literal of APPEND when the client appends
// another message in the same command (MULTIAPPEND, RFC 3502 6.3.11):
//
//	append-message = SP [flag-list SP] [date-time SP] literal
//
// b is the rest of the line after the previous literal and must end right after the next
// literal's "}". The returned AppendArgs has no Mailbox.
func ParseAppendNext(b []byte) (*AppendArgs, error) {
	p := &parser{b: b}
	p.sp()
	args := &AppendArgs{}
	p.appendMessage(args)
	if !p.ok() {
		return nil, p.err
	}
	return args, nil
}

// appendMessage reads the rest of a command from one APPEND message's optional flags and
// date on, up to the message literal's "}" that ends b (RFC 3502 6.3.11):
//
//	append-message = [flag-list SP] [date-time SP] append-data
func (p *parser) appendMessage(args *AppendArgs) {
	if p.peek() == '(' {
		args.Flags = p.flagList()
		p.sp()
	}
	if p.peek() == '"' {
		args.Date = p.dateTime()
		p.sp()
	}
	p.appendData(args)
	p.end()
}

// appendData reads the literal that carries an APPEND message, plain or as the UTF8 data
// extension of RFC 6855 4, whose closing ")" follows the literal:
//
//	append-data =/ "UTF8" SP "(" literal8 ")"
func (p *parser) appendData(args *AppendArgs) {
	if p.takeFold("UTF8 (") {
		args.UTF8 = true
		if p.peek() != '~' {
			p.errorf("UTF8 message must be a literal8")
		}
	}
	args.Literal = p.literalMarker(true)
}

// selectParams parses select-params = "(" select-param *(SP select-param) ")" (RFC 4466
// 2.1) with the CONDSTORE (RFC 7162 3.1.8) and QRESYNC (RFC 7162 3.2.5, 7) parameters:
// "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")".
func (p *parser) selectParams(args *MailboxArgs) {
	p.expect('(')
	for first := true; p.ok() && (first || p.take(' ')); first = false {
		switch name := strings.ToUpper(p.atom()); {
		case !p.ok():
		case name == "CONDSTORE" && !args.CondStore:
			args.CondStore = true
		case name == "QRESYNC" && args.QResync == nil:
			p.sp()
			args.QResync = p.qresyncParams()
		default:
			p.errorf("unknown or repeated SELECT parameter %q", name)
		}
	}
	p.expect(')')
}

func (p *parser) qresyncParams() *QResyncParams {
	q := &QResyncParams{}
	p.expect('(')
	q.UIDValidity = p.nzNumber()
	p.sp()
	if q.ModSeq = p.number64(); p.ok() && q.ModSeq == 0 {
		p.errorf("mod-sequence-value must be at least 1")
	}
	if p.take(' ') {
		if p.peek() != '(' {
			q.KnownUIDs = p.uidSetOnly()
			p.take(' ')
		}
		if p.take('(') {
			seqs, _ := p.sequenceSet(false).(imap.SeqSet)
			if p.ok() && seqs == nil {
				p.errorf("expected message numbers")
			}
			p.sp()
			q.SeqMatchSeqs = seqs
			q.SeqMatchUIDs = p.uidSetOnly()
			p.expect(')')
		}
	}
	p.expect(')')
	return q
}

// uidSetOnly parses a sequence-set of UIDs without "*" or "$" (RFC 7162 7: known-uids and
// the UIDs of seq-match-data are sequence-set, but "*" has no meaning in them).
func (p *parser) uidSetOnly() imap.UIDSet {
	uids, _ := p.sequenceSet(true).(imap.UIDSet)
	if !p.ok() {
		return nil
	}
	if uids == nil {
		p.errorf("expected UIDs")
		return nil
	}
	for _, r := range uids {
		if r.Start == 0 || r.Stop == 0 {
			p.errorf("\"*\" is not allowed here")
			return nil
		}
	}
	return uids
}

// storeArgs parses RFC 9051 6.4.6: store = "STORE" SP sequence-set [SP store-modifiers] SP
// store-att-flags; store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list /
// (flag *(SP flag))). The UNCHANGEDSINCE modifier is RFC 7162 3.1.3.
func (p *parser) storeArgs(uid bool) *StoreArgs {
	p.sp()
	args := &StoreArgs{Set: p.sequenceSet(uid)}
	p.sp()
	if p.take('(') {
		if !p.takeFold("UNCHANGEDSINCE ") {
			p.errorf("expected UNCHANGEDSINCE")
		}
		args.UnchangedSince = p.number64()
		p.expect(')')
		p.sp()
	}
	switch {
	case p.take('+'):
		args.Flags.Op = imap.StoreFlagsAdd
	case p.take('-'):
		args.Flags.Op = imap.StoreFlagsDel
	default:
		args.Flags.Op = imap.StoreFlagsSet
	}
	if !p.takeFold("FLAGS") {
		p.errorf("expected FLAGS")
	}
	args.Flags.Silent = p.takeFold(".SILENT")
	p.sp()
	if p.peek() == '(' {
		args.Flags.Flags = p.flagList()
	} else {
		args.Flags.Flags = append(args.Flags.Flags, p.flag(false))
		for p.take(' ') {
			args.Flags.Flags = append(args.Flags.Flags, p.flag(false))
		}
	}
	return args
}
