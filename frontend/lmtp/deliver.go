package lmtp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/sieve"
)

// LMTPData receives the message once for all recipients and answers each (RFC 2033 4.2:
// after the final ".", one reply per successful RCPT, in RCPT order). See the package doc
// for the steps and invariants.
func (s *session) LMTPData(r io.Reader, replies smtp.StatusCollector) error {
	s.mu.Lock()
	env := s.env
	env.rcpts = slices.Clone(env.rcpts)
	s.mu.Unlock()
	m := s.srv.metrics
	start := time.Now()
	err := s.lmtpData(r, countingReplies{replies, m}, env)
	m.observeData(len(env.rcpts), err, start)
	return err
}

// lmtpData is LMTPData on a snapshot of the envelope.
func (s *session) lmtpData(r io.Reader, replies smtp.StatusCollector, env envelope) error {
	if len(env.rcpts) == 0 {
		// RFC 2033 4.2 with RFC 5321 3.3: DATA needs a successful RCPT; go-smtp checks it,
		// and an RSET that raced a BDAT transfer leaves none.
		return errNoRecipients
	}
	now := time.Now()
	spool, err := blobstore.NewSpillingSpool(s.srv.cfg.SpoolDir, spoolMemory, s.srv.cfg.MaxMessageSize+maxTraceBytes)
	if err != nil {
		s.log.Warn("lmtp: spool", "err", err)
		return errStorage
	}
	defer spool.Close()
	trace := s.traceFields(&env, now)
	if _, err := spool.Write(trace); err != nil {
		s.log.Warn("lmtp: spool", "err", err)
		return errStorage
	}
	bodyHash := sha256.New()
	var content contentCheck
	if _, err := io.Copy(io.MultiWriter(spool, bodyHash, &content), r); err != nil {
		if errors.Is(err, blobstore.ErrTooLarge) || errors.Is(err, smtp.ErrDataTooLarge) {
			return smtp.ErrDataTooLarge // RFC 1870 6: 552 5.3.4
		}
		var reply *smtp.SMTPError
		if errors.As(err, &reply) {
			return reply
		}
		// The connection failed, or the client sent RSET during BDAT: nothing was stored.
		s.log.Debug("lmtp: message transfer failed", "err", err)
		return errStorage
	}
	binaryMIME := env.opts.Body == smtp.BodyBinaryMIME
	if content.nul && !binaryMIME {
		return errNUL // RFC 5321 4.5.2 and RFC 3030 3
	}
	if content.eightBit && env.opts.Body == smtp.Body7Bit && !env.opts.UTF8 {
		// RFC 6152 3: a client that declared BODY=7BIT sent 8-bit data. Without a BODY
		// parameter 8-bit data is taken as it comes: MTAs relay undeclared 8-bit mail as
		// received (Postfix without strict_8bitmime), and refusing it here would bounce
		// mail the MTA accepted.
		return err8Bit
	}

	// The filer's lookups for all recipients run while the message is parsed.
	var prepared any
	prepareDone := make(chan struct{})
	if preparer, ok := s.srv.cfg.Filer.(Preparer); ok {
		var all []Recipient
		for _, rs := range env.rcpts {
			all = append(all, rs.accounts...)
		}
		go func() {
			defer close(prepareDone)
			ctx, cancel := context.WithTimeout(s.ctx, rpcTimeout)
			defer cancel()
			prepared = preparer.Prepare(ctx, all)
		}()
	} else {
		close(prepareDone)
	}
	nm, err := ingest.NewMessage(env.rcpts[0].accounts[0].Tenant, spool, now, nil)
	<-prepareDone
	if err != nil {
		s.log.Warn("lmtp: parse message", "err", err)
		return errStorage
	}
	fields := message.Fields(nm.GetStructure().GetHeader())
	msg := &Message{From: env.from, Fields: fields, Structure: nm.GetStructure(), Size: spool.Size(), Verdict: SpamVerdict(fields),
		Now: now, Prepared: prepared, spool: spool, trace: int64(len(trace))}
	for _, rs := range env.rcpts {
		msg.Recipients = append(msg.Recipients, rs.address)
	}

	// Filing first, so that the bodies stored are those some recipient needs.
	type filed struct {
		rcpt    Recipient
		targets []Target
		err     error
	}
	plans := make([][]filed, len(env.rcpts))
	for i, rs := range env.rcpts {
		for _, rcpt := range rs.accounts {
			ctx, cancel := context.WithTimeout(s.ctx, rpcTimeout)
			targets, err := s.srv.cfg.Filer.File(ctx, rcpt, msg)
			cancel()
			plans[i] = append(plans[i], filed{rcpt: rcpt, targets: targets, err: err})
		}
	}

	// The target mailboxes are looked up while the bodies are stored; the Appends go out
	// once the bodies are durable, all at once, so that the Raft log commits them together
	// (replication batches concurrent proposals) instead of one round trip each.
	var jobs []*appendJob
	var bodies []ingest.Body
	shared := map[string]bool{} // tenants storing the message as received
	for i, plan := range plans {
		for _, p := range plan {
			if p.err != nil {
				continue
			}
			var edited *variant
			for t, target := range p.targets {
				job := &appendJob{rcpt: i, account: p.rcpt, target: t, mailbox: target.Mailbox, flags: target.Flags}
				if len(target.HeaderEdits) > 0 && edited == nil {
					// One edited message per account: every target of its script run
					// carries the same edits (sievefiler.go).
					if edited = s.edited(spool, p.rcpt, target.HeaderEdits, now); edited != nil {
						defer edited.spool.Close()
						bodies = append(bodies, ingest.Body{Key: edited.nm.GetBlobKey(), Spool: edited.spool})
					}
				}
				if len(target.HeaderEdits) > 0 && edited != nil {
					job.body = edited
				} else if !shared[p.rcpt.Tenant] {
					shared[p.rcpt.Tenant] = true
					bodies = append(bodies, ingest.Body{Key: blobstore.Key(p.rcpt.Tenant, spool.Sum()), Spool: spool})
				}
				jobs = append(jobs, job)
			}
		}
	}
	var stored *ingest.Stored
	var storeErr error
	storeDone := make(chan struct{})
	go func() {
		defer close(storeDone)
		if len(bodies) > 0 {
			stored, storeErr = s.srv.ingest.Store(s.ctx, bodies, s.log)
		}
	}()
	mailboxes := s.lookUpMailboxes(jobs)
	<-storeDone
	if storeErr != nil {
		return errStorage
	}
	sum, hash := spool.Sum(), bodyHash.Sum(nil)
	parallel(len(jobs), maxConcurrentAppends, func(j int) {
		job := jobs[j]
		mb := mailboxes[[2]string{job.account.Account, job.mailbox}]
		if mb.err != nil {
			job.err = mb.err
			return
		}
		job.err = s.deliver(&env, stored, nm, sum, job, mb.mailbox, hash)
	})

	// An account's error is that of its first target that failed.
	accountErr := make([]map[string]error, len(env.rcpts))
	for _, job := range jobs {
		if job.err == nil {
			continue
		}
		if accountErr[job.rcpt] == nil {
			accountErr[job.rcpt] = map[string]error{}
		}
		if _, seen := accountErr[job.rcpt][job.account.Account]; !seen {
			accountErr[job.rcpt][job.account.Account] = job.err
		}
	}
	for i, rs := range env.rcpts {
		var temporary, permanent error
		delivered := false
		for _, p := range plans[i] {
			err := p.err
			if err == nil {
				err = accountErr[i][p.rcpt.Account]
			}
			if err == nil {
				// The recipient's copies are stored: the filer's work for after that.
				msg.runDelivered(s.ctx, p.rcpt)
			}
			var reply *smtp.SMTPError
			switch {
			case err == nil:
				delivered = true
			case errors.As(err, &reply) && reply.Code/100 == 5:
				permanent = err
			case errors.As(err, &reply):
				temporary = err
			default:
				s.log.Warn("lmtp: file message", "account", p.rcpt.Account, "err", err)
				temporary = errStorage
			}
		}
		switch {
		case temporary != nil:
			// The MTA retries the recipient whole; what committed dedups.
			replies.SetStatus(rs.address, temporary)
		case permanent != nil && !delivered:
			replies.SetStatus(rs.address, permanent)
		default:
			if permanent != nil {
				s.log.Warn("lmtp: an account of the recipient refused the message", "address", rs.address, "err", permanent)
			}
			replies.SetStatus(rs.address, nil)
		}
	}
	return nil
}

