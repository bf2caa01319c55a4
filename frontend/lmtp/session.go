package lmtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Replies of this package, with their RFC 3463 enhanced status codes (RFC 2034).
var (
	// RFC 3463 X.1.1: bad destination mailbox address (unknown or disabled account).
	errUnknownUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	// RFC 3463 X.1.3: bad destination mailbox address syntax.
	errBadAddress = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	// RFC 3463 X.4.3: directory server failure (the metadata service did not answer).
	errDirectory = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 3}, Message: "Recipient lookup failed, try again later"}
	// RFC 3463 X.3.0: other mail system status (storage failed; the MTA retries).
	errStorage = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Could not store the message, try again later"}
	// RFC 6531 3.5: a non-ASCII address without SMTPUTF8 (RFC 6531 3.7.4 X.6.7).
	errUTF8Address = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "Non-ASCII address needs SMTPUTF8"}
	// RFC 3463 X.2.2 mailbox full: 452 when temporary (RFC 5321 4.5.3.1.10 allows 452 for
	// "insufficient system storage"), 552 when the tenant makes it permanent.
	errOverQuotaTemp = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
	errOverQuotaPerm = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"}
	// RFC 6152 3: 8-bit data needs BODY=8BITMIME; RFC 3030 3: NUL needs BODY=BINARYMIME.
	// RFC 3463 X.6.1: media not supported.
	err8Bit = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 1}, Message: "8-bit data in a message declared BODY=7BIT (RFC 6152)"}
	errNUL  = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 1}, Message: "NUL bytes need BODY=BINARYMIME (RFC 3030)"}
	// RFC 5321 3.3: "554 No valid recipients" (RFC 3463 X.5.1: invalid command).
	errNoRecipients = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	// RFC 2033 4.2 with RFC 3463 X.3.0, for a session whose server is shutting down.
	errShutdown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Shutting down, try again later"}
)

// session is one LMTP connection's state, driven by go-smtp: the envelope of the
// transaction in progress.
type session struct {
	srv    *Server
	conn   *smtp.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards inMail and env: go-smtp runs the BDAT transfer (LMTPData) in a goroutine
	// of its own while it reads the next commands, one of which may be RSET.
	mu     sync.Mutex
	inMail bool // between MAIL and the end of the transaction: Shutdown leaves it be
	env    envelope
}

// envelope is the transaction in progress: RFC 5321 3.3 MAIL and RCPT.
type envelope struct {
	from  string
	opts  smtp.MailOptions
	rcpts []*rcptState
}

// rcptState is an accepted RCPT: its address as given and the accounts it delivers to.
type rcptState struct {
	address  string
	accounts []Recipient
}

// newSession is go-smtp's Backend: a session per connection, after LHLO.
func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	ctx, cancel := context.WithCancel(context.Background())
	sess := &session{
		srv: s, conn: c, ctx: ctx, cancel: cancel,
		log: s.log.With("lmtp_remote", c.Conn().RemoteAddr().String()),
	}
	if !s.track(sess) {
		cancel()
		return nil, errShutdown
	}
	return sess, nil
}

// Mail: RFC 5321 4.1.1.2 (the null reverse-path "<>" arrives as "").
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if opts == nil {
		opts = &smtp.MailOptions{}
	}
	if !opts.UTF8 && !isASCII(from) {
		return errUTF8Address // RFC 6531 3.5
	}
	s.mu.Lock()
	s.inMail = true
	s.env = envelope{from: from, opts: *opts}
	s.mu.Unlock()
	return nil
}

// Rcpt resolves the recipient and checks its quota (RFC 2033 4.2: the reply to RCPT says
// whether the recipient is acceptable; RFC 5321 4.2.5).
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	err := s.rcpt(to)
	if err != nil {
		s.srv.metrics.rcptRefused[class(err)].Add(1)
	}
	return err
}

