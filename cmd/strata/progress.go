package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Progress of the long admin commands (migrate, import, export): a bar per account on a
// terminal, plain lines (at most one per account every progressLineEvery) otherwise.

const progressLineEvery = 5 * time.Second

type progressBoard interface {
	// account starts the progress of one account.
	account(name string) accountProgress
	// wait lets the bars draw their last state.
	wait()
}

type accountProgress interface {
	// update says where the account is: folder, messages done of those known so far, bytes.
	update(folder string, done, total int, bytes int64)
	// finish ends the account's progress with a one-line summary.
	finish(summary string)
}

// newProgressBoard draws bars when w is a terminal.
func newProgressBoard(w io.Writer) progressBoard {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barBoard{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))}
	}
	return &lineBoard{w: w}
}

type barBoard struct{ p *mpb.Progress }

func (b *barBoard) wait() { b.p.Wait() }

func (b *barBoard) account(name string) accountProgress {
	a := &barAccount{}
	a.bar = b.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR), decor.Any(func(decor.Statistics) string {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.label
		}, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.CountersNoUnit("%d/%d", decor.WCSyncSpace), decor.Any(func(decor.Statistics) string {
			a.mu.Lock()
			defer a.mu.Unlock()
			return fmt.Sprintf(" %.1f MiB", float64(a.bytes)/(1<<20))
		})),
	)
	return a
}

type barAccount struct {
	bar   *mpb.Bar
	mu    sync.Mutex
	label string
	bytes int64
}

func (a *barAccount) update(folder string, done, total int, bytes int64) {
	a.mu.Lock()
	a.label, a.bytes = folder, bytes
	a.mu.Unlock()
	a.bar.SetTotal(int64(total), false)
	a.bar.SetCurrent(int64(done))
}

func (a *barAccount) finish(summary string) {
	a.mu.Lock()
	a.label = summary
	a.mu.Unlock()
	a.bar.SetTotal(-1, true)
}

type lineBoard struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineBoard) wait() {}

func (l *lineBoard) account(name string) accountProgress {
	return &lineAccount{board: l, name: name}
}

type lineAccount struct {
	board *lineBoard
	name  string
	last  time.Time
}

func (a *lineAccount) update(folder string, done, total int, bytes int64) {
	if time.Since(a.last) < progressLineEvery && done < total {
		return
	}
	a.last = time.Now()
	a.board.mu.Lock()
	defer a.board.mu.Unlock()
	fmt.Fprintf(a.board.w, "%s: %s %d/%d messages, %.1f MiB\n", a.name, folder, done, total, float64(bytes)/(1<<20))
}

func (a *lineAccount) finish(summary string) {
	a.board.mu.Lock()
	defer a.board.mu.Unlock()
	fmt.Fprintf(a.board.w, "%s: %s\n", a.name, summary)
}