// maxConcurrentAppends bounds the metadata calls one transaction has in flight.
const maxConcurrentAppends = 16

// appendJob is one Append of a transaction: a target of an account of a recipient.
type appendJob struct {
	rcpt    int // index into the envelope's recipients
	account Recipient
	target  int // index among the account's targets, part of the dedup key
	mailbox string
	flags   []string
	body    *variant // the message as the account's Sieve edits made it; nil: as received
	err     error
}

// variant is the message with an account's Sieve header edits applied (RFC 5293), stored as a
// body of its own.
type variant struct {
	spool *blobstore.Spool
	nm    *metadatapb.NewMessage
}

// edited returns the message with edits applied for rcpt, or nil when they cannot be
// applied: the message is then stored as received, and the failure logged.
func (s *session) edited(spool *blobstore.Spool, rcpt Recipient, edits []sieve.HeaderEdit, now time.Time) *variant {
	dst, err := s.editedSpool(spool, edits)
	if err == nil {
		var nm *metadatapb.NewMessage
		if nm, err = ingest.NewMessage(rcpt.Tenant, dst, now, nil); err == nil {
			return &variant{spool: dst, nm: nm}
		}
		dst.Close()
	}
	s.log.Warn("lmtp: sieve header edits not applied", "account", rcpt.Account, "edits", len(edits), "err", err)
	return nil
}

