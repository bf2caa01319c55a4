package outbound

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/sieve"
)

// Defaults of Policy.
const (
	// DefaultMaxRedirects is Pigeonhole's sieve_max_redirects.
	DefaultMaxRedirects = 4
	// DefaultMaxHops is Postfix's hopcount_limit: a message with more
	// Received fields is looping (RFC 5321 6.3).
	DefaultMaxHops = 50
)

// ErrSuppressed is wrapped by a builder's error when loop protection or
// the auto-reply rules say no message goes out; it is not a failure.
var ErrSuppressed = errors.New("suppressed")

// Delivery is the delivered message an action answers.
type Delivery struct {
	// Sender is the envelope sender (MAIL FROM) of the delivered message;
	// "" is the null reverse-path <>.
	Sender string
	// Recipient is the account address the message was delivered to.
	Recipient string
	// Message is the message as the MTA handed it over, without the
	// Return-Path, Delivered-To and Received fields this store adds: a
	// Delivered-To naming Recipient means the message came through this
	// account before.
	Message []byte
	// Hostname names this host in Message-ID and Reporting-UA.
	Hostname string
	// Now is the time of delivery, for the Date field.
	Now time.Time
}

// Policy holds the site's rules for generated mail.
type Policy struct {
	// MaxRedirects caps the redirects sent for one delivered message;
	// 0 is DefaultMaxRedirects.
	MaxRedirects int
	// RedirectSender, when set, is the envelope sender of redirects instead
	// of the original one (RFC 5228 4.2 leaves the choice to the site); a
	// message from <> is always redirected from <>.
	RedirectSender string
	// Postmaster is the From of rejection notices; "" is postmaster at the
	// recipient's domain.
	Postmaster string
	// MaxHops is the most Received fields a message to redirect may have;
	// 0 is DefaultMaxHops.
	MaxHops int
}

// Outgoing is a message to Enqueue.
type Outgoing struct {
	Kind     sieve.ActionKind
	Envelope Envelope
	Message  []byte
}

// Skipped is an action that sends nothing, and why.
type Skipped struct {
	Kind   sieve.ActionKind
	Reason string
}

// Build turns the actions of a Sieve result into the messages to send:
// redirects, vacation replies and reject notices. Actions that send
// nothing (keep, fileinto, discard), ereject (refused in LMTP itself,
// RFC 5429 2.1) and actions that loop protection stops are left out; the
// latter come back in skipped with the reason, for the log.
func Build(d Delivery, actions []sieve.Action, p Policy) (out []Outgoing, skipped []Skipped) {
	maxRedirects := p.MaxRedirects
	if maxRedirects <= 0 {
		maxRedirects = DefaultMaxRedirects
	}
	redirects := 0
	for i := range actions {
		a := &actions[i]
		var o Outgoing
		var err error
		switch a.Kind {
		case sieve.ActionRedirect:
			redirects++
			if redirects > maxRedirects {
				err = fmt.Errorf("%w: more than %d redirects for one message", ErrSuppressed, maxRedirects)
				break
			}
			o, err = BuildRedirect(d, a.Address, p)
		case sieve.ActionVacation:
			if a.Vacation == nil || !a.Vacation.Send {
				continue
			}
			o, err = BuildVacation(d, a.Vacation)
		case sieve.ActionReject:
			o, err = BuildRejection(d, a.Reason, p)
		default:
			continue
		}
		if err != nil {
			skipped = append(skipped, Skipped{Kind: a.Kind, Reason: err.Error()})
			continue
		}
		out = append(out, o)
	}
	return out, skipped
}

