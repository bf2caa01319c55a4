package message

import (
	"strings"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// buildEnvelope builds the RFC 9051 7.5.2 envelope from a message header.
// Date, subject, in-reply-to and message-id are the first field of each name,
// unfolded, encoded-words left as they are.
func buildEnvelope(fields []HeaderField) *metadatapb.Envelope {
	env := &metadatapb.Envelope{}
	seen := map[string]bool{}
	for _, f := range fields {
		name := strings.ToLower(f.Name)
		switch name {
		case "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id":
		default:
			continue
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		v := f.Value()
		switch name {
		case "date":
			env.Date = v
		case "subject":
			env.Subject = v
		case "in-reply-to":
			env.InReplyTo = v
		case "message-id":
			env.MessageId = v
		case "from":
			env.From = parseAddressList(v)
		case "sender":
			env.Sender = parseAddressList(v)
		case "reply-to":
			env.ReplyTo = parseAddressList(v)
		case "to":
			env.To = parseAddressList(v)
		case "cc":
			env.Cc = parseAddressList(v)
		case "bcc":
			env.Bcc = parseAddressList(v)
		}
	}
	// RFC 9051 7.5.2: an absent or empty Sender or Reply-To takes the value
	// of From.
	if len(env.Sender) == 0 {
		env.Sender = cloneAddresses(env.From)
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = cloneAddresses(env.From)
	}
	return env
}

func cloneAddresses(list []*metadatapb.Address) []*metadatapb.Address {
	if len(list) == 0 {
		return nil
	}
	out := make([]*metadatapb.Address, len(list))
	for i, a := range list {
		out[i] = &metadatapb.Address{Name: a.Name, Adl: a.Adl, Mailbox: a.Mailbox, Host: a.Host}
	}
	return out
}

func envelopeCost(env *metadatapb.Envelope) int {
	n := len(env.Date) + len(env.Subject) + len(env.InReplyTo) + len(env.MessageId)
	for _, list := range [][]*metadatapb.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		for _, a := range list {
			n += len(a.Name) + len(a.Adl) + len(a.Mailbox) + len(a.Host) + 16
		}
	}
	return n
}
