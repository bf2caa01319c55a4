package imap

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// TestMsgListConcurrentShare: a view list changed under its lock on one goroutine,
// sessions on others reading every message of their own lists, changing them, and taking
// the view's list again (as rejoin does), all with -race.
func TestMsgListConcurrentShare(t *testing.T) {
	flagSets := []string{"", `\Seen`, `\Seen \Flagged`, `$Work`, `\Deleted`}
	var mu sync.Mutex
	var view msgList
	nextUID := uint32(1)
	var modseq uint64
	for range 3*chunkSize + 17 {
		modseq++
		view.append(nextUID, modseq, strings.Fields(flagSets[int(nextUID)%len(flagSets)]))
		nextUID += 2
	}
	mutate := func(l *msgList, rng *rand.Rand, uidBase *uint32, ms *uint64) {
		switch op := rng.IntN(6); {
		case op == 0:
			for range 1 + rng.IntN(200) {
				*ms++
				l.append(*uidBase, *ms, strings.Fields(flagSets[rng.IntN(len(flagSets))]))
				*uidBase += 2
			}
		case op == 1 && l.len() > 0:
			uid := 1 + uint32(rng.IntN(int(l.last())))
			if i, found := l.search(uid); !found {
				*ms++
				l.insert(i, uid, *ms, nil)
			}
		case op == 2 && l.len() > 0:
			for range 1 + rng.IntN(50) {
				*ms++
				l.setFlags(rng.IntN(l.len()), strings.Fields(flagSets[rng.IntN(len(flagSets))]), *ms)
			}
		case op == 3 && l.len() > 100:
			var uids []uint32
			for range 1 + rng.IntN(100) {
				uids = append(uids, l.uid(rng.IntN(l.len())))
			}
			l.remove(l.indexesOf(uids))
		case op == 4:
			l.sets.live = 0
			for range minSetsToCompact {
				l.intern([]string{fmt.Sprint(rng.Int())})
			}
			l.compactSets()
		}
	}
	readAll := func(l *msgList) uint64 {
		var sum uint64
		for i := range l.len() {
			sum += uint64(l.uid(i)) + l.modseq(i) + uint64(len(l.flags(i)))
		}
		for at, r := range l.runs(0, l.len()) {
			sum += uint64(at) + uint64(len(r.refs))
			for _, ref := range r.refs {
				sum += uint64(len(l.sets.list[ref]))
			}
		}
		return sum
	}
	const sessions = 4
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the view
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for step := 0; step < 400; step++ {
			mu.Lock()
			mutate(&view, rng, &nextUID, &modseq)
			readAll(&view)
			mu.Unlock()
		}
		close(done)
	}()
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(s)+10, 3))
			mu.Lock()
			own := view.share()
			mu.Unlock()
			uidBase, ms := uint32(1<<31), uint64(1<<40)
			for {
				select {
				case <-done:
					return
				default:
				}
				readAll(&own)
				if rng.IntN(3) == 0 {
					mutate(&own, rng, &uidBase, &ms)
				}
				if rng.IntN(4) == 0 {
					mu.Lock()
					own.sharedChunks(&view)
					own.sameMessages(&view)
					own = view.share()
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}
