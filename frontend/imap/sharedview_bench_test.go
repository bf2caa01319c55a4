package imap

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// benchSharedMessages and benchSharedSessions are the mailbox of BenchmarkSharedViewChange
// and BenchmarkSharedViewCommands: large enough that a session's messages are megabytes,
// with sessions idling in it.
const (
	benchSharedMessages = 200_000
	benchSharedSessions = 10
)

// sharedViewBench returns a loaded view of n messages (every third one \Seen, every
// seventh $Work) and sessions that have joined it, as SELECT leaves them.
func sharedViewBench(b *testing.B, n, sessions int) (*mailView, []*conn) {
	srv := NewServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	v := newMailView(srv, viewKey{owner: "demo@example.com", mailboxID: 1, user: "demo@example.com"})
	page := &metadatapb.ListMessagesResponse{
		Mailbox:  &metadatapb.Mailbox{UidValidity: 1, UidNext: uint32(n + 1), HighestModseq: uint64(n), Messages: uint32(n)},
		FlagSets: []*metadatapb.FlagSet{{}, {Flags: []string{`\Seen`}}, {Flags: []string{`$Work`}}, {Flags: []string{`\Seen`, `$Work`}}},
	}
	for i := range n {
		page.Uids = append(page.Uids, uint32(i+1))
		page.Modseqs = append(page.Modseqs, uint64(i+1))
		var set uint32
		if i%3 == 0 {
			set |= 1
		}
		if i%7 == 0 {
			set |= 2
		}
		page.FlagSetIndexes = append(page.FlagSetIndexes, set)
	}
	v.addPage(page, true)
	v.mu.Lock()
	v.loaded = true
	v.checkReadyLocked()
	v.mu.Unlock()
	conns := make([]*conn, sessions)
	for k := range conns {
		view, feed, err := v.join(b.Context(), uint64(n), nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[k] = &conn{srv: srv, rev2: true, bw: newConnWriter(io.Discard), sel: &selected{
			msgs: view.msgs, feed: feed, rights: rights("lrswipkxtecda"), uidValidity: 1,
			owner: "demo@example.com", mailboxID: 1,
		}}
	}
	return v, conns
}

// heapInUse returns the bytes the heap holds after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkSharedViewChange measures a change of a 200,000-message mailbox in which ten
// sessions idle: the view applies a flag change of a random message and a new message, and
// every session takes both (sendUpdates, as IDLE does). heap-B/session is what the
// sessions hold beyond the view after the run (-benchtime 100x for a fixed count of
// changes): their own copies of what they no longer share with it.
func BenchmarkSharedViewChange(b *testing.B) {
	v, conns := sharedViewBench(b, benchSharedMessages, benchSharedSessions)
	base := heapInUse()
	uid, modseq := uint32(benchSharedMessages), uint64(benchSharedMessages)
	defer measureCPU(b)()
	for b.Loop() {
		uid++
		modseq += 2
		v.apply(&metadatapb.ChangeBatch{HighestModseq: modseq, Changes: []*metadatapb.Change{
			{Kind: metadatapb.ChangeKind_CHANGE_KIND_FLAGS, Uid: uint32(1 + rand.IntN(benchSharedMessages)), Modseq: modseq - 1, Flags: []string{`\Seen`, `\Flagged`}},
			{Kind: metadatapb.ChangeKind_CHANGE_KIND_APPEND, Uid: uid, Modseq: modseq},
		}})
		for _, c := range conns {
			c.sendUpdates(true)
		}
	}
	b.StopTimer()
	for _, c := range conns {
		if c.sel.msgs.len() != v.msgs.len() {
			b.Fatalf("a session has %d messages, the view %d", c.sel.msgs.len(), v.msgs.len())
		}
	}
	held := heapInUse()
	b.ReportMetric(float64(int64(held)-int64(base))/float64(len(conns)), "heap-B/session")
	runtime.KeepAlive(conns)
}

// BenchmarkSharedViewCommands measures the commands that read every message of a session's
// list, in a 200,000-message mailbox: as SELECT leaves the session ("joined"), and after
// changes of the view it applied ("changed", a list partly its own).
func BenchmarkSharedViewCommands(b *testing.B) {
	for _, state := range []string{"joined", "changed"} {
		v, conns := sharedViewBench(b, benchSharedMessages, 1)
		c := conns[0]
		if state == "changed" {
			modseq := uint64(benchSharedMessages)
			for k := range 100 {
				modseq++
				v.apply(&metadatapb.ChangeBatch{HighestModseq: modseq, Changes: []*metadatapb.Change{
					{Kind: metadatapb.ChangeKind_CHANGE_KIND_FLAGS, Uid: uint32(1 + k*1999), Modseq: modseq, Flags: []string{`\Flagged`}},
				}})
				c.sendUpdates(true)
			}
		}
		for _, bm := range []struct{ name, line string }{
			{"FetchAllFlags", "f FETCH 1:* (FLAGS)"},
			{"UIDFetchRangeFlags", "f UID FETCH 50000:150000 (FLAGS)"},
			{"FetchChangedSince", "f FETCH 1:* (FLAGS) (CHANGEDSINCE 199990)"},
		} {
			cmd, err := imapwire.ParseCommand([]byte(bm.line))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%s", bm.name, state), func(b *testing.B) {
				defer measureCPU(b)()
				for b.Loop() {
					c.cmd = cmd
					if err := c.cmdFetch(cmd); err != nil {
						b.Fatal(err)
					}
					c.bw.Flush()
				}
			})
		}
		b.Run("SearchUnseen/"+state, func(b *testing.B) {
			unseen := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}
			defer measureCPU(b)()
			for b.Loop() {
				if _, _, err := c.searchMatches(unseen); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