// parallel runs fn(0) .. fn(n-1), at most limit at once, and returns when all have.
func parallel(n, limit int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// deliver appends the message to one target of an account, with the target's dedup key.
func (s *session) deliver(env *envelope, stored *ingest.Stored, nm *metadatapb.NewMessage, sum [sha256.Size]byte, job *appendJob, mb *metadatapb.Mailbox, bodyHash []byte) error {
	rcpt := job.account
	var m *metadatapb.NewMessage
	if job.body != nil {
		m = proto.Clone(job.body.nm).(*metadatapb.NewMessage)
	} else {
		m = proto.Clone(nm).(*metadatapb.NewMessage)
		m.BlobKey = blobstore.Key(rcpt.Tenant, sum)
	}
	m.Flags = job.flags
	req := &metadatapb.AppendRequest{
		RequestId:          newID(),
		Account:            rcpt.Account,
		MailboxId:          mb.GetId(),
		Messages:           []*metadatapb.NewMessage{m},
		DedupKey:           dedupKey(env.from, rcpt, job.target, bodyHash),
		DedupWindowSeconds: rcpt.Settings.GetDedupWindowSeconds(),
	}
	resp, err := stored.Append(s.ctx, req, s.withRetry)
	if err != nil {
		return s.appendError(rcpt, err)
	}
	if resp.GetDuplicate() {
		s.srv.metrics.duplicates.Add(1)
	}
	s.log.Info("lmtp: delivered", "account", rcpt.Account, "mailbox", mb.GetName(), "uid", resp.GetUids(), "duplicate", resp.GetDuplicate())
	return nil
}

// appendError maps a failed Append to the recipient's reply.
func (s *session) appendError(rcpt Recipient, err error) error {
	if status.Code(err) == codes.ResourceExhausted {
		// The quota filled between RCPT and DATA (RFC 3463 X.2.2).
		if rcpt.Settings.GetQuotaPermanent() {
			return errOverQuotaPerm
		}
		return errOverQuotaTemp
	}
	if !errors.Is(err, ingest.ErrBlobStore) {
		s.log.Warn("lmtp: append", "account", rcpt.Account, "err", err)
	}
	return errStorage
}

// lookedUp is the mailbox a target's name resolved to, or the error that fails the target.
type lookedUp struct {
	mailbox *metadatapb.Mailbox
	err     error
}

// lookUpMailboxes looks up the mailboxes the jobs name, each (account, name) once and all
// at once.
func (s *session) lookUpMailboxes(jobs []*appendJob) map[[2]string]lookedUp {
	var names [][2]string
	seen := map[[2]string]bool{}
	for _, job := range jobs {
		name := [2]string{job.account.Account, job.mailbox}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	found := make([]lookedUp, len(names))
	parallel(len(names), maxConcurrentAppends, func(i int) {
		mb, err := s.mailbox(names[i][0], names[i][1])
		found[i] = lookedUp{mailbox: mb, err: err}
	})
	mailboxes := make(map[[2]string]lookedUp, len(names))
	for i, name := range names {
		mailboxes[name] = found[i]
	}
	return mailboxes
}

// mailbox returns the account's mailbox of that name, or its INBOX when there is none that
// can hold messages.
func (s *session) mailbox(account, name string) (*metadatapb.Mailbox, error) {
	var mb *metadatapb.Mailbox
	err := s.withRetry(func(ctx context.Context) error {
		var err error
		mb, err = s.srv.cfg.Metadata.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: account, Name: name})
		return err
	})
	if (status.Code(err) == codes.NotFound || mb.GetNoselect()) && !strings.EqualFold(name, "INBOX") {
		return s.mailbox(account, "INBOX")
	}
	if err != nil {
		s.log.Warn("lmtp: look up mailbox", "account", account, "mailbox", name, "err", err)
		return nil, errStorage
	}
	return mb, nil
}

