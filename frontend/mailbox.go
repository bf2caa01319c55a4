package frontend

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-mail/strata/frontend/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// delimiter is the hierarchy delimiter of every Strata mailbox name (RFC 9051 5.1.1).
const delimiter = '/'

// maxPatternLength bounds a LIST pattern, so matching stays cheap.
const maxPatternLength = 1024

// cmdList: LIST (RFC 9051 6.3.9 with the RFC 5258 selection and return options that it
// includes, RFC 6154 special-use attributes) and LSUB (RFC 3501 6.3.9).
func (c *conn) cmdList(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.ListArgs)
	lsub := cmd.Name == "LSUB"
	subscribedOnly, specialUseOnly := lsub, false
	for _, opt := range args.SelectOptions {
		switch opt {
		case "SUBSCRIBED":
			subscribedOnly = true
		case "SPECIAL-USE": // RFC 6154 3
			specialUseOnly = true
		case "REMOTE", "RECURSIVEMATCH":
		default:
			return bad("", "Unsupported LIST selection option "+opt)
		}
	}
	returnSubscribed := subscribedOnly
	for _, opt := range args.ReturnOptions {
		switch opt {
		case "SUBSCRIBED":
			returnSubscribed = true
		case "CHILDREN", "SPECIAL-USE": // always returned
		default:
			return bad("", "Unsupported LIST return option "+opt)
		}
	}
	verb := "LIST"
	if lsub {
		verb = "LSUB"
	}
	// RFC 9051 6.3.9: an empty pattern asks for the hierarchy delimiter.
	if len(args.Patterns) == 1 && args.Patterns[0] == "" {
		c.untagged(verb + ` (\Noselect) "/" ""`)
		return nil
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	resp, err := c.srv.cfg.Metadata.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: c.accountName()})
	if err != nil {
		return rpcStatus(err, codeNonExistent, "list mailboxes")
	}
	mailboxes := resp.GetMailboxes()
	exists := make(map[string]*metadatapb.Mailbox, len(mailboxes))
	hasChildren := make(map[string]bool)
	for _, mb := range mailboxes {
		exists[mb.GetName()] = mb
		for name := mb.GetName(); ; {
			i := strings.LastIndexByte(name, delimiter)
			if i < 0 {
				break
			}
			name = name[:i]
			hasChildren[name] = true
		}
	}
	names := make([]string, 0, len(mailboxes))
	for _, mb := range mailboxes {
		names = append(names, mb.GetName())
	}
	// Superiors that are not mailboxes themselves are listed as \NonExistent when a "%"
	// pattern stops at their level (RFC 9051 6.3.9).
	for name := range hasChildren {
		if exists[name] == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	var patterns []string
	for _, pattern := range args.Patterns {
		full := args.Reference + pattern
		if len(full) > maxPatternLength {
			return bad(codeLimit, "Pattern too long")
		}
		patterns = append(patterns, full)
	}
	enc := c.encoder()
	for _, name := range names {
		if !slices.ContainsFunc(patterns, func(p string) bool { return matchPattern(p, name) }) {
			continue
		}
		mb := exists[name]
		var attrs []string
		if mb == nil {
			if subscribedOnly || specialUseOnly {
				continue
			}
			attrs = append(attrs, `\NonExistent`, `\Noselect`)
		} else {
			if subscribedOnly && !mb.GetSubscribed() {
				continue
			}
			if specialUseOnly && mb.GetSpecialUse() == "" {
				continue
			}
			if mb.GetNoselect() {
				attrs = append(attrs, `\Noselect`)
			}
			if returnSubscribed && mb.GetSubscribed() && !lsub {
				attrs = append(attrs, `\Subscribed`)
			}
			if mb.GetSpecialUse() != "" {
				attrs = append(attrs, mb.GetSpecialUse())
			}
		}
		if hasChildren[name] {
			attrs = append(attrs, `\HasChildren`) // RFC 9051 7.3.1, RFC 3348
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
		line := []byte(verb + " (" + strings.Join(attrs, " ") + `) "/" `)
		line = enc.AppendAString(line, name)
		c.untaggedBytes(line)
	}
	return nil
}

// matchPattern reports whether name matches a LIST pattern: "*" matches anything, "%"
// anything but the delimiter (RFC 9051 6.3.9). INBOX matches case-insensitively. The match
// is dynamic programming over the two strings, so no pattern makes it exponential.
func matchPattern(pattern, name string) bool {
	if name == "INBOX" && len(pattern) >= 5 && strings.EqualFold(pattern[:5], "INBOX") {
		pattern = "INBOX" + pattern[5:]
	}
	// match[j]: pattern[:i] matches name[:j].
	match := make([]bool, len(name)+1)
	match[0] = true
	for i := 0; i < len(pattern); i++ {
		next := make([]bool, len(name)+1)
		switch pc := pattern[i]; pc {
		case '*', '%':
			for j := 0; j <= len(name); j++ {
				next[j] = match[j] || j > 0 && next[j-1] && (pc == '*' || name[j-1] != delimiter)
			}
		default:
			for j := 1; j <= len(name); j++ {
				next[j] = match[j-1] && name[j-1] == pc
			}
		}
		match = next
	}
	return match[len(name)]
}

// validMailboxName checks a name given to CREATE or RENAME: non-empty, no empty hierarchy
// level, no wildcards (RFC 9051 5.1), valid UTF-8 was checked by the parser.
func validMailboxName(name string) bool {
	if name == "" || strings.ContainsAny(name, "*%\r\n") {
		return false
	}
	for _, level := range strings.Split(name, string(delimiter)) {
		if level == "" {
			return false
		}
	}
	return true
}

// cmdCreate: RFC 9051 6.3.4.
func (c *conn) cmdCreate(cmd *imapwire.Command) error {
	name := strings.TrimSuffix(cmd.Args.(*imapwire.MailboxArgs).Mailbox, string(delimiter))
	if name == "INBOX" {
		return no(codeAlreadyExists, "INBOX always exists")
	}
	if !validMailboxName(name) {
		return no(codeCannot, "Invalid mailbox name")
	}
	requestID := newRequestID()
	err := c.withRetry(func(ctx context.Context) error {
		_, err := c.srv.cfg.Metadata.CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{
			RequestId: requestID, Account: c.accountName(), Name: name,
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, codeNonExistent, "create "+strconv.Quote(name))
	}
	return nil
}

// cmdDelete: RFC 9051 6.3.5.
func (c *conn) cmdDelete(cmd *imapwire.Command) error {
	name := cmd.Args.(*imapwire.MailboxArgs).Mailbox
	if name == "INBOX" {
		return no(codeCannot, "INBOX cannot be deleted")
	}
	requestID := newRequestID()
	err := c.withRetry(func(ctx context.Context) error {
		_, err := c.srv.cfg.Metadata.DeleteMailbox(ctx, &metadatapb.DeleteMailboxRequest{
			RequestId: requestID, Account: c.accountName(), Name: name,
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, codeNonExistent, "delete "+strconv.Quote(name))
	}
	return nil
}

// cmdRename: RFC 9051 6.3.6.
func (c *conn) cmdRename(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.RenameArgs)
	to := strings.TrimSuffix(args.To, string(delimiter))
	if !validMailboxName(to) || to == "INBOX" {
		return no(codeCannot, "Invalid target mailbox name")
	}
	requestID := newRequestID()
	err := c.withRetry(func(ctx context.Context) error {
		_, err := c.srv.cfg.Metadata.RenameMailbox(ctx, &metadatapb.RenameMailboxRequest{
			RequestId: requestID, Account: c.accountName(), From: args.From, To: to,
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, codeNonExistent, "rename "+strconv.Quote(args.From))
	}
	return nil
}

// cmdSubscribe: SUBSCRIBE and UNSUBSCRIBE, RFC 9051 6.3.7 and 6.3.8.
func (c *conn) cmdSubscribe(cmd *imapwire.Command) error {
	name := cmd.Args.(*imapwire.MailboxArgs).Mailbox
	requestID := newRequestID()
	err := c.withRetry(func(ctx context.Context) error {
		_, err := c.srv.cfg.Metadata.SetSubscribed(ctx, &metadatapb.SetSubscribedRequest{
			RequestId: requestID, Account: c.accountName(), Name: name, Subscribed: cmd.Name == "SUBSCRIBE",
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, codeNonExistent, strings.ToLower(cmd.Name)+" "+strconv.Quote(name))
	}
	return nil
}

// getMailbox looks a mailbox of the account up by name.
func (c *conn) getMailbox(name, notFoundCode string) (*metadatapb.Mailbox, error) {
	var mb *metadatapb.Mailbox
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		mb, err = c.srv.cfg.Metadata.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: c.accountName(), Name: name})
		return err
	})
	if err != nil {
		return nil, rpcStatus(err, notFoundCode, "mailbox "+strconv.Quote(name))
	}
	return mb, nil
}

// cmdStatus: RFC 9051 6.3.11, with SIZE and DELETED (RFC 9051), APPENDLIMIT (RFC 7889).
func (c *conn) cmdStatus(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.StatusArgs)
	mb, err := c.getMailbox(args.Mailbox, codeNonExistent)
	if err != nil {
		return err
	}
	if mb.GetNoselect() {
		return no(codeNonExistent, "Mailbox cannot be selected")
	}
	items := make([]string, 0, 2*len(args.Items))
	for _, item := range args.Items {
		var value string
		switch item {
		case "MESSAGES":
			value = strconv.FormatUint(uint64(mb.GetMessages()), 10)
		case "UIDNEXT":
			value = strconv.FormatUint(uint64(mb.GetUidNext()), 10)
		case "UIDVALIDITY":
			value = strconv.FormatUint(uint64(mb.GetUidValidity()), 10)
		case "UNSEEN":
			value = strconv.FormatUint(uint64(mb.GetUnseen()), 10)
		case "SIZE":
			value = strconv.FormatUint(mb.GetSize(), 10)
		case "RECENT": // RFC 3501 only
			value = strconv.FormatUint(uint64(mb.GetRecent()), 10)
		case "APPENDLIMIT":
			value = strconv.FormatInt(c.srv.cfg.MaxMessageSize, 10)
		case "DELETED":
			deleted, err := c.countDeleted(mb)
			if err != nil {
				return err
			}
			value = strconv.Itoa(deleted)
		default:
			return bad("", "Unsupported STATUS item "+item)
		}
		items = append(items, item, value)
	}
	line := c.encoder().AppendAString([]byte("STATUS "), mb.GetName())
	line = append(line, " ("+strings.Join(items, " ")+")"...)
	c.untaggedBytes(line)
	return nil
}

// countDeleted counts the messages of mb that have \Deleted (STATUS DELETED, RFC 9051 6.3.11).
func (c *conn) countDeleted(mb *metadatapb.Mailbox) (int, error) {
	ctx, cancel := c.rpcContext()
	defer cancel()
	resp, err := c.srv.cfg.Metadata.ListMessages(ctx, &metadatapb.ListMessagesRequest{Account: c.accountName(), MailboxId: mb.GetId()})
	if err != nil {
		return 0, rpcStatus(err, codeNonExistent, "list messages")
	}
	n := 0
	for _, flags := range resp.GetFlags() {
		if slices.Contains(flags.GetFlags(), `\Deleted`) {
			n++
		}
	}
	return n, nil
}
