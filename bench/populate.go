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
	Window   int // APPEND commands in flight per connection; default 32
	// Batch is the number of messages per APPEND command: above 1, each command is a
	// MULTIAPPEND (RFC 3502) whose messages the server commits together. Default 1.
	Batch    int
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
// Corpus.Message(u, i) with Corpus.Flags(u, i), so two servers populated with the same seed
// hold the same mail.
// APPENDs are pipelined as LITERAL+ non-synchronizing literals (RFC 7888), Window commands
// at a time on each connection, each of Batch messages (MULTIAPPEND, RFC 3502, when Batch
// is above 1), and each must come back OK with an APPENDUID of one UID per message. Every
// message is recorded as one "append" operation whose latency is its command's.
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
	if cfg.Batch <= 0 {
		cfg.Batch = 1
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
	if err := checkPopulateCaps(c, cfg.Batch); err != nil {
		return fmt.Errorf("populate %s: %w", user, err)
	}
	type inflight struct {
		tag   string
		sent  time.Time
		sizes []int
	}
	var queue []inflight
	next := job.from
	for next < job.to || len(queue) > 0 {
		for next < job.to && len(queue) < cfg.Window {
			cmd := inflight{tag: c.NextTag(), sent: time.Now()}
			c.deadline()
			c.w.WriteString(cmd.tag + " APPEND " + Quote(cfg.Mailbox))
			for ; next < job.to && len(cmd.sizes) < cfg.Batch; next++ {
				// RFC 3502 3: each further message follows the previous literal after a SP.
				msg := cfg.Corpus.Message(uint64(job.user), next)
				if flags := cfg.Corpus.Flags(uint64(job.user), next); len(flags) > 0 {
					c.w.WriteString(" (" + strings.Join(flags, " ") + ")") // RFC 9051 6.3.12 flag list
				}
				c.w.WriteString(" {" + strconv.Itoa(len(msg)) + "+}\r\n")
				c.w.Write(msg)
				cmd.sizes = append(cmd.sizes, len(msg))
			}
			c.w.WriteString("\r\n")
			queue = append(queue, cmd)
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
		if err := checkAppendUIDs(text, len(head.sizes)); err != nil {
			rec.Failure("append", err)
			return fmt.Errorf("populate %s: %w", user, err)
		}
		took := time.Since(head.sent)
		for _, size := range head.sizes {
			rec.Success("append", took, size)
		}
	}
	_, err = c.Exec("LOGOUT")
	if err != nil {
		return fmt.Errorf("populate %s: logout: %w", user, err)
	}
	return nil
}

// checkPopulateCaps asks for the capabilities if the greeting and LOGIN did not list them
// and checks for LITERAL+ (RFC 7888) and, for batches, MULTIAPPEND (RFC 3502).
func checkPopulateCaps(c *Conn, batch int) error {
	if !c.Caps["LITERAL+"] || batch > 1 && !c.Caps["MULTIAPPEND"] {
		if _, err := c.Exec("CAPABILITY"); err != nil {
			return err
		}
	}
	if !c.Caps["LITERAL+"] {
		return errors.New("the server does not offer LITERAL+")
	}
	if batch > 1 && !c.Caps["MULTIAPPEND"] {
		return errors.New("the server does not offer MULTIAPPEND; use a batch of 1")
	}
	return nil
}

// checkAppendUIDs checks that a tagged OK of APPEND carries an APPENDUID response code
// (RFC 4315 3) whose UID set holds one UID per appended message (RFC 3502 6.3.11).
func checkAppendUIDs(text string, messages int) error {
	if messages == 1 {
		_, err := appendUID(text)
		return err
	}
	up := strings.ToUpper(text)
	i := strings.Index(up, "[APPENDUID ")
	if i < 0 {
		return &VerifyError{Msg: "APPEND without APPENDUID: " + truncate(text)}
	}
	f := strings.Fields(text[i+len("[APPENDUID "):])
	if len(f) < 2 {
		return &VerifyError{Msg: "malformed APPENDUID: " + truncate(text)}
	}
	set, _, _ := strings.Cut(f[1], "]")
	n, err := uidSetSize(set)
	if err != nil {
		return &VerifyError{Msg: "malformed APPENDUID: " + truncate(text)}
	}
	if n != messages {
		return &VerifyError{Msg: fmt.Sprintf("APPENDUID of %d UIDs for %d messages: %s", n, messages, truncate(text))}
	}
	return nil
}

// uidSetSize counts the UIDs of a uid-set without "*" (RFC 4315 4), as in APPENDUID.
func uidSetSize(set string) (int, error) {
	n := 0
	for _, r := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(r, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil || a == 0 {
			return 0, fmt.Errorf("uid-set %q", set)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b == 0 {
				return 0, fmt.Errorf("uid-set %q", set)
			}
		}
		n += int(max(a, b)-min(a, b)) + 1
	}
	return n, nil
}
