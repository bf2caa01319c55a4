package imap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// modelMsg is a message of the plain-slice model of a msgList.
type modelMsg struct {
	uid    uint32
	modseq uint64
	flags  string
}

// modelList is a msgList next to the plain slice it must equal.
type modelList struct {
	l    msgList
	msgs []modelMsg
}

// check compares the list with its model, message by message, through every accessor, and
// checks the spine's invariants.
func (m *modelList) check(t *testing.T, what string) {
	t.Helper()
	l := &m.l
	if l.len() != len(m.msgs) {
		t.Fatalf("%s: %d messages, model %d", what, l.len(), len(m.msgs))
	}
	n := 0
	for k, c := range l.chunks {
		if len(c.uids) == 0 || len(c.uids) > chunkSize || len(c.modseqs) != len(c.uids) || len(c.refs) != len(c.uids) {
			t.Fatalf("%s: chunk %d has %d/%d/%d messages", what, k, len(c.uids), len(c.modseqs), len(c.refs))
		}
		if l.starts[k] != n || l.firsts[k] != c.uids[0] {
			t.Fatalf("%s: chunk %d starts at %d (%d), first UID %d (%d)", what, k, l.starts[k], n, l.firsts[k], c.uids[0])
		}
		n += len(c.uids)
	}
	if len(l.starts) != len(l.chunks) || len(l.firsts) != len(l.chunks) || n != l.n {
		t.Fatalf("%s: spine of %d chunks, %d starts, %d firsts, %d messages of %d", what, len(l.chunks), len(l.starts), len(l.firsts), n, l.n)
	}
	for i, want := range m.msgs {
		if l.uid(i) != want.uid || l.modseq(i) != want.modseq || strings.Join(l.flags(i), " ") != want.flags {
			t.Fatalf("%s: message %d is %d@%d %v, model %+v", what, i, l.uid(i), l.modseq(i), l.flags(i), want)
		}
		if j, found := l.search(want.uid); !found || j != i {
			t.Fatalf("%s: search(%d) = %d %v, want %d", what, want.uid, j, found, i)
		}
		if j, found := l.search(want.uid + 1); found != (i+1 < len(m.msgs) && m.msgs[i+1].uid == want.uid+1) || j != i+1 {
			t.Fatalf("%s: search(%d) = %d %v, after message %d", what, want.uid+1, j, found, i)
		}
	}
	if len(m.msgs) > 0 && l.last() != m.msgs[len(m.msgs)-1].uid || len(m.msgs) == 0 && l.last() != 0 {
		t.Fatalf("%s: last %d", what, l.last())
	}
	from := rand.IntN(len(m.msgs) + 1)
	to := from + rand.IntN(len(m.msgs)-from+1)
	next := from
	for at, run := range l.runs(from, to) {
		if at != next || len(run.uids) == 0 {
			t.Fatalf("%s: runs(%d, %d) yields %d messages at %d, want at %d", what, from, to, len(run.uids), at, next)
		}
		for j, uid := range run.uids {
			if want := m.msgs[at+j]; uid != want.uid || run.modseqs[j] != want.modseq {
				t.Fatalf("%s: runs(%d, %d): message %d is %d@%d, model %+v", what, from, to, at+j, uid, run.modseqs[j], want)
			}
		}
		next = at + len(run.uids)
	}
	if next != to {
		t.Fatalf("%s: runs(%d, %d) ends at %d", what, from, to, next)
	}
	if len(m.msgs) > 0 {
		floor := m.msgs[rand.IntN(len(m.msgs))].modseq
		above := l.modseqAbove(floor)
		for _, i := range []int{from, to - 1, 0, len(m.msgs) - 1, from} { // out of order too
			if i >= 0 && i < len(m.msgs) && above(i) != (m.msgs[i].modseq > floor) {
				t.Fatalf("%s: modseqAbove(%d)(%d) = %v, model %+v", what, floor, i, above(i), m.msgs[i])
			}
		}
		for i := from; i < to; i++ {
			if above(i) != (m.msgs[i].modseq > floor) {
				t.Fatalf("%s: modseqAbove(%d)(%d) = %v, model %+v", what, floor, i, above(i), m.msgs[i])
			}
		}
	}
}

// TestMsgListModel: random appends, insertions, flag changes, removals (of single messages,
// of whole chunks, of long runs), compactions and shares of a view and sessions, each list
// compared with a plain slice after every step. A chunk a list may change in place is in
// no other list's spine, and a spine one list may change is no other's.
func TestMsgListModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { msgListModel(t, rand.New(rand.NewPCG(seed, 14))) })
	}
}