// BuildVacation builds the reply of a vacation action (RFC 5230 5).
func BuildVacation(d Delivery, v *sieve.VacationReply) (Outgoing, error) {
	fields := message.Fields(d.Message)
	// The interpreter applied RFC 5230 4.5 already; check again what the
	// envelope and header say, as the last step before mail leaves.
	if err := autoReplyAllowed(d, fields); err != nil {
		return Outgoing{}, err
	}
	to := v.To
	if to == "" {
		to = d.Sender
	}
	if err := checkPath(to); err != nil {
		return Outgoing{}, fmt.Errorf("vacation recipient: %w", err)
	}
	if sameAddress(to, d.Recipient) {
		return Outgoing{}, fmt.Errorf("%w: vacation reply to the account's own address", ErrSuppressed)
	}
	from := v.From
	if from == "" {
		from = d.Recipient
	}
	fromField, err := formatAddress(from)
	if err != nil {
		return Outgoing{}, fmt.Errorf("vacation :from: %w", err)
	}
	var b headerBuilder
	b.add("Date", d.now().Format(time.RFC1123Z))                       // RFC 5230 5.2
	b.add("From", fromField)                                           // RFC 5230 5.4
	b.add("To", "<"+to+">")                                            // RFC 5230 5.5
	b.add("Subject", encodeText(truncateRunes(v.Subject, maxSubject))) // RFC 5230 5.3
	b.add("Message-ID", newMessageID(d.Hostname))
	// RFC 5230 5.8, RFC 5322 3.6.4: the reply threads under the original.
	if id := firstValue(fields, "Message-ID"); id != "" {
		b.add("In-Reply-To", id)
		refs := firstValue(fields, "References")
		if refs == "" {
			refs = firstValue(fields, "In-Reply-To")
		}
		b.add("References", strings.TrimSpace(refs+" "+id))
	}
	b.add("Auto-Submitted", "auto-replied") // RFC 5230 5.6, RFC 3834 5
	b.add("Precedence", "bulk")             // RFC 3834 3.1.8: marks it for older responders
	b.add("MIME-Version", "1.0")
	var msg []byte
	if v.MIME {
		// RFC 5230 4.4: the reason is a whole MIME entity, its own header
		// fields (Content-Type and the rest) completing ours.
		msg = append(b.bytes(), endLine(crlf([]byte(v.Body)))...)
	} else {
		body, cte := textBody(v.Body)
		b.add("Content-Type", "text/plain; charset=utf-8")
		b.add("Content-Transfer-Encoding", cte)
		msg = append(append(b.bytes(), "\r\n"...), body...)
	}
	// RFC 5230 5.1, RFC 3834 4: the reply goes from the null reverse-path
	// so that nothing answers it.
	return Outgoing{Kind: sieve.ActionVacation, Envelope: Envelope{From: "", To: []string{to}}, Message: msg}, nil
}

// autoReplyAllowed applies RFC 3834 2 and RFC 5230 4.5 to the delivered
// message: no automatic reply to <>, to our own account, to an automatic
// message, or to a list or bulk mail.
func autoReplyAllowed(d Delivery, fields []message.HeaderField) error {
	switch {
	case d.Sender == "":
		// RFC 3834 2: never a response to a null address.
		return fmt.Errorf("%w: the message came from the null sender <>", ErrSuppressed)
	case sameAddress(d.Sender, d.Recipient):
		return fmt.Errorf("%w: the message came from the account's own address", ErrSuppressed)
	case isSystemSender(d.Sender):
		return fmt.Errorf("%w: the sender %s is a mailer or list address", ErrSuppressed, d.Sender)
	}
	for _, f := range fields {
		v := strings.ToLower(f.Value())
		switch {
		case strings.EqualFold(f.Name, "Auto-Submitted"):
			// RFC 3834 5: anything but "no" is automatic.
			if kw, _, _ := strings.Cut(v, ";"); strings.TrimSpace(kw) != "no" {
				return fmt.Errorf("%w: Auto-Submitted: %s", ErrSuppressed, v)
			}
		case strings.EqualFold(f.Name, "Precedence"):
			// RFC 3834 2: Precedence bulk, list or junk gets no response.
			if v == "bulk" || v == "list" || v == "junk" {
				return fmt.Errorf("%w: Precedence: %s", ErrSuppressed, v)
			}
		case isListField(f.Name):
			// RFC 3834 2: no responses to list traffic, known by the list
			// fields of RFC 2369 and RFC 2919, as Pigeonhole does.
			return fmt.Errorf("%w: %s: %s", ErrSuppressed, f.Name, v)
		}
	}
	return nil
}

