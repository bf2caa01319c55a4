package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// OpDeliver is one LMTP mail transaction: MAIL, RCPT for each recipient, DATA and the
// per-recipient replies. OpLHLO is the connection set-up: greeting and LHLO.
const (
	OpDeliver = "deliver"
	OpLHLO    = "lhlo"
)

// LMTPConfig describes a run of the LMTP delivery load: Conns connections each deliver
// messages from the corpus, one after the other, to PerMessage recipients, until
// Duration has passed or Count transactions have been made in all (a failed one is an
// error in the report, not retried).
type LMTPConfig struct {
	Addr       string
	Recipients []string // delivery addresses; message i goes to PerMessage of them starting at a rotating offset
	PerMessage int      // recipients per message; at most len(Recipients)
	Conns      int
	Duration   time.Duration // how long to run, when Count is 0
	Count      int           // messages to deliver in all; 0 for Duration
	From       string        // envelope sender (MAIL FROM); default bench@example.net
	Corpus     Corpus
	Timeout    time.Duration // deadline of each command; default 2m
	Progress   io.Writer
}

func (c *LMTPConfig) defaults() error {
	if c.Conns <= 0 {
		return errors.New("need at least one connection")
	}
	if c.PerMessage <= 0 {
		c.PerMessage = 1
	}
	if len(c.Recipients) < c.PerMessage {
		return fmt.Errorf("%d recipients per message need at least %d users, have %d", c.PerMessage, c.PerMessage, len(c.Recipients))
	}
	if c.Count < 0 {
		return errors.New("count must not be negative")
	}
	if c.Count == 0 && c.Duration <= 0 {
		return errors.New("need a duration or a count")
	}
	if c.From == "" {
		c.From = "bench@example.net"
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	return nil
}

// LMTP delivers corpus messages over LMTP (RFC 2033) and reports the delivered messages
// per second and the latency of each transaction. A transaction counts as a success only
// when every RCPT got 250 and DATA got one 250 reply per recipient (RFC 2033 4.2); the
// report's figures hold the recipients delivered to.
func LMTP(ctx context.Context, cfg LMTPConfig) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	rec := NewRecorder()
	if cfg.Count == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var (
		next      atomic.Int64 // the next message number, shared by every connection
		delivered atomic.Int64 // recipients with a 250 after DATA
	)
	start := time.Now()
	stopProgress := progress(cfg.Progress, rec, start)
	var wg sync.WaitGroup
	for i := 0; i < cfg.Conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lmtpWorker(ctx, &cfg, rec, uint64(i), &next, &delivered)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	rep := rec.Report(elapsed)
	rep.Scenario = fmt.Sprintf("lmtp-%dconn-%drcpt", cfg.Conns, cfg.PerMessage)
	rep.Server = cfg.Addr
	rep.Clients = cfg.Conns
	rep.Users = len(cfg.Recipients)
	rep.Seed = cfg.Corpus.Seed
	rep.Figures = map[string]float64{
		"recipients_per_message": float64(cfg.PerMessage),
		"recipients_delivered":   float64(delivered.Load()),
		"recipients_per_sec":     float64(delivered.Load()) / elapsed.Seconds(),
	}
	return rep, nil
}

// lmtpWorker is one connection: it takes message numbers from next until the run ends,
// reconnecting after an error, since the session's state is then unknown.
func lmtpWorker(ctx context.Context, cfg *LMTPConfig, rec *Recorder, id uint64, next, delivered *atomic.Int64) {
	var c *lmtpConn
	defer func() {
		if c != nil {
			c.quit()
		}
	}()
	for ctx.Err() == nil {
		n := next.Add(1) - 1
		if cfg.Count > 0 && n >= int64(cfg.Count) {
			return
		}
		if c == nil {
			t0 := time.Now()
			var err error
			if c, err = dialLMTP(cfg.Addr, cfg.Timeout); err != nil {
				rec.Failure(OpLHLO, err)
				if cfg.Count > 0 {
					next.Add(-1) // give the message back; a count run delivers exactly Count
				}
				if sleepCtx(ctx, 100*time.Millisecond) != nil {
					return
				}
				continue
			}
			rec.Success(OpLHLO, time.Since(t0), 0)
		}
		msg := cfg.Corpus.Message(id, int(n))
		rcpts := make([]string, cfg.PerMessage)
		for j := range rcpts {
			rcpts[j] = cfg.Recipients[(int(n)*cfg.PerMessage+j)%len(cfg.Recipients)]
		}
		t0 := time.Now()
		ok, err := c.deliver(cfg.From, rcpts, msg)
		delivered.Add(int64(ok))
		if err != nil {
			rec.Failure(OpDeliver, err)
			c.close()
			c = nil
			continue
		}
		rec.Success(OpDeliver, time.Since(t0), len(msg))
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type lmtpConn struct {
	nc      net.Conn
	c       *smtp.Client
	timeout time.Duration
}

// dialLMTP connects and says LHLO (RFC 2033 4.1).
func dialLMTP(addr string, timeout time.Duration) (*lmtpConn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClientLMTP(nc)
	c.CommandTimeout = timeout
	c.SubmissionTimeout = timeout
	if err := c.Hello("bench.localhost"); err != nil {
		c.Close()
		return nil, err
	}
	return &lmtpConn{nc: nc, c: c, timeout: timeout}, nil
}

// deliver runs one transaction and returns the number of recipients DATA delivered to.
func (l *lmtpConn) deliver(from string, rcpts []string, msg []byte) (int, error) {
	var opts *smtp.MailOptions
	if !isASCII(string(msg)) {
		// go-smtp adds BODY=8BITMIME itself when the server announces it (RFC 6152 2);
		// raw UTF-8 header fields need SMTPUTF8 (RFC 6531 3.4).
		if ok, _ := l.c.Extension("SMTPUTF8"); ok {
			opts = &smtp.MailOptions{UTF8: true}
		}
	}
	if err := l.c.Mail(from, opts); err != nil {
		return 0, fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, r := range rcpts {
		if err := l.c.Rcpt(r, nil); err != nil {
			return 0, fmt.Errorf("RCPT TO:<%s>: %w", r, err)
		}
	}
	w, err := l.c.Data()
	if err != nil {
		return 0, fmt.Errorf("DATA: %w", err)
	}
	if _, err := io.Copy(w, bytes.NewReader(msg)); err != nil {
		return 0, fmt.Errorf("DATA: %w", err)
	}
	// RFC 2033 4.2: one reply per successful RCPT, in RCPT order.
	replies, err := w.CloseWithLMTPResponse()
	if err != nil {
		return len(replies), fmt.Errorf("after DATA: %w", err)
	}
	if len(replies) != len(rcpts) {
		return len(replies), &VerifyError{Msg: fmt.Sprintf("%d replies after DATA for %d recipients", len(replies), len(rcpts))}
	}
	return len(replies), nil
}

func (l *lmtpConn) quit() {
	l.nc.SetDeadline(time.Now().Add(5 * time.Second))
	l.c.Quit()
	l.c.Close()
}

func (l *lmtpConn) close() { l.c.Close() }