func msgListModel(t *testing.T, rng *rand.Rand) {
	flagSets := []string{"", `\Seen`, `\Seen \Flagged`, `$Work`, `\Deleted`}
	lists := make([]*modelList, 3) // lists[0] is the view, the others sessions
	for k := range lists {
		lists[k] = &modelList{}
	}
	view := lists[0]
	modseq := uint64(0)
	nextUID := uint32(1)
	for range 2*chunkSize + 100 {
		modseq++
		view.l.append(nextUID, modseq, strings.Fields(flagSets[rng.IntN(len(flagSets))]))
		view.msgs = append(view.msgs, modelMsg{nextUID, modseq, view.msgs0Flags()})
		nextUID += 3 // gaps for insertions
	}
	for k := 1; k < len(lists); k++ {
		lists[k].l, lists[k].msgs = view.l.share(), slices.Clone(view.msgs)
	}
	for step := range 600 {
		m := lists[rng.IntN(len(lists))]
		var what string
		switch op := rng.IntN(10); {
		case op < 2: // appends
			what = "append"
			for range 1 + rng.IntN(chunkSize/2) {
				modseq++
				flags := flagSets[rng.IntN(len(flagSets))]
				m.l.append(nextUID, modseq, strings.Fields(flags))
				m.msgs = append(m.msgs, modelMsg{nextUID, modseq, flags})
				nextUID += 3
			}
		case op < 4: // an insertion into a gap
			what = "insert"
			uid := 1 + uint32(rng.IntN(int(nextUID)))
			i, found := m.l.search(uid)
			if found {
				continue
			}
			modseq++
			flags := flagSets[rng.IntN(len(flagSets))]
			m.l.insert(i, uid, modseq, strings.Fields(flags))
			m.msgs = slices.Insert(m.msgs, i, modelMsg{uid, modseq, flags})
		case op < 6 && len(m.msgs) > 0: // flag changes
			what = "setFlags"
			for range 1 + rng.IntN(20) {
				i := rng.IntN(len(m.msgs))
				modseq++
				flags := flagSets[rng.IntN(len(flagSets))]
				m.l.setFlags(i, strings.Fields(flags), modseq)
				m.msgs[i] = modelMsg{m.msgs[i].uid, modseq, flags}
			}
		case op < 8 && len(m.msgs) > 0: // removals: scattered, a whole chunk, or a long run
			var idx []int
			switch rng.IntN(3) {
			case 0:
				what = "remove scattered"
				for range 1 + rng.IntN(50) {
					idx = append(idx, rng.IntN(len(m.msgs)))
				}
			case 1:
				what = "remove chunk"
				k := rng.IntN(len(m.l.chunks))
				for i := range len(m.l.chunks[k].uids) {
					idx = append(idx, m.l.starts[k]+i)
				}
			default:
				what = "remove run"
				from := rng.IntN(len(m.msgs))
				for i := from; i < min(len(m.msgs), from+rng.IntN(2*chunkSize)); i++ {
					idx = append(idx, i)
				}
			}
			slices.Sort(idx)
			idx = slices.Compact(idx)
			m.l.remove(idx)
			for k := len(idx) - 1; k >= 0; k-- {
				m.msgs = slices.Delete(m.msgs, idx[k], idx[k]+1)
			}
		case op < 9: // a session takes the view's list, or the view a session's
			what = "share"
			from := lists[rng.IntN(len(lists))]
			if from == m {
				continue
			}
			m.l, m.msgs = from.l.share(), slices.Clone(from.msgs)
		default:
			what = "compactSets"
			m.l.sets.live = 0 // as if every set had gone out of use since the load
			for range minSetsToCompact {
				m.l.intern([]string{fmt.Sprint(rng.Int())})
			}
			m.l.compactSets()
		}
		for k, o := range lists {
			o.check(t, fmt.Sprintf("step %d (%s), list %d", step, what, k))
		}
		checkOwnership(t, lists, step)
		for _, o := range lists[1:] {
			if same, _ := o.l.sameMessages(&view.l); same != slices.EqualFunc(o.msgs, view.msgs, func(a, b modelMsg) bool { return a.uid == b.uid && a.modseq == b.modseq }) {
				t.Fatalf("step %d: sameMessages disagrees with the model", step)
			}
		}
	}
}

// msgs0Flags returns the flags of the model's newest message as the list holds them.
func (m *modelList) msgs0Flags() string {
	return strings.Join(m.l.flags(m.l.len()-1), " ")
}

// checkOwnership fails when a chunk or spine that one list may change in place is read by
// another, or when two chunks of the same content (msgChunk.content) hold different
// messages or MODSEQs.
func checkOwnership(t *testing.T, lists []*modelList, step int) {
	t.Helper()
	byContent := map[uint64]*msgChunk{}
	for a, x := range lists {
		for _, c := range x.l.chunks {
			o, found := byContent[c.content]
			if !found {
				byContent[c.content] = c
				continue
			}
			if !slices.Equal(o.uids, c.uids) || !slices.Equal(o.modseqs, c.modseqs) {
				t.Fatalf("step %d: a chunk of list %d has the content of another chunk and other messages", step, a)
			}
		}
	}
	for a, x := range lists {
		for b, y := range lists {
			if a == b {
				continue
			}
			if !x.l.spineShared && len(x.l.chunks) > 0 && len(y.l.chunks) > 0 && &x.l.chunks[0] == &y.l.chunks[0] {
				t.Fatalf("step %d: list %d changes the spine list %d reads", step, a, b)
			}
			for _, c := range x.l.chunks {
				if c.gen == x.l.gen && slices.Contains(y.l.chunks, c) {
					t.Fatalf("step %d: list %d changes a chunk list %d reads", step, a, b)
				}
			}
		}
	}
}