// isListField says whether a header field is one a mailing list adds.
func isListField(name string) bool {
	switch strings.ToLower(name) {
	case "list-id", "list-owner", "list-subscribe", "list-post", "list-unsubscribe", "list-help", "list-archive":
		return true
	}
	return false
}

// isSystemSender recognizes senders RFC 5230 4.6 (citing RFC 3834 2)
// names as not to answer: MAILER-DAEMON, owner-*, *-request, and
// LISTSERV and majordomo, as Pigeonhole also does.
func isSystemSender(addr string) bool {
	local, _, _ := strings.Cut(strings.ToLower(addr), "@")
	switch {
	case local == "mailer-daemon", local == "listserv", local == "majordomo",
		strings.HasPrefix(local, "owner-"), strings.HasSuffix(local, "-request"):
		return true
	}
	return false
}

// BuildRejection builds the notice of a reject action: an MDN (RFC 8098)
// with the disposition "deleted" (RFC 5429 2.2) from the null
// reverse-path to the envelope sender.
func BuildRejection(d Delivery, reason string, p Policy) (Outgoing, error) {
	switch {
	case d.Sender == "":
		// RFC 5321 4.5.5, RFC 3834 2: no notice about a message from <>.
		return Outgoing{}, fmt.Errorf("%w: the message came from the null sender <>", ErrSuppressed)
	case sameAddress(d.Sender, d.Recipient):
		return Outgoing{}, fmt.Errorf("%w: the message came from the account's own address", ErrSuppressed)
	}
	if err := checkPath(d.Sender); err != nil {
		return Outgoing{}, fmt.Errorf("reject notice recipient: %w", err)
	}
	if err := checkPath(d.Recipient); err != nil {
		return Outgoing{}, fmt.Errorf("reject notice: recipient: %w", err)
	}
	postmaster := p.Postmaster
	if postmaster == "" {
		_, domain, _ := strings.Cut(d.Recipient, "@")
		postmaster = "postmaster@" + domain
	}
	fields := message.Fields(d.Message)
	subject := firstValue(fields, "Subject")
	boundary := "strata-mdn-" + randomHex(12)

	var b headerBuilder
	b.add("Date", d.now().Format(time.RFC1123Z))
	b.add("From", "Mail Delivery Subsystem <"+postmaster+">")
	b.add("To", "<"+d.Sender+">")
	b.add("Subject", encodeText(truncateRunes("Automatically rejected mail"+subjectSuffix(subject), maxSubject)))
	b.add("Message-ID", newMessageID(d.Hostname))
	if id := firstValue(fields, "Message-ID"); id != "" {
		b.add("In-Reply-To", id)
		b.add("References", id)
	}
	b.add("Auto-Submitted", "auto-replied (rejected)") // RFC 3834 5
	b.add("Precedence", "bulk")
	b.add("MIME-Version", "1.0")
	// RFC 8098 3: a multipart/report (RFC 6522) of report-type
	// disposition-notification: a human part, the machine part, and the
	// original header.
	b.add("Content-Type", `multipart/report; report-type=disposition-notification; boundary="`+boundary+`"`)

	var body bytes.Buffer
	body.WriteString("This is a MIME-encapsulated message.\r\n\r\n")
	human, cte := textBody("Your message to <" + d.Recipient + "> was automatically rejected:\r\n" + reason + "\r\n")
	fmt.Fprintf(&body, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: %s\r\n\r\n", boundary, cte)
	body.Write(human)
	fmt.Fprintf(&body, "\r\n--%s\r\nContent-Type: message/disposition-notification\r\n\r\n", boundary)
	// RFC 8098 3.1, 3.2: the notification fields.
	host := d.Hostname
	if host == "" {
		host = "localhost"
	}
	fmt.Fprintf(&body, "Reporting-UA: %s; Strata\r\n", host)
	fmt.Fprintf(&body, "Final-Recipient: rfc822; %s\r\n", d.Recipient)
	if id := firstValue(fields, "Message-ID"); id != "" {
		fmt.Fprintf(&body, "Original-Message-ID: %s\r\n", id)
	}
	// RFC 5429 2.2: "deleted"; RFC 8098 3.2.6: automatic action, sent
	// without asking the user.
	body.WriteString("Disposition: automatic-action/MDN-sent-automatically; deleted\r\n")
	fmt.Fprintf(&body, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary)
	// RFC 6522 4: the original header only, not the whole message.
	body.Write(crlf(headerOf(d.Message)))
	fmt.Fprintf(&body, "\r\n--%s--\r\n", boundary)
	msg := append(append(b.bytes(), "\r\n"...), body.Bytes()...)
	// RFC 8098 2.1: an MDN goes from the null reverse-path.
	return Outgoing{Kind: sieve.ActionReject, Envelope: Envelope{From: "", To: []string{d.Sender}}, Message: msg}, nil
}

func subjectSuffix(subject string) string {
	if subject == "" {
		return ""
	}
	return ": " + subject
}

// RedirectedFromField is the field a redirect adds to name the account
// that redirected, as Pigeonhole does; finding the account in it again
// stops a loop.
const RedirectedFromField = "X-Sieve-Redirected-From"

// BuildRedirect builds the redirect of the delivered message to an
// address (RFC 5228 4.2): the message unchanged but for a Return-Path
// removed, a RedirectedFromField added, and a Message-ID when it had none.
func BuildRedirect(d Delivery, to string, p Policy) (Outgoing, error) {
	if err := checkPath(to); err != nil {
		return Outgoing{}, fmt.Errorf("redirect address: %w", err)
	}
	if sameAddress(to, d.Recipient) {
		return Outgoing{}, fmt.Errorf("%w: redirect to the account's own address", ErrSuppressed)
	}
	maxHops := p.MaxHops
	if maxHops <= 0 {
		maxHops = DefaultMaxHops
	}
	fields := message.Fields(d.Message)
	hops := 0
	for _, f := range fields {
		switch {
		case strings.EqualFold(f.Name, "Received"):
			hops++
		case strings.EqualFold(f.Name, RedirectedFromField) || strings.EqualFold(f.Name, "Delivered-To"):
			// RFC 5228 4.2: loop control by header fields. The message
			// went through this account before.
			if sameAddress(trimAngles(f.Value()), d.Recipient) {
				return Outgoing{}, fmt.Errorf("%w: the message already passed through %s (%s)", ErrSuppressed, d.Recipient, f.Name)
			}
		}
	}
	if hops > maxHops {
		// RFC 5321 6.3: too many Received fields means a loop.
		return Outgoing{}, fmt.Errorf("%w: %d Received fields, more than %d", ErrSuppressed, hops, maxHops)
	}
	// RFC 5228 4.2: the envelope sender is the site's choice, but <>
	// stays <> so that a bounce of a bounce cannot loop.
	from := d.Sender
	if from != "" && p.RedirectSender != "" {
		from = p.RedirectSender
	}
	if from != "" {
		if err := checkPath(from); err != nil {
			return Outgoing{}, fmt.Errorf("redirect envelope sender: %w", err)
		}
	}
	var b headerBuilder
	b.add(RedirectedFromField, "<"+d.Recipient+">")
	if firstValue(fields, "Message-ID") == "" {
		b.add("Message-ID", newMessageID(d.Hostname))
	}
	// RFC 5321 4.4: Return-Path belongs to final delivery; a message sent
	// on must not carry one.
	header := message.FilterHeader(headerOf(d.Message), []string{"Return-Path"}, true)
	msg := append(b.bytes(), crlf(header)...)
	msg = append(msg, crlf(d.Message[len(headerOf(d.Message)):])...)
	return Outgoing{Kind: sieve.ActionRedirect, Envelope: Envelope{From: from, To: []string{to}}, Message: msg}, nil
}

func (d Delivery) now() time.Time {
	if d.Now.IsZero() {
		return time.Now()
	}
	return d.Now
}

// headerBuilder writes header fields with CRLF line ends.
type headerBuilder struct{ buf bytes.Buffer }

func (b *headerBuilder) add(name, value string) {
	// A value is one field: line breaks from script text cannot start a
	// field of their own (RFC 5322 2.2).
	value = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(value)
	b.buf.WriteString(fold(name + ": " + value))
	b.buf.WriteString("\r\n")
}

// fold breaks a header field before white space so that lines stay within
// 78 characters where it can (RFC 5322 2.1.1, 2.2.3); encoded-words are
// separated by spaces, so a long encoded Subject folds too.
func fold(field string) string {
	const width = 78
	var out strings.Builder
	for len(field) > width {
		cut := strings.LastIndexByte(field[:width], ' ')
		if cut <= 0 {
			// No space early enough: break at the next one.
			if cut = strings.IndexByte(field[width:], ' '); cut < 0 {
				break
			}
			cut += width
		}
		out.WriteString(field[:cut])
		out.WriteString("\r\n")
		field = field[cut:] // the space starts the continuation line
	}
	out.WriteString(field)
	return out.String()
}

// maxSubject is how many characters of a subject a reply keeps, as
// Pigeonhole does: "Auto: " before a long subject must not grow it
// without bound.
const maxSubject = 256

func truncateRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func (b *headerBuilder) bytes() []byte { return bytes.Clone(b.buf.Bytes()) }

// headerOf returns the header of a message including the blank line that
// ends it, or the whole message when it has none.
func headerOf(msg []byte) []byte {
	for i := 0; i < len(msg); {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			break
		}
		line := msg[i : i+j+1]
		i += j + 1
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return msg[:i]
		}
	}
	return msg
}

