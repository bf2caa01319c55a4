package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PopulateConfig describes how to fill mailboxes from the corpus.
type PopulateConfig struct {
	Addr     string
	Dial     DialOptions
	Users    []string
	Password string
	Messages int // per user
	Conns    int // concurrent connections; a user's messages are split among several when Conns > len(Users)
	Window   int // APPENDs in flight per connection; default 32
	Mailbox  string
	Corpus   Corpus
	Progress io.Writer
}

// populateJob is messages [from, to) of user.
type populateJob struct {
	user     int
	from, to int
}

// Populate appends Messages corpus messages to each user's mailbox: message i of user u is
// Corpus.Message(u, i), so two servers populated with the same seed hold the same mail.
// APPENDs are pipelined as LITERAL+ non-synchronizing literals (RFC 7888), Window at a time
// on each connection, and each must come back OK with an APPENDUID.
func Populate(ctx context.Context, cfg PopulateConfig) (*Report, error) {
	if cfg.Mailbox == "" {
		cfg.Mailbox = "INBOX"
	}
	if cfg.Window <= 0 {
		cfg.Window = 32
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if len(cfg.Users) == 0 || cfg.Messages <= 0 {
		return nil, errors.New("populate: need users and a positive message count")
	}
	perUser := max(1, cfg.Conns/len(cfg.Users))
	chunk := (cfg.Messages + perUser - 1) / perUser
	jobs := make(chan populateJob, len(cfg.Users)*perUser)
	for u := range cfg.Users {
		for from := 0; from < cfg.Messages; from += chunk {
			jobs <- populateJob{user: u, from: from, to: min(from+chunk, cfg.Messages)}
		}
	}
	close(jobs)

	rec := NewRecorder()
	start := time.Now()
	stopProgress := progress(cfg.Progress, rec, start)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < cfg.Conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
				if ctx.Err() != nil {
					return
				}
				if err := populateOne(cfg, rec, job); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	stopProgress()
	rep := rec.Report(time.Since(start))
	rep.Scenario = "populate"
	rep.Server = cfg.Addr
	rep.Clients = cfg.Conns
	rep.Users = len(cfg.Users)
	rep.Seed = cfg.Corpus.Seed
	if firstErr != nil {
		return rep, firstErr
	}
	return rep, ctx.Err()
}

func populateOne(cfg PopulateConfig, rec *Recorder, job populateJob) error {
	user := cfg.Users[job.user]
	c, err := Dial(cfg.Addr, cfg.Dial)
	if err != nil {
		rec.Failure("append", err)
		return err
	}
	defer c.Close()
	if err := c.Login(user, cfg.Password); err != nil {
		rec.Failure("append", err)
		return err
	}
	if !c.Caps["LITERAL+"] {
		if _, err := c.Exec("CAPABILITY"); err != nil {
			return fmt.Errorf("populate %s: %w", user, err)
		}
		if !c.Caps["LITERAL+"] {
			return fmt.Errorf("populate %s: the server does not offer LITERAL+", user)
		}
	}
	type inflight struct {
		tag  string
		sent time.Time
		size int
	}
	var queue []inflight
	next := job.from
	for next < job.to || len(queue) > 0 {
		for next < job.to && len(queue) < cfg.Window {
			msg := cfg.Corpus.Message(uint64(job.user), next)
			next++
			tag := c.NextTag()
			c.deadline()
			c.w.WriteString(tag + " APPEND " + Quote(cfg.Mailbox) + " {" + strconv.Itoa(len(msg)) + "+}\r\n")
			c.w.Write(msg)
			c.w.WriteString("\r\n")
			queue = append(queue, inflight{tag: tag, sent: time.Now(), size: len(msg)})
		}
		if err := c.w.Flush(); err != nil {
			rec.Failure("append", err)
			return fmt.Errorf("populate %s: send: %w", user, err)
		}
		c.deadline()
		resp, err := c.ReadResponse()
		if err != nil {
			rec.Failure("append", err)
			return fmt.Errorf("populate %s: %w", user, err)
		}
		if strings.HasPrefix(resp.Text, "* ") {
			continue
		}
		head := queue[0]
		if !strings.HasPrefix(resp.Text, head.tag+" ") {
			err := &ProtocolError{Msg: "APPEND completions out of order: " + truncate(resp.Text)}
			rec.Failure("append", err)
			return err
		}
		queue = queue[1:]
		status, text, _ := strings.Cut(resp.Text[len(head.tag)+1:], " ")
		if !strings.EqualFold(status, "OK") {
			err := &ServerError{Status: strings.ToUpper(status), Text: text}
			rec.Failure("append", err)
			return fmt.Errorf("populate %s: %w", user, err)
		}
		if _, err := appendUID(text); err != nil {
			rec.Failure("append", err)
			return fmt.Errorf("populate %s: %w", user, err)
		}
		rec.Success("append", time.Since(head.sent), head.size)
	}
	_, err = c.Exec("LOGOUT")
	if err != nil {
		return fmt.Errorf("populate %s: logout: %w", user, err)
	}
	return nil
}
