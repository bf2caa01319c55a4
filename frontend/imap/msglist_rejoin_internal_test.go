package imap

import (
	"fmt"
	"sync"
	"testing"
)

// compactedView is a view's list of messages and the lists of sessions that shared it, after
// the view and every session applied the same flag changes (as mailView.apply and
// conn.applyChanges do, compacting their flag sets after each batch) until the flag sets
// were compacted: what selected.rejoin then compares under the view's lock.
type compactedView struct {
	view     msgList
	sessions []msgList
}

// newCompactedView loads a view of n messages (in two flag sets, as a listing would),
// shares it with sessions sessions, and applies to it and to each session batches of
// flag changes that give messages of the first chunk flag sets of their own, one after
// another, until the view has compacted its sets.
func newCompactedView(tb testing.TB, n, sessions int) *compactedView {
	tb.Helper()
	cv := &compactedView{}
	uids, modseqs, refs := make([]uint32, n), make([]uint64, n), make([]uint32, n)
	seen, none := cv.view.intern([]string{`\Seen`}), cv.view.intern(nil)
	for i := range n {
		uids[i], modseqs[i], refs[i] = uint32(2*i+1), uint64(i+1), none
		if i%3 == 0 {
			refs[i] = seen
		}
	}
	cv.view.appendAll(uids, modseqs, refs)
	cv.view.sets.live = len(cv.view.sets.list)
	for range sessions {
		cv.sessions = append(cv.sessions, cv.view.share())
	}
	last, live := cv.view.chunks[len(cv.view.chunks)-1], cv.view.sets.live
	modseq := uint64(n)
	const batch = 100
	for b := 0; cv.view.sets.live == live; b++ { // until a compaction counted the live sets again
		if b*batch > 2*minSetsToCompact {
			tb.Fatalf("no compaction after %d flag changes", b*batch)
		}
		for j := range batch {
			modseq++
			i := 7 * (j % 50) // in the first chunk; most sets go out of use
			flags := []string{`\Seen`, fmt.Sprintf("$kw%d", b*batch+j)}
			cv.view.setFlags(i, flags, modseq)
			for k := range cv.sessions {
				cv.sessions[k].setFlags(i, flags, modseq)
			}
		}
		cv.view.compactSets()
		for k := range cv.sessions {
			cv.sessions[k].compactSets()
		}
	}
	if cv.view.chunks[len(cv.view.chunks)-1] == last {
		tb.Fatal("the view's last chunk is the one it had before the compaction")
	}
	return cv
}

// TestRejoinAfterCompaction: after the view and its sessions compacted their flag sets,
// every chunk of each is a copy of its own, yet a session that holds the view's messages
// compares one by one only those of the chunk the flag changes touched, not all of them
// (issue 14: 200,000 comparisons per session under the view's lock), and then holds the
// view's messages and flags.
func TestRejoinAfterCompaction(t *testing.T) {
	const messages = 200_000
	cv := newCompactedView(t, messages, 4)
	for k := range cv.sessions {
		s := &cv.sessions[k]
		if shared := s.sharedChunks(&cv.view); shared != 0 {
			t.Fatalf("session %d shares %d chunks with the compacted view, want none", k, shared)
		}
		same, compared := s.sameMessages(&cv.view)
		if !same {
			t.Fatalf("session %d: sameMessages = false, want true", k)
		}
		if compared > chunkSize {
			t.Errorf("session %d compared %d messages, want at most %d (the chunk the changes touched)", k, compared, chunkSize)
		}
		want := describeMsgs(s)
		*s = cv.view.share()
		if got := describeMsgs(s); got != want {
			t.Fatalf("session %d after the rejoin holds other messages or flags", k)
		}
	}

	// A session whose MODSEQ of one message differs from the view's is not the same,
	// wherever the message is.
	for _, i := range []int{0, messages / 2, messages - 1} {
		s := cv.view.share()
		s.setFlags(i, []string{`\Answered`}, s.modseq(i)+1)
		if same, _ := s.sameMessages(&cv.view); same {
			t.Errorf("a session with message %d changed is the same as the view", i)
		}
	}
}

// BenchmarkRejoinAfterCompaction measures the time under the view's lock of the next rejoin
// of each of 100 sessions of a 200,000-message view after the view and the sessions
// compacted their flag sets (selected.rejoin: the comparison and the share), per session.
func BenchmarkRejoinAfterCompaction(b *testing.B) {
	const messages, sessions = 200_000, 100
	var mu sync.Mutex // the view's lock
	for b.Loop() {
		b.StopTimer()
		cv := newCompactedView(b, messages, sessions)
		b.StartTimer()
		for k := range cv.sessions {
			mu.Lock()
			if same, _ := cv.sessions[k].sameMessages(&cv.view); same {
				cv.sessions[k] = cv.view.share()
			}
			mu.Unlock()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sessions), "ns/session")
}
