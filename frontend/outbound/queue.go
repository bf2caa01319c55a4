package outbound

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mail/strata/sieve"
)

// Defaults of Config.
const (
	DefaultMaxMessages = 10000
	DefaultMaxBytes    = 1 << 30
	// DefaultMaxAge is how long a message is retried, Postfix's
	// maximal_queue_lifetime.
	DefaultMaxAge     = 5 * 24 * time.Hour
	DefaultMinBackoff = time.Minute
	DefaultMaxBackoff = time.Hour
	DefaultTimeout    = 2 * time.Minute
	// MaxRecipients bounds the recipients of one queued message.
	MaxRecipients = 100
	// batchSize is how many due messages one relay connection carries.
	batchSize = 100
)

// ErrSpoolFull is wrapped by Enqueue's error when the spool holds
// MaxMessages messages or MaxBytes bytes.
var ErrSpoolFull = errors.New("outbound spool full")

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("outbound queue closed")

// Envelope is the SMTP envelope of a message to send.
type Envelope struct {
	// From is the reverse-path of MAIL FROM; "" is the null reverse-path
	// <> (RFC 5321 4.5.5), which auto-replies and notices use.
	From string
	// To are the forward-paths of RCPT TO, at least one.
	To []string
}

func (e Envelope) check() error {
	if e.From != "" {
		if err := checkPath(e.From); err != nil {
			return fmt.Errorf("envelope sender: %w", err)
		}
	}
	if len(e.To) == 0 {
		return errors.New("envelope has no recipient")
	}
	if len(e.To) > MaxRecipients {
		return fmt.Errorf("envelope has %d recipients, at most %d", len(e.To), MaxRecipients)
	}
	for _, to := range e.To {
		if err := checkPath(to); err != nil {
			return fmt.Errorf("envelope recipient: %w", err)
		}
	}
	return nil
}

// checkPath accepts an address to put between < and > in MAIL FROM or
// RCPT TO (RFC 5321 4.1.2): local@domain, no space, control characters or
// angle brackets, at most 256 octets (RFC 5321 4.5.3.1.3).
func checkPath(addr string) error {
	if len(addr) > 256 {
		return fmt.Errorf("address longer than 256 octets")
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return fmt.Errorf("%q is not local@domain", addr)
	}
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("%q contains %q", addr, c)
		}
	}
	return nil
}

// TLSMode says how the connection to the relay is protected.
type TLSMode string

const (
	// TLSNone never uses TLS.
	TLSNone TLSMode = "none"
	// TLSMay uses STARTTLS (RFC 3207) when the relay offers it, with the
	// certificate verified, and plaintext when it does not.
	TLSMay TLSMode = "may"
	// TLSStartTLS requires STARTTLS with a verified certificate.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit connects with TLS from the first byte (RFC 8314 3.3).
	TLSImplicit TLSMode = "tls"
)

// ParseTLSMode reads a --smtp-relay-tls value.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(s); m {
	case TLSNone, TLSMay, TLSStartTLS, TLSImplicit:
		return m, nil
	case "":
		return TLSMay, nil
	}
	return "", fmt.Errorf("relay TLS mode %q: want none, may, starttls or tls", s)
}

// LoadCAFile reads PEM certificates to verify the relay with instead of the
// system roots.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("relay CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Config configures a Queue.
type Config struct {
	// Relay is the submission server, HOST:PORT.
	Relay string
	// TLS is how to protect the connection; "" is TLSMay.
	TLS TLSMode
	// RootCAs verify the relay's certificate; nil is the system roots.
	RootCAs *x509.CertPool
	// Username and Password, when Username is set, log in with AUTH PLAIN
	// (RFC 4954, RFC 4616).
	Username, Password string
	// HeloName is the name given in EHLO; "" is the host name.
	HeloName string
	// SpoolDir holds the queue; it survives restarts.
	SpoolDir string
	// MaxMessages and MaxBytes bound the spool; 0 is the default.
	MaxMessages int
	MaxBytes    int64
	// MaxAge is how long a message is retried before it is given up.
	MaxAge time.Duration
	// MinBackoff is the wait after the first failed attempt; it doubles
	// with every further failure up to MaxBackoff, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds connecting and each SMTP command.
	Timeout time.Duration
	Logger  *slog.Logger
}

