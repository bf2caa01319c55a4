package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MaildirConfig describes a Maildir written from the corpus: what `strata bench populate`
// would APPEND to one user's INBOX, as files that Dovecot serves as they are (its Maildir
// format) and that `strata import maildir` reads, so that both servers hold the same mail
// without a million APPENDs each.
type MaildirConfig struct {
	// Dir is the Maildir (cur/, new/ and tmp/ are created under it).
	Dir string
	// Messages is the number of messages: Corpus.Message(Stream, i) for i in [First,
	// First+Messages), with Corpus.Flags(Stream, i), the same bytes and flags Populate
	// appends for the user of index Stream (First > 0 grows a Maildir written before).
	First, Messages int
	Stream          uint64
	Corpus          Corpus
	// Workers generate and write messages concurrently; default 4.
	Workers int
	// Owner, when UID is not negative, is given every file and directory (Dovecot's mail
	// processes run as the mail user and must write their index next to the files).
	UID, GID int
	// Received is the internal date of message 0 (the files' modification time, which
	// Dovecot and `strata import` read as the internal date); message i is Received + i
	// seconds, so the order of the names, of the dates and of i agree.
	Received time.Time
	Progress io.Writer
}

// MaildirReport says what WriteMaildir wrote.
type MaildirReport struct {
	Messages int
	Bytes    int64 // on disk, LF line endings
	Elapsed  time.Duration
}

// WriteMaildir writes cfg.Messages corpus messages from cfg.First on into cfg.Dir/cur as Maildir files named
// <received>.M<i>P0.strata-bench,S=<size>,W=<CRLF size>:2,<flags> (the S= and W= fields
// as Dovecot writes them: the file's size and the message's size with CRLF line endings),
// with LF line endings as Maildir stores them: `strata import` and Dovecot both turn them
// back into the CRLF bytes the corpus generated (each message is checked to hold no bare
// CR or LF, so that the round trip is exact). Each file is written under tmp/ and renamed
// into cur/, so cur/ holds only whole messages; nothing is fsynced (bench data: `sync`
// after). An existing file of the same name is replaced, so a run can be repeated.
func WriteMaildir(ctx context.Context, cfg MaildirConfig) (*MaildirReport, error) {
	if cfg.Messages <= 0 || cfg.First < 0 || cfg.Dir == "" {
		return nil, errors.New("maildir: need a directory, a positive message count and a first index of at least 0")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Received.IsZero() {
		cfg.Received = time.Unix(1_700_000_000, 0)
	}
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, "cur"), filepath.Join(cfg.Dir, "new"), filepath.Join(cfg.Dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		if cfg.UID >= 0 {
			if err := os.Lchown(d, cfg.UID, cfg.GID); err != nil {
				return nil, err
			}
		}
	}
	start := time.Now()
	var next, written atomic.Int64
	var size atomic.Int64
	stop := make(chan struct{})
	var progressDone sync.WaitGroup
	if cfg.Progress != nil {
		progressDone.Add(1)
		go func() {
			defer progressDone.Done()
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					n := written.Load()
					fmt.Fprintf(cfg.Progress, "maildir: %d/%d messages, %.0f messages/s\n", n, cfg.Messages, float64(n)/time.Since(start).Seconds())
				}
			}
		}()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lf bytes.Buffer
			for ctx.Err() == nil {
				i := cfg.First + int(next.Add(1)-1)
				if i >= cfg.First+cfg.Messages {
					return
				}
				n, err := writeMaildirMessage(cfg, i, &lf)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				size.Add(n)
				written.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	progressDone.Wait()
	rep := &MaildirReport{Messages: int(written.Load()), Bytes: size.Load(), Elapsed: time.Since(start)}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return rep, firstErr
}

// writeMaildirMessage writes message i and returns its size on disk.
func writeMaildirMessage(cfg MaildirConfig, i int, lf *bytes.Buffer) (int64, error) {
	msg := cfg.Corpus.Message(cfg.Stream, i)
	lf.Reset()
	for rest := msg; len(rest) > 0; {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 || j == 0 || rest[j-1] != '\r' || bytes.IndexByte(rest[:j-1], '\r') >= 0 {
			// RFC 5322 2.3: CR and LF only together; a bare one would not survive LF storage.
			return 0, fmt.Errorf("maildir: corpus message %d has a bare CR or LF", i)
		}
		lf.Write(rest[:j-1])
		lf.WriteByte('\n')
		rest = rest[j+1:]
	}
	letters, err := maildirLetters(cfg.Corpus.Flags(cfg.Stream, i))
	if err != nil {
		return 0, err
	}
	received := cfg.Received.Add(time.Duration(i) * time.Second)
	name := fmt.Sprintf("%d.M%dP0.strata-bench,S=%d,W=%d:2,%s", received.Unix(), i, lf.Len(), len(msg), letters)
	tmp := filepath.Join(cfg.Dir, "tmp", name)
	if err := os.WriteFile(tmp, lf.Bytes(), 0o600); err != nil {
		return 0, err
	}
	if cfg.UID >= 0 {
		if err := os.Lchown(tmp, cfg.UID, cfg.GID); err != nil {
			return 0, err
		}
	}
	if err := os.Chtimes(tmp, received, received); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, filepath.Join(cfg.Dir, "cur", name)); err != nil {
		return 0, err
	}
	return int64(lf.Len()), nil
}

// maildirLetters is the Maildir info of the corpus flags, in ASCII order: F \Flagged,
// R \Answered, S \Seen (https://cr.yp.to/proto/maildir.html, as Dovecot reads them).
func maildirLetters(flags []string) (string, error) {
	var letters []byte
	for _, f := range flags {
		switch f {
		case `\Flagged`:
			letters = append(letters, 'F')
		case `\Answered`:
			letters = append(letters, 'R')
		case `\Seen`:
			letters = append(letters, 'S')
		default:
			return "", fmt.Errorf("maildir: no Maildir letter for the flag %s", f)
		}
	}
	slices.Sort(letters)
	return string(letters), nil
}
