package imap

import (
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestMatchesAllAfterFold: searchMatches hands matchesAll the criteria that
// foldCriteria built, minus the exact keys (exactAnswers.without). For SEARCH BODY
// <common word> alone that is no key at all, so the "lone exact key" shortcut should
// apply; foldCriteria gives Not and Or non-nil empty slices, which reflect's IsZero
// counts as set.
func TestMatchesAllAfterFold(t *testing.T) {
	crit := foldCriteria(&imap.SearchCriteria{Body: []string{"report"}})
	exact := &exactAnswers{keys: []indexKey{{'b', 0}}, results: []*metadatapb.SearchTextResult{{Exact: true, LastUid: 10}}}
	rest := exact.without(crit)
	if !matchesAll(rest) {
		t.Fatalf("matchesAll(without(foldCriteria(BODY report))) = false; rest = %#v", rest)
	}
}

// TestPositionsInMatchesHas: positionsIn (one pass) gives the positions a
// candidateSet.has walk gives, for random views and bitmaps, with the last indexed UID
// anywhere (0, inside, above the view, MaxUint32) and views holding UIDs near 2^32.
func TestPositionsInMatchesHas(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 9051))
	for iter := range 3000 {
		var uids []uint32
		base := uint32(1)
		if iter%5 == 0 {
			base = math.MaxUint32 - 400
		}
		for u := base; u < base+300 && u != 0; u++ {
			if r.IntN(3) != 0 {
				uids = append(uids, u)
			}
		}
		if iter%7 == 0 {
			uids = nil
		}
		bitmap := make([]byte, r.IntN(60))
		for k := range bitmap {
			bitmap[k] = byte(r.Uint32())
		}
		var last uint32
		switch r.IntN(4) {
		case 0:
			last = 0
		case 1:
			last = math.MaxUint32
		case 2:
			last = uint32(r.IntN(500))
		default:
			if len(uids) > 0 {
				last = uids[r.IntN(len(uids))]
			}
		}
		set := &candidateSet{last: last, bitmap: bitmap}
		list := msgListOf(uids...)
		got := set.positionsIn(&list)
		want := []int{}
		walk := &candidateSet{last: last, bitmap: bitmap}
		for i, u := range uids {
			if walk.has(u) {
				want = append(want, i)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("iter %d last %d: positionsIn = %v, has = %v", iter, last, got, want)
		}
	}
}

// searchOneOfMillion runs searchMatches for crit, named what, over a view of 1,000,000
// messages, message i with the flags flagsOf(i), and fails unless it matches the fifth
// message alone and allocates at most 1 MiB (some 400 bytes measured; a per-message
// allocation of 8 bytes or more is 8 MB).
func searchOneOfMillion(t *testing.T, what string, flagsOf func(i int) []string, crit *imap.SearchCriteria) {
	t.Helper()
	srv := NewServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := &conn{srv: srv, bw: newConnWriter(io.Discard), account: &metadatapb.Account{Email: "demo@example.com"}}
	s := &selected{owner: "demo@example.com", mailboxID: 1, uidValidity: 1, rights: rights("lrswipkxtecda")}
	c.sel = s
	const n = 1_000_000
	for i := range n {
		s.msgs.append(uint32(i+1), uint64(i+1), flagsOf(i))
	}
	s.msgs.sets.live = len(s.msgs.sets.list)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	matched, _, err := c.searchMatches(crit)
	runtime.ReadMemStats(&after)
	if err != nil || !slices.Equal(matched, []int{4}) {
		t.Fatalf("searchMatches(%s) = %v, %v", what, matched, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("%s over %d messages allocated %d bytes for one match", what, n, alloc)
	}
}

// TestNarrowSearchAllocatesByMatches: a SEARCH without record keys that matches one
// message of a large view (SEARCH DELETED, UID SEARCH UNSEEN, as clients send at each sync) should allocate in
// step with its matches, not 8 bytes per message of the view (246b210 sized the positions
// by the view for SORT ALL; every narrow SEARCH, SORT and each mailbox of a MULTISEARCH now
// pays it too).
func TestNarrowSearchAllocatesByMatches(t *testing.T) {
	deletedFifth := func(i int) []string {
		if i == 4 {
			return []string{`\Deleted`}
		}
		return nil
	}
	searchOneOfMillion(t, "SEARCH DELETED", deletedFifth, &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}})
}

// TestUIDSetSearchAllocatesPerMessage: UID SEARCH UID 5 over a large view does not
// allocate per message (matchCriteria once converted each UID set and boxed it for
// imap.IsSearchRes for every message it tested: 24 bytes a message; now uidSetContains and
// isSearchResUIDs).
func TestUIDSetSearchAllocatesPerMessage(t *testing.T) {
	searchOneOfMillion(t, "UID SEARCH UID 5", func(int) []string { return nil }, &imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(5)}})
}

// TestIsSearchResUIDs: the "$" marker and only it, as imap.IsSearchRes says.
func TestIsSearchResUIDs(t *testing.T) {
	for _, set := range []imap.UIDSet{imap.SearchRes(), nil, {}, imap.UIDSetNum(5), make(imap.UIDSet, 0, 1)} {
		if got, want := isSearchResUIDs(set), imap.IsSearchRes(set); got != want {
			t.Errorf("isSearchResUIDs(%v, cap %d) = %v, imap.IsSearchRes %v", set, cap(set), got, want)
		}
	}
}