func (c *Config) fill() error {
	if c.Relay == "" {
		return errors.New("outbound: no relay given")
	}
	if _, _, err := net.SplitHostPort(c.Relay); err != nil {
		return fmt.Errorf("outbound relay %q: want HOST:PORT: %w", c.Relay, err)
	}
	mode, err := ParseTLSMode(string(c.TLS))
	if err != nil {
		return err
	}
	c.TLS = mode
	if c.HeloName == "" {
		c.HeloName, _ = os.Hostname()
		if c.HeloName == "" {
			c.HeloName = "localhost"
		}
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats are the queue's counters since New, for metrics.
type Stats struct {
	Queued uint64 // messages accepted by Enqueue
	// Sent and Failed count messages done with: Sent those the relay
	// accepted for at least one recipient, Failed those with at least one
	// recipient given up (5xx, or older than MaxAge). A message with both
	// counts in both.
	Sent    uint64
	Retried uint64 // attempts that failed temporarily and were rescheduled
	Failed  uint64
	// Pending and PendingBytes are what the spool holds now.
	Pending      int
	PendingBytes int64
}

// entry is a queued message with its retry state, which lives in memory:
// after a restart every message is tried at once and its backoff starts
// over, but its age (MaxAge) counts from when it was first queued.
type entry struct {
	spooled
	attempts int
	next     time.Time
	// sent and dropped say whether some recipient got the message, and
	// whether some was given up, for the counters when the message is done.
	sent, dropped bool
}

// Queue is the outbound mail queue: a spool directory and one sender.
type Queue struct {
	cfg   Config
	spool *spool
	log   *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	count   int   // entries plus reservations of Enqueue calls under way
	bytes   int64 // their sizes
	closed  bool

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	queued, sent, retried, failed atomic.Uint64
}

// New opens the spool, takes up the messages it holds and starts sending.
func New(cfg Config) (*Queue, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	sp, err := openSpool(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		cfg:     cfg,
		spool:   sp,
		log:     cfg.Logger.With("component", "outbound"),
		entries: map[string]*entry{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	found, err := sp.load(func(name string, err error) {
		q.log.Error("outbound spool file unreadable, moved to bad/", "file", name, "err", err)
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, m := range found {
		q.entries[m.id] = &entry{spooled: m, next: now}
		q.count++
		q.bytes += m.size
	}
	if len(found) > 0 {
		q.log.Info("outbound queue resumed", "messages", len(found), "bytes", q.bytes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.cancel = cancel
	go q.run(ctx)
	return q, nil
}

// Enqueue stores a message in the spool for the sender; it returns once the
// message is durable and never waits for the relay.
func (q *Queue) Enqueue(ctx context.Context, env Envelope, msg []byte) error {
	if err := env.check(); err != nil {
		return fmt.Errorf("outbound: %w", err)
	}
	if len(msg) == 0 {
		return errors.New("outbound: empty message")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	size := int64(len(msg))
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return ErrClosed
	case q.count >= q.cfg.MaxMessages:
		q.mu.Unlock()
		return fmt.Errorf("outbound: %w: %d messages queued, limit %d", ErrSpoolFull, q.count, q.cfg.MaxMessages)
	case q.bytes+size > q.cfg.MaxBytes:
		q.mu.Unlock()
		return fmt.Errorf("outbound: %w: %d bytes queued, a %d-byte message exceeds the limit of %d", ErrSpoolFull, q.bytes, size, q.cfg.MaxBytes)
	}
	q.count++
	q.bytes += size
	q.mu.Unlock()

	now := time.Now()
	m := spooled{id: newID(now), env: Envelope{From: env.From, To: append([]string(nil), env.To...)}, created: now, size: size}
	if err := q.spool.write(m, msg); err != nil {
		q.mu.Lock()
		q.count--
		q.bytes -= size
		q.mu.Unlock()
		return err
	}
	q.mu.Lock()
	q.entries[m.id] = &entry{spooled: m, next: now}
	q.mu.Unlock()
	q.queued.Add(1)
	q.log.Info("outbound queued", "id", m.id, "from", m.env.From, "to", strings.Join(m.env.To, ","), "size", size)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// EnqueueActions builds the mail the actions of a Sieve result send
// (Build) and enqueues it; what loop protection stops is logged. The error
// joins those of Enqueue; the messages before a failing one stay queued.
func (q *Queue) EnqueueActions(ctx context.Context, d Delivery, actions []sieve.Action, p Policy) error {
	out, skipped := Build(d, actions, p)
	for _, s := range skipped {
		q.log.Info("outbound not sent", "action", s.Kind, "recipient", d.Recipient, "sender", d.Sender, "reason", s.Reason)
	}
	var errs []error
	for _, o := range out {
		if err := q.Enqueue(ctx, o.Envelope, o.Message); err != nil {
			errs = append(errs, fmt.Errorf("%s for %s: %w", o.Kind, d.Recipient, err))
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	pending, bytes := len(q.entries), q.bytes
	q.mu.Unlock()
	return Stats{
		Queued: q.queued.Load(), Sent: q.sent.Load(), Retried: q.retried.Load(), Failed: q.failed.Load(),
		Pending: pending, PendingBytes: bytes,
	}
}

// Close stops the sender and waits for it; the spool keeps what is queued.
func (q *Queue) Close() error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cancel()
	<-q.done
	return nil
}

// run is the sender: it sends what is due and sleeps until the next
// message is due or Enqueue wakes it.
func (q *Queue) run(ctx context.Context) {
	defer close(q.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := q.due(time.Now())
		if len(due) > 0 {
			q.attempt(ctx, due)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		var tick <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-tick:
		}
		timer.Stop()
	}
}

// due returns up to batchSize messages due at now, oldest first, and
// otherwise when the next one is due (zero when the queue is empty).
func (q *Queue) due(now time.Time) ([]*entry, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var due []*entry
	var next time.Time
	for _, e := range q.entries {
		if !e.next.After(now) {
			due = append(due, e)
		} else if next.IsZero() || e.next.Before(next) {
			next = e.next
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].id < due[j].id })
	if len(due) > batchSize {
		due = due[:batchSize]
	}
	return due, next
}

// attempt sends the due messages over one relay connection.
func (q *Queue) attempt(ctx context.Context, due []*entry) {
	var rc *relayConn
	defer func() {
		if rc != nil {
			rc.close()
		}
	}()
	for i, e := range due {
		if ctx.Err() != nil {
			return
		}
		m, body, err := q.spool.read(e.id)
		if err != nil {
			q.log.Error("outbound message unreadable, moved to bad/", "id", e.id, "err", err)
			if err := q.spool.setAside(e.id); err != nil {
				q.log.Error("outbound spool", "id", e.id, "err", err)
			}
			e.dropped = true
			q.finish(e)
			continue
		}
		if rc == nil {
			rc, err = dialRelay(ctx, &q.cfg)
			if err != nil {
				// The relay is down, refuses us or fails TLS or AUTH: a
				// problem of the relay or the configuration, not of the
				// messages, so all of them wait for the next attempt.
				q.log.Warn("outbound relay unavailable", "relay", q.cfg.Relay, "err", err)
				for _, e := range due[i:] {
					q.deferred(e, e.env.To, err)
				}
				return
			}
		}
		failures, broken := rc.send(m.env, body)
		if broken {
			rc.close()
			rc = nil
		}
		q.settle(e, failures)
	}
}

// settle applies the relay's answer per recipient to a message.
func (q *Queue) settle(e *entry, failures map[string]error) {
	var delivered, temporary []string
	var lastTemp error
	for _, to := range e.env.To {
		err, failed := failures[to]
		switch {
		case !failed:
			delivered = append(delivered, to)
		case isTemporary(err):
			temporary = append(temporary, to)
			lastTemp = err
		default:
			// RFC 5321 4.2.1: a 5yz reply is permanent; the message is not
			// sent to that recipient again.
			q.log.Warn("outbound recipient refused, dropped", "id", e.id, "to", to, "err", err)
			e.dropped = true
		}
	}
	if len(delivered) > 0 {
		e.sent = true
		q.log.Info("outbound sent", "id", e.id, "relay", q.cfg.Relay, "to", strings.Join(delivered, ","))
	}
	if len(temporary) == 0 {
		q.finish(e)
		return
	}
	if len(temporary) < len(e.env.To) {
		// Keep only the recipients still to try, replacing the file whole.
		rest := e.spooled
		rest.env = Envelope{From: e.env.From, To: temporary}
		_, body, err := q.spool.read(e.id)
		if err == nil {
			err = q.spool.write(rest, body)
		}
		if err != nil {
			q.log.Error("outbound spool rewrite failed; all recipients will be tried again", "id", e.id, "err", err)
		} else {
			q.mu.Lock()
			e.env = rest.env
			q.mu.Unlock()
		}
	}
	q.deferred(e, temporary, lastTemp)
}

// deferred reschedules a message after a temporary failure, or gives it up
// when it is older than MaxAge.
func (q *Queue) deferred(e *entry, to []string, err error) {
	now := time.Now()
	if now.Sub(e.created) >= q.cfg.MaxAge {
		q.log.Error("outbound message expired, dropped", "id", e.id, "to", strings.Join(to, ","), "age", now.Sub(e.created).Round(time.Second), "attempts", e.attempts+1, "err", err)
		e.dropped = true
		q.finish(e)
		return
	}
	q.mu.Lock()
	e.attempts++
	e.next = now.Add(q.backoff(e.attempts))
	q.mu.Unlock()
	q.retried.Add(1)
	q.log.Info("outbound deferred", "id", e.id, "to", strings.Join(to, ","), "attempts", e.attempts, "next", e.next.Format(time.RFC3339), "err", err)
}

// backoff is the wait after the n-th failed attempt: MinBackoff doubled
// n-1 times, at most MaxBackoff, with full jitter on its upper half so that
// messages queued together do not retry together.
func (q *Queue) backoff(n int) time.Duration {
	d := q.cfg.MinBackoff
	for i := 1; i < n && d < q.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, q.cfg.MaxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// finish removes a message from the queue and the spool and counts it.
func (q *Queue) finish(e *entry) {
	if err := q.spool.remove(e.id); err != nil {
		q.log.Error("outbound spool remove failed", "id", e.id, "err", err)
	}
	q.mu.Lock()
	if _, ok := q.entries[e.id]; ok {
		delete(q.entries, e.id)
		q.count--
		q.bytes -= e.size
	}
	q.mu.Unlock()
	if e.sent {
		q.sent.Add(1)
	}
	if e.dropped {
		q.failed.Add(1)
	}
}
