package imap

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/imap/sortthread"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// benchContextMessages is the size of the mailbox of BenchmarkContextChange.
const benchContextMessages = 100_000

// contextBench is a selected session of a mailbox of n messages, every other one \Seen,
// with the sort keys of all of them in the frontend's cache (as after a first SORT), so
// that evaluating its contexts makes no metadata call.
func contextBench(b *testing.B, n int) *conn {
	srv := NewServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := &conn{srv: srv, bw: newConnWriter(io.Discard), account: &metadatapb.Account{Email: "demo@example.com"}}
	s := &selected{owner: "demo@example.com", mailboxID: 1, uidValidity: 1, rights: rights("lrswipkxtecda")}
	c.sel = s
	uids := make([]uint32, n)
	entries := make([]sortEntry, n)
	for i := range n {
		var flags []string
		if i%2 == 1 {
			flags = []string{`\Seen`}
		}
		uid := uint32(i + 1)
		s.msgs.append(uid, uint64(i+1), flags)
		uids[i] = uid
		entries[i] = sortEntry{msg: sortthread.Message{
			Arrival: int64(1_700_000_000 + i), Date: int64(1_700_000_000 + rand.IntN(n)),
			Subject: fmt.Sprintf("subject %05d", rand.IntN(n/10)), From: fmt.Sprintf("user%04d@example.com", rand.IntN(5000)),
		}}
	}
	s.msgs.sets.live = len(s.msgs.sets.list)
	srv.sortKeys.put(sortBoxKey{owner: s.owner, mailboxID: s.mailboxID, uidValidity: s.uidValidity}, uids, entries)
	return c
}

// openBenchContexts opens search contexts UNSEEN (UID SEARCH) and sort contexts (SUBJECT)
// and (REVERSE DATE) UNSEEN (UID SORT), as the commands would.
func openBenchContexts(b *testing.B, c *conn, searches, sorts int) {
	unseen := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}
	for k := range searches {
		matched, _, err := c.searchMatches(unseen)
		if err != nil {
			b.Fatal(err)
		}
		req := contextRequest{cmd: &imapwire.Command{Tag: fmt.Sprintf("S%d", k), UID: true}, criteria: unseen}
		if err := c.openContext(req, matched, nil); err != nil {
			b.Fatal(err)
		}
	}
	for k := range sorts {
		order := []sortthread.Criterion{{Key: sortthread.Subject}}
		if k%2 == 1 {
			order = []sortthread.Criterion{{Key: sortthread.Date, Reverse: true}}
		}
		set, err := c.sortInput(unseen, allFields, subjectStrings, false)
		if err != nil {
			b.Fatal(err)
		}
		msgs := set.messages(set.keys.columns(set.rows, allFields).Order(order))
		req := contextRequest{cmd: &imapwire.Command{Tag: fmt.Sprintf("O%d", k), UID: true}, criteria: unseen, order: order}
		if err := c.openContext(req, nil, msgs); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU resets b's timer and returns the function that reports the process's CPU time
// per iteration since then as cpu-ns/op (defer measureCPU(b)()): on a shared, loaded machine
// the wall time per operation measures the queue for a core as well.
func measureCPU(b *testing.B) func() {
	b.ResetTimer()
	start := cpuTime(b)
	return func() { b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op") }
}

// BenchmarkContextChange measures what one change of a 100,000-message mailbox costs the
// session that sees it, with updating contexts of RFC 5267 4.3 open (context.go) and
// without: a flag change of a random message (\Seen toggled: it leaves or joins every
// context's result), and the expunge of a random message with the arrival of a new one.
// "research" is what the change would cost if each context searched again (UNSEEN over the
// view), the approach the contexts avoid.
func BenchmarkContextChange(b *testing.B) {
	for _, tc := range []struct {
		name            string
		searches, sorts int
	}{
		{"none", 0, 0}, {"search1", 1, 0}, {"sort1", 0, 1}, {"search5+sort5", 5, 5},
	} {
		b.Run("flag/"+tc.name, func(b *testing.B) {
			c := contextBench(b, benchContextMessages)
			openBenchContexts(b, c, tc.searches, tc.sorts)
			s := c.sel
			modseq := uint64(benchContextMessages)
			defer measureCPU(b)()
			for b.Loop() {
				i := rand.IntN(s.msgs.len())
				var flags []string
				if !slices.Contains(s.msgs.flags(i), `\Seen`) {
					flags = []string{`\Seen`}
				}
				modseq++
				s.msgs.setFlags(i, flags, modseq)
				s.noteContextFlags(s.msgs.uid(i))
				c.flushContextFlags()
				c.bw.Flush()
			}
		})
		b.Run("expunge+append/"+tc.name, func(b *testing.B) {
			c := contextBench(b, benchContextMessages)
			openBenchContexts(b, c, tc.searches, tc.sorts)
			s := c.sel
			next := uint32(benchContextMessages + 1)
			box := sortBoxKey{owner: s.owner, mailboxID: s.mailboxID, uidValidity: s.uidValidity}
			defer measureCPU(b)()
			for b.Loop() {
				idx := []int{rand.IntN(s.msgs.len())}
				c.contextsExpunged(idx)
				s.msgs.remove(idx)
				b.StopTimer()
				c.srv.sortKeys.put(box, []uint32{next}, []sortEntry{{msg: sortthread.Message{Subject: fmt.Sprintf("subject %05d", rand.IntN(10000)), Date: int64(next)}}})
				b.StartTimer()
				s.msgs.append(next, uint64(next), nil)
				c.contextsAppended(s.msgs.len() - 1)
				c.bw.Flush()
				next++
			}
		})
	}
	b.Run("flag/research10", func(b *testing.B) {
		c := contextBench(b, benchContextMessages)
		s := c.sel
		unseen := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}
		modseq := uint64(benchContextMessages)
		defer measureCPU(b)()
		for b.Loop() {
			i := rand.IntN(s.msgs.len())
			modseq++
			s.msgs.setFlags(i, nil, modseq)
			for range 10 {
				if _, _, err := c.searchMatches(unseen); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
