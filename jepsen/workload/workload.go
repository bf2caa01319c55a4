// Package workload drives a seeded mix of IMAP sessions and LMTP deliveries against Strata's
// frontends and records every operation, with what the client saw, into a history.Recorder
// for jepsen/checker.
//
// Each of Config.Clients logical clients (a history Process) owns one account and runs one
// IMAP session at a time on a frontend it picks at random; after an error whose outcome is
// unknown (a timeout, a lost connection, a BYE) it drops the session and reconnects, to any
// frontend, and keeps going until the run ends. A session logs in, ENABLEs QRESYNC in about
// half the sessions (so expunges come as VANISHED, RFC 7162 3.2.10), SELECTs or EXAMINEs
// with CONDSTORE and lists the mailbox, then runs a mix of APPEND (with flags), LMTP
// delivery to any account's address, UID STORE (+FLAGS, -FLAGS, FLAGS, silent or not), UID
// FETCH (UID FLAGS MODSEQ and the Message-ID header) of the whole mailbox or some UIDs, FETCH
// 1:* and SEARCH in their sequence-number forms, UID SEARCH, UID MOVE, UID COPY, UID STORE
// \Deleted followed by UID EXPUNGE, STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ),
// re-SELECTs and NOOP polls. Every appended or delivered message carries a unique
// Message-ID, <seed-process-n@jepsen>, so readers can tell messages apart.
//
// Seeded: the op mix, the targets, the frontends, the flags and the messages come from
// math/rand/v2 seeded with Config.Seed and the process number. Timing is not: which op runs
// first across clients, and so what UIDs the server hands out and what later ops target,
// depends on scheduling, so two runs of one seed are alike but not identical. A failing
// seed is rechecked from its saved history, not by running it again.
package workload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/jepsen/history"
)

// Account is one mailbox owner the workload logs in as and delivers to.
type Account struct {
	User, Password string
	Address        string // the LMTP recipient
}

// Config is one run.
type Config struct {
	Seed      int64
	IMAPAddrs []string
	LMTPAddrs []string // none: no deliveries
	Accounts  []Account
	// Mailboxes are the mailboxes the clients use in every account, INBOX among them; Run
	// creates the others.
	Mailboxes []string
	Clients   int
	Duration  time.Duration
	// OpTimeout bounds each operation; one that takes longer is recorded Unknown and its
	// session dropped.
	OpTimeout time.Duration
	Recorder  *history.Recorder
}

// Run drives the workload until Duration passes or ctx ends, recording into cfg.Recorder. It
// returns an error only for a bad Config or when the mailboxes cannot be created; the
// clients' own errors are recorded, not returned.
func Run(ctx context.Context, cfg Config) error {
	switch {
	case len(cfg.IMAPAddrs) == 0:
		return errors.New("workload: no IMAP address")
	case len(cfg.Accounts) == 0:
		return errors.New("workload: no account")
	case cfg.Clients <= 0:
		return errors.New("workload: no client")
	case cfg.Recorder == nil:
		return errors.New("workload: no recorder")
	case !containsFold(cfg.Mailboxes, "INBOX"):
		return errors.New("workload: the mailboxes must include INBOX")
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 10 * time.Second
	}
	if err := createMailboxes(ctx, cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var sessions atomic.Int64
	var wg sync.WaitGroup
	for p := range cfg.Clients {
		c := &client{
			cfg:      &cfg,
			process:  p,
			rng:      rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(p)+1)),
			account:  cfg.Accounts[p%len(cfg.Accounts)],
			sessions: &sessions,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// createMailboxes creates the mailboxes in every account; ones that exist are fine.
func createMailboxes(ctx context.Context, cfg Config) error {
	for _, a := range cfg.Accounts {
		c, err := login(ctx, cfg.IMAPAddrs[0], a, false, cfg.OpTimeout, func() time.Duration { return 0 })
		if err != nil {
			return fmt.Errorf("workload: set up %s: %w", a.User, err)
		}
		for _, mb := range cfg.Mailboxes {
			if strings.EqualFold(mb, "INBOX") {
				continue
			}
			err := c.imap.Create(mb, nil).Wait()
			var imapErr *imap.Error
			if err != nil && !(errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeAlreadyExists) {
				c.imap.Close()
				return fmt.Errorf("workload: create %q for %s: %w", mb, a.User, err)
			}
		}
		c.imap.Close()
	}
	return nil
}

// session is one logged-in IMAP connection.
type session struct {
	imap *imapclient.Client
	tap  *tap
}

// login dials addr, logs in and, with qresync, ENABLEs QRESYNC, speaking the protocol itself
// (imapclient refuses to ENABLE QRESYNC), then hands the connection to imapclient as a
// PREAUTH session with the capabilities the server announced.
func login(ctx context.Context, addr string, a Account, qresync bool, timeout time.Duration, now func() time.Duration) (*session, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(conn)
	fail := func(err error) (*session, error) {
		conn.Close()
		return nil, err
	}
	greeting, err := readLine(r)
	if err != nil {
		return fail(fmt.Errorf("greeting: %w", err))
	}
	if !strings.HasPrefix(string(greeting), "* OK") {
		return fail(fmt.Errorf("greeting %q", strings.TrimSpace(string(greeting))))
	}
	command := func(tag, line string) ([]string, error) {
		if _, err := fmt.Fprintf(conn, "%s %s\r\n", tag, line); err != nil {
			return nil, err
		}
		var untagged []string
		for {
			l, err := readLine(r)
			if err != nil {
				return nil, err
			}
			s := strings.TrimRight(string(l), "\r\n")
			if strings.HasPrefix(s, tag+" OK") {
				return untagged, nil
			}
			if strings.HasPrefix(s, tag+" ") {
				return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: s}
			}
			untagged = append(untagged, s)
		}
	}
	if _, err := command("L1", fmt.Sprintf("LOGIN %s %s", quote(a.User), quote(a.Password))); err != nil {
		return fail(fmt.Errorf("LOGIN: %w", err))
	}
	if qresync {
		// RFC 7162 3.2.3: ENABLE QRESYNC also enables CONDSTORE.
		if _, err := command("L2", "ENABLE QRESYNC"); err != nil {
			return fail(fmt.Errorf("ENABLE QRESYNC: %w", err))
		}
	}
	lines, err := command("L3", "CAPABILITY")
	if err != nil {
		return fail(fmt.Errorf("CAPABILITY: %w", err))
	}
	caps := ""
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
			caps = rest
		}
	}
	conn.SetDeadline(time.Time{})
	t := newTap(conn, r, now, fmt.Sprintf("* PREAUTH [CAPABILITY %s] logged in\r\n", caps))
	c := imapclient.New(t, nil)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return &session{imap: c, tap: t}, nil
}

// quote makes an IMAP quoted string (RFC 9051 4.3).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