// dedupKey is what a retry of the same delivery repeats: the envelope sender, the recipient
// address and account, the target's index and the message as received. The trace fields
// are left out: their time and ID differ on every attempt.
func dedupKey(from string, rcpt Recipient, target int, bodyHash []byte) []byte {
	h := sha256.New()
	for _, part := range []string{from, strings.ToLower(rcpt.Address), rcpt.Account} {
		binary.Write(h, binary.BigEndian, uint32(len(part)))
		h.Write([]byte(part))
	}
	binary.Write(h, binary.BigEndian, uint32(target))
	h.Write(bodyHash)
	return h.Sum(nil)
}

// metadataRetry is how delivery retries a metadata call: three attempts, since the MTA
// retries the whole delivery later. Canceled is not retried, unlike IMAP: the recipient is
// answered 4xx, and the MTA's retry of it is safe because the dedup key (dedupKey) makes
// the metadata service store the message once.
var metadataRetry = ingest.RetryPolicy{
	Retryable:   []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Aborted},
	Attempts:    3,
	CallTimeout: rpcTimeout,
}

// withRetry runs call under metadataRetry, for as long as the session lasts.
func (s *session) withRetry(call func(ctx context.Context) error) error {
	return metadataRetry.Do(s.ctx, call)
}

// traceFields are the header fields prepended to the message: Return-Path (RFC 5321
// 4.4: the final delivery adds it), Received (RFC 5321 4.4, "for" only with one recipient)
// and Delivered-To with one recipient (per-recipient fields would need a body each).
func (s *session) traceFields(env *envelope, now time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("Return-Path: <" + env.from + ">\r\n")
	b.WriteString("Received: from " + heloName(s.conn.Hostname()))
	if addr, ok := s.conn.Conn().RemoteAddr().(*net.TCPAddr); ok {
		// RFC 5321 4.4 TCP-info: the address literal of the connection's source.
		if ip4 := addr.IP.To4(); ip4 != nil {
			b.WriteString(" ([" + ip4.String() + "])")
		} else {
			b.WriteString(" ([IPv6:" + addr.IP.String() + "])")
		}
	}
	// RFC 3848 and RFC 6531 4.3: the "with" protocol.
	protocol := "LMTP"
	if env.opts.UTF8 {
		protocol = "UTF8LMTP"
	}
	b.WriteString("\r\n\tby " + heloName(s.srv.cfg.Hostname) + " (Strata) with " + protocol + " id " + newID())
	if len(env.rcpts) == 1 {
		b.WriteString("\r\n\tfor <" + env.rcpts[0].address + ">")
	}
	b.WriteString("; " + traceTime(now) + "\r\n")
	if len(env.rcpts) == 1 {
		b.WriteString("Delivered-To: " + env.rcpts[0].address + "\r\n")
	}
	return b.Bytes()
}

// heloName is a domain or address literal as given, with any character that has no place
// in one (RFC 5321 4.1.3) dropped, so a client cannot shape the Received field.
func heloName(name string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '-', r == '_', r == ':', r == '[', r == ']':
			return r
		}
		return -1
	}, name)
	if clean == "" {
		return "unknown"
	}
	return clean
}

// contentCheck notes whether the message holds 8-bit or NUL bytes.
type contentCheck struct {
	eightBit, nul bool
}

func (c *contentCheck) Write(p []byte) (int, error) {
	if !c.nul && bytes.IndexByte(p, 0) >= 0 {
		c.nul = true
	}
	if !c.eightBit {
		for _, b := range p {
			if b >= 0x80 {
				c.eightBit = true
				break
			}
		}
	}
	return len(p), nil
}