// crlf turns bare LF and bare CR line ends into CRLF (RFC 5322 2.3).
func crlf(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// textBody returns a text with CRLF line ends, the last line ended too,
// quoted-printable when it is not 7-bit (RFC 2045 6.7), and its
// Content-Transfer-Encoding.
func textBody(s string) ([]byte, string) {
	body := endLine(crlf([]byte(s)))
	if isASCII(s) && !hasLongLine(body) {
		return body, "7bit"
	}
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	w.Write(body)
	w.Close()
	return buf.Bytes(), "quoted-printable"
}

// hasLongLine says whether a line is longer than the 998 characters
// RFC 5322 2.1.1 allows.
func hasLongLine(b []byte) bool {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\r\n"))
		if len(line) > 998 {
			return true
		}
		b = rest
	}
	return false
}

// encodeText makes an unstructured field value ASCII with RFC 2047
// encoded-words when it is not.
func encodeText(s string) string {
	if isASCII(s) {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// formatAddress renders an address or name-addr for a From field, with
// the display name RFC 2047-encoded when needed.
func formatAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	if err := checkPath(a.Address); err != nil {
		return "", err
	}
	return a.String(), nil
}

// endLine ends a text with CRLF unless it is empty or ends so already.
func endLine(b []byte) []byte {
	if len(b) == 0 || bytes.HasSuffix(b, []byte("\r\n")) {
		return b
	}
	return append(b, '\r', '\n')
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func firstValue(fields []message.HeaderField, name string) string {
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value()
		}
	}
	return ""
}

func trimAngles(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
}

// sameAddress compares addresses with the domain case-insensitive, and
// the local part too, as every mail store in practice does.
func sameAddress(a, b string) bool {
	return a != "" && strings.EqualFold(trimAngles(a), trimAngles(b))
}

func newMessageID(host string) string {
	if host == "" {
		host = "localhost"
	}
	return "<" + randomHex(16) + "@" + host + ">"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
