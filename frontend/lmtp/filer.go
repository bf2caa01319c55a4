package lmtp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/sieve"
)

// Recipient is an accepted envelope recipient, resolved to its account.
type Recipient struct {
	Address  string // as given in RCPT TO
	Account  string // the canonical account email
	Tenant   string
	Detail   string // the RFC 5233 subaddress detail, "" if none
	Via      string // "account", "alias" or "catchall"
	Settings *metadatapb.DeliverySettings
}

// Message is what a Filer may look at: the envelope and the parsed message as stored (with
// the trace fields this server added).
type Message struct {
	From      string // the envelope sender, "" for the null reverse-path
	Fields    []message.HeaderField
	Structure *metadatapb.MessageStructure
	Size      int64
	Verdict   Verdict
	// Now is the time of delivery; Recipients the RCPT TO addresses of the transaction.
	Now        time.Time
	Recipients []string
	// Prepared is what the Filer's Prepare returned for this message (Preparer).
	Prepared any

	spool *blobstore.Spool // the message as stored
	trace int64            // the bytes of trace fields this server put before it
	raw   []byte           // read from spool on first use
	// scanned is set once rspamd was asked (SieveFiler), with its score or error.
	scanned bool
	score   sieve.Score
	scanErr error
	// delivered are the callbacks to run once a recipient's targets are stored.
	delivered map[[2]string][]func(context.Context)
}

// Raw is the message as stored, with the trace fields this server added. It is read into
// memory once.
func (m *Message) Raw() ([]byte, error) {
	if m.raw == nil {
		if m.spool == nil {
			return nil, errors.New("lmtp: message has no content")
		}
		raw, err := io.ReadAll(m.spool.Reader())
		if err != nil {
			return nil, err
		}
		m.raw = raw
	}
	return m.raw, nil
}

// Original is the message as the MTA handed it over: Raw without the trace fields this
// server added (what outbound.Delivery.Message wants).
func (m *Message) Original() ([]byte, error) {
	raw, err := m.Raw()
	if err != nil {
		return nil, err
	}
	return raw[min(m.trace, int64(len(raw))):], nil
}

// original streams the message as the MTA handed it over.
func (m *Message) original() io.Reader {
	if m.raw != nil || m.spool == nil {
		raw, _ := m.Original()
		return bytes.NewReader(raw)
	}
	return io.NewSectionReader(m.spool, m.trace, m.spool.Size()-m.trace)
}

// OnDelivered registers fn to run once rcpt's targets are all stored (after its Appends
// committed), and not when its delivery fails. A Filer calls it from File.
func (m *Message) OnDelivered(rcpt Recipient, fn func(context.Context)) {
	if m.delivered == nil {
		m.delivered = map[[2]string][]func(context.Context){}
	}
	key := [2]string{rcpt.Address, rcpt.Account}
	m.delivered[key] = append(m.delivered[key], fn)
}

func (m *Message) runDelivered(ctx context.Context, rcpt Recipient) {
	key := [2]string{rcpt.Address, rcpt.Account}
	fns := m.delivered[key]
	delete(m.delivered, key)
	for _, fn := range fns {
		fn(ctx)
	}
}

// Target is one mailbox of the recipient's account that gets a copy, with its flags.
type Target struct {
	Mailbox string // the full name in the account's personal namespace
	Flags   []string
	// HeaderEdits are the account's Sieve editheader changes (RFC 5293), replayed on the
	// message stored for this target; a target with edits gets a body of its own.
	HeaderEdits []sieve.HeaderEdit
}

// A Filer decides where a message goes for one recipient: the target mailboxes, or an error
// that refuses it (an *smtp.SMTPError is sent as is; anything else is a temporary failure).
// No targets means the message is discarded and the recipient answered 250. File is called
// for one message's recipients one after the other, never at once, so it may cache what is
// per message in msg. A target
// mailbox that does not exist (or cannot hold messages) is replaced by INBOX.
type Filer interface {
	File(ctx context.Context, rcpt Recipient, msg *Message) ([]Target, error)
}

// A Preparer is a Filer that looks up what File needs for all recipients of a message at
// once: LMTPData calls Prepare once per message, while it parses the message after DATA,
// and hands what it returns to each File as Message.Prepared. It is looked up anew for
// every message, so a change made before a transaction's DATA ended is seen by it.
type Preparer interface {
	Prepare(ctx context.Context, rcpts []Recipient) any
}

// Spam actions of DeliverySettings.spam_action.
const (
	spamFile   = "file"
	spamTag    = "tag"
	spamReject = "reject"
)

// junkKeyword marks a message the filter called spam when it stays out of \Junk.
const junkKeyword = "$Junk"

// DefaultFiler files by the spam verdict (the tenant's spam_action: "file", the default,
// into the account's \Junk special-use mailbox (RFC 6154); "tag" into the normal target with
// $Junk; "reject" refuses at or above spam_reject_score and files below it), then by the
// subaddress detail into the mailbox of that name if it exists and can hold messages, as
// Dovecot's lmtp_save_to_detail_mailbox, and otherwise into INBOX.
type DefaultFiler struct {
	Metadata metadatapb.MetadataClient
}

// File implements Filer.
func (f DefaultFiler) File(ctx context.Context, rcpt Recipient, msg *Message) ([]Target, error) {
	if msg.Verdict.Spam {
		switch rcpt.Settings.GetSpamAction() {
		case spamReject:
			if msg.Verdict.HasScore && msg.Verdict.Score >= rcpt.Settings.GetSpamRejectScore() {
				// RFC 3463 X.7.1: delivery not authorized, message refused.
				return nil, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message refused as spam"}
			}
		case spamTag:
			return []Target{{Mailbox: normalMailbox(rcpt), Flags: []string{junkKeyword}}}, nil
		}
		junk, err := f.junkMailbox(ctx, rcpt.Account)
		if err != nil {
			return nil, err
		}
		if junk == "" {
			return []Target{{Mailbox: normalMailbox(rcpt), Flags: []string{junkKeyword}}}, nil
		}
		return []Target{{Mailbox: junk}}, nil
	}
	return []Target{{Mailbox: normalMailbox(rcpt)}}, nil
}

// normalMailbox is the mailbox named by the detail when it exists, else INBOX.
func normalMailbox(rcpt Recipient) string {
	if rcpt.Detail == "" || strings.EqualFold(rcpt.Detail, "INBOX") {
		return "INBOX"
	}
	// Whether it exists is checked when the message is stored; a missing one falls back to
	// INBOX there.
	return rcpt.Detail
}

// junkMailbox is the name of the account's mailbox with the \Junk special use (RFC 6154
// 2), or "".
func (f DefaultFiler) junkMailbox(ctx context.Context, account string) (string, error) {
	return specialUseMailbox(ctx, f.Metadata, account, `\Junk`)
}
