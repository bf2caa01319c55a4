package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ResyncConfig describes the resync scenario: a client that was offline while Changes
// messages of a mailbox changed catches up with QRESYNC (RFC 7162 3.2.5) and with CONDSTORE
// (3.1.4.1), Rounds times.
type ResyncConfig struct {
	Addr     string
	Dial     DialOptions
	User     string
	Password string
	Mailbox  string
	Changes  int // flag changes per round; default 10
	Rounds   int // default 5
	// FullResync also measures, once, what a client without CONDSTORE does instead: SELECT
	// and FETCH 1:* (UID FLAGS).
	FullResync bool
	Seed       uint64
}

var (
	highestModSeqCode = regexp.MustCompile(`(?i)\[HIGHESTMODSEQ (\d+)\]`)
	uidValidityCode   = regexp.MustCompile(`(?i)\[UIDVALIDITY (\d+)\]`)
)

// Resync runs the scenario. Each round, a writer connection changes the flags of Changes
// distinct messages (one STORE each, so one MODSEQ each); then a new connection logs in,
// enables QRESYNC and runs SELECT mailbox (QRESYNC (uidvalidity modseq)) with what it knew
// before the round (op select-qresync), then UID FETCH 1:* (FLAGS) (CHANGEDSINCE modseq)
// (op uid-fetch-changedsince); both must report exactly the changed messages. Figures: the
// bytes the server sent for each (averaged over the rounds), and for the full resync.
func Resync(ctx context.Context, cfg ResyncConfig) (*Report, error) {
	if cfg.Mailbox == "" {
		cfg.Mailbox = "INBOX"
	}
	if cfg.Changes <= 0 {
		cfg.Changes = 10
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	rec := NewRecorder()
	start := time.Now()
	figures := map[string]float64{}
	rep := func(err error) (*Report, error) {
		r := rec.Report(time.Since(start))
		r.Scenario = "resync"
		r.Server = cfg.Addr
		r.Clients, r.Users = 1, 1
		r.Seed = cfg.Seed
		r.Figures = figures
		return r, err
	}
	writerConn, err := Dial(cfg.Addr, cfg.Dial)
	if err != nil {
		return nil, err
	}
	defer writerConn.Close()
	if err := writerConn.Login(cfg.User, cfg.Password); err != nil {
		return nil, err
	}
	writer := &Session{Conn: writerConn}
	if err := writer.Select(cfg.Mailbox); err != nil {
		return nil, err
	}
	if writer.Exists < cfg.Changes {
		return nil, fmt.Errorf("the mailbox has %d messages, fewer than %d changes", writer.Exists, cfg.Changes)
	}

	// What the client knew when it went offline.
	c, sel, err := resyncLogin(cfg, "SELECT "+Quote(cfg.Mailbox))
	if err != nil {
		return nil, err
	}
	uidValidity, modseq, err := selectState(sel)
	if err != nil {
		c.Close()
		return nil, err
	}
	if cfg.FullResync {
		t := time.Now()
		before := c.BytesRead()
		res, err := c.Exec("FETCH 1:* (UID FLAGS)")
		if err != nil {
			c.Close()
			return rep(fmt.Errorf("full resync: %w", err))
		}
		rec.Success("full-resync-fetch", time.Since(t), 0)
		figures["full_resync_fetch_bytes"] = float64(c.BytesRead() - before)
		figures["full_resync_fetch_responses"] = float64(len(res.Untagged))
	}
	c.Exec("LOGOUT")
	c.Close()

	rng := rand.New(rand.NewPCG(cfg.Seed, 17))
	var selectBytes, fetchBytes int64
	for round := 0; round < cfg.Rounds && ctx.Err() == nil; round++ {
		changed := map[int]bool{}
		for len(changed) < cfg.Changes {
			seq := 1 + rng.IntN(writer.Exists)
			if changed[seq] {
				continue
			}
			changed[seq] = true
			// The round's own keyword replaces the flags, so each STORE changes its message
			// (and its MODSEQ): one change each.
			if _, err := writer.Exec(fmt.Sprintf("STORE %d FLAGS.SILENT ($Resync%d)", seq, round)); err != nil {
				return rep(fmt.Errorf("store: %w", err))
			}
		}

		c, err := Dial(cfg.Addr, cfg.Dial)
		if err != nil {
			return rep(err)
		}
		if err := c.Login(cfg.User, cfg.Password); err != nil {
			c.Close()
			return rep(err)
		}
		if _, err := c.Exec("ENABLE QRESYNC"); err != nil {
			c.Close()
			return rep(err)
		}
		t := time.Now()
		before := c.BytesRead()
		res, err := c.Exec(fmt.Sprintf("SELECT %s (QRESYNC (%d %d))", Quote(cfg.Mailbox), uidValidity, modseq))
		if err == nil {
			err = checkResyncFetches(res, cfg.Changes)
		}
		if err != nil {
			rec.Failure("select-qresync", err)
			c.Close()
			return rep(fmt.Errorf("select-qresync: %w", err))
		}
		rec.Success("select-qresync", time.Since(t), 0)
		selectBytes += c.BytesRead() - before
		_, newModSeq, err := selectState(res)
		if err != nil {
			c.Close()
			return rep(err)
		}

		t = time.Now()
		before = c.BytesRead()
		res, err = c.Exec(fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", modseq))
		if err == nil {
			err = checkResyncFetches(res, cfg.Changes)
		}
		if err != nil {
			rec.Failure("uid-fetch-changedsince", err)
			c.Close()
			return rep(fmt.Errorf("uid-fetch-changedsince: %w", err))
		}
		rec.Success("uid-fetch-changedsince", time.Since(t), 0)
		fetchBytes += c.BytesRead() - before
		c.Exec("LOGOUT")
		c.Close()
		modseq = newModSeq
	}
	figures["messages"] = float64(writer.Exists)
	figures["changes"] = float64(cfg.Changes)
	figures["select_qresync_bytes"] = float64(selectBytes) / float64(cfg.Rounds)
	figures["uid_fetch_changedsince_bytes"] = float64(fetchBytes) / float64(cfg.Rounds)
	writer.Exec("LOGOUT")
	return rep(nil)
}

// resyncLogin connects, logs in, enables QRESYNC and runs command (a SELECT).
func resyncLogin(cfg ResyncConfig, command string) (*Conn, *Result, error) {
	c, err := Dial(cfg.Addr, cfg.Dial)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Login(cfg.User, cfg.Password); err != nil {
		c.Close()
		return nil, nil, err
	}
	if _, err := c.Exec("ENABLE QRESYNC"); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("ENABLE QRESYNC: %w", err)
	}
	res, err := c.Exec(command)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, res, nil
}

// selectState returns UIDVALIDITY and HIGHESTMODSEQ from a SELECT's responses.
func selectState(res *Result) (uidValidity uint32, modseq uint64, err error) {
	for _, u := range res.Untagged {
		if m := uidValidityCode.FindStringSubmatch(u.Text); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 32)
			uidValidity = uint32(n)
		}
		if m := highestModSeqCode.FindStringSubmatch(u.Text); m != nil {
			modseq, _ = strconv.ParseUint(m[1], 10, 64)
		}
	}
	if uidValidity == 0 || modseq == 0 {
		return 0, 0, &VerifyError{Msg: "SELECT without UIDVALIDITY or HIGHESTMODSEQ"}
	}
	return uidValidity, modseq, nil
}

// checkResyncFetches checks that res holds exactly want FETCH responses, each with MODSEQ.
func checkResyncFetches(res *Result, want int) error {
	n := 0
	for _, u := range res.Untagged {
		up := strings.ToUpper(u.Text)
		if !strings.Contains(up, " FETCH (") {
			continue
		}
		if !strings.Contains(up, "MODSEQ (") {
			return &VerifyError{Msg: "FETCH without MODSEQ: " + truncate(u.Text)}
		}
		n++
	}
	if n != want {
		return &VerifyError{Msg: fmt.Sprintf("%d FETCH responses, want %d", n, want)}
	}
	return nil
}