func (s *session) rcpt(to string) error {
	s.mu.Lock()
	opts := s.env.opts
	s.mu.Unlock()
	if !opts.UTF8 && !isASCII(to) {
		return errUTF8Address // RFC 6531 3.5
	}
	local, domain, ok := strings.Cut(to, "@")
	if !ok || local == "" || domain == "" {
		return errBadAddress
	}
	ctx, cancel := context.WithTimeout(s.ctx, rpcTimeout)
	defer cancel()
	resp, err := s.srv.cfg.Metadata.ResolveRecipient(ctx, &metadatapb.ResolveRecipientRequest{Address: to})
	if status.Code(err) == codes.NotFound && s.srv.cfg.Directory != nil {
		// An LDAP tenant's user who never logged in: provisioned now, then resolved.
		found, dirErr := s.srv.cfg.Directory.Resolve(ctx, to)
		switch {
		case dirErr != nil:
			s.log.Warn("resolve recipient in the account directory", "address", to, "err", dirErr)
			return errDirectory
		case found:
			resp, err = s.srv.cfg.Metadata.ResolveRecipient(ctx, &metadatapb.ResolveRecipientRequest{Address: to})
		}
	}
	switch {
	case status.Code(err) == codes.NotFound || status.Code(err) == codes.InvalidArgument:
		return errUnknownUser
	case err != nil:
		s.log.Warn("resolve recipient", "address", to, "err", err)
		return errDirectory
	}
	targets := resp.GetTargets()
	if len(targets) == 0 {
		targets = []*metadatapb.ResolvedAccount{{Account: resp.GetAccount(), Disabled: resp.GetDisabled(), OverQuota: resp.GetOverQuota()}}
	}
	st := &rcptState{address: to}
	for _, t := range targets {
		if t.GetDisabled() {
			continue
		}
		// RFC 1870 6 with RFC 3463 X.2.2: the declared SIZE does not fit the quota.
		full := t.GetOverQuota() || (t.StorageAvailable != nil && opts.Size > 0 && uint64(opts.Size) > t.GetStorageAvailable())
		if full {
			if resp.GetSettings().GetQuotaPermanent() {
				return errOverQuotaPerm
			}
			return errOverQuotaTemp
		}
		st.accounts = append(st.accounts, Recipient{
			Address: to, Account: t.GetAccount(), Tenant: resp.GetTenant(), Detail: resp.GetDetail(),
			Via: resp.GetVia(), Settings: resp.GetSettings(),
		})
	}
	if len(st.accounts) == 0 {
		return errUnknownUser
	}
	s.mu.Lock()
	s.env.rcpts = append(s.env.rcpts, st)
	s.mu.Unlock()
	return nil
}

// Data is never called in LMTP mode (go-smtp calls LMTPData); it fails every recipient alike.
func (s *session) Data(io.Reader) error {
	return errors.New("lmtp: DATA without LMTPData")
}

// Reset ends the transaction (RSET, a new LHLO, the end of DATA).
func (s *session) Reset() {
	s.mu.Lock()
	s.inMail = false
	s.env = envelope{}
	s.mu.Unlock()
	s.srv.mu.Lock()
	closing := s.srv.closing
	s.srv.mu.Unlock()
	if closing {
		// The transaction's replies are out; Shutdown waits for no idle connection.
		s.sayShutdown()
	}
}

// Logout is called once when the connection closes.
func (s *session) Logout() error {
	s.cancel()
	s.srv.untrack(s)
	return nil
}

// closeIfIdle closes the connection unless a transaction is in progress, and reports
// whether it did.
func (s *session) closeIfIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inMail {
		return false
	}
	s.sayShutdown()
	return true
}

// shutdownWriteTimeout bounds the write of the 421 that ends a connection at shutdown.
const shutdownWriteTimeout = 2 * time.Second

// sayShutdown tells the client that the server is going away and closes the connection:
// RFC 5321 3.8, a server that is shut down "SHOULD attempt to send a line containing a 421
// response code to the SMTP client before exiting" (LMTP keeps SMTP's replies, RFC 2033
// 4.1), with the enhanced code 4.3.0 (RFC 3463 3.5) of errShutdown. The MTA keeps the
// message queued and retries, on another frontend through the load balancer. The line
// is written from the shutting-down goroutine while the session's waits for a command; a
// socket write is whole, so it never lands inside another reply.
func (s *session) sayShutdown() {
	nc := s.conn.Conn()
	_ = nc.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
	ec := errShutdown.EnhancedCode
	_, _ = fmt.Fprintf(nc, "%d %d.%d.%d %s\r\n", errShutdown.Code, ec[0], ec[1], ec[2], errShutdown.Message)
	nc.Close()
}

// track adds a session to the server's, unless it is shutting down.
func (s *Server) track(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// traceTime formats t as an RFC 5322 3.3 date-time.
func traceTime(t time.Time) string {
	return t.Format("Mon, 02 Jan 2006 15:04:05 -0700")
}
