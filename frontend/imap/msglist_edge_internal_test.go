package imap

import (
	"math"
	"slices"
	"testing"
)

// TestMsgListHighUIDs: UIDs up to 2^32-1 across chunk boundaries; search, last,
// indexesOf, and insert at the front of a chunk, then emptying the list and refilling it.
func TestMsgListHighUIDs(t *testing.T) {
	var l msgList
	var model []uint32
	base := uint32(math.MaxUint32 - 3*chunkSize*2)
	for k := range 3 * chunkSize {
		uid := base + uint32(2*k)
		l.append(uid, uint64(k+1), nil)
		model = append(model, uid)
	}
	// fill the top: UIDs 2^32-2 and 2^32-1
	for _, u := range []uint32{math.MaxUint32 - 1, math.MaxUint32} {
		if u > l.last() {
			l.append(u, 1, nil)
			model = append(model, u)
		}
	}
	shared := l.share()
	check := func(what string, l *msgList, model []uint32) {
		t.Helper()
		if l.len() != len(model) {
			t.Fatalf("%s: len %d, want %d", what, l.len(), len(model))
		}
		for i, u := range model {
			if l.uid(i) != u {
				t.Fatalf("%s: uid(%d)=%d want %d", what, i, l.uid(i), u)
			}
			if j, f := l.search(u); !f || j != i {
				t.Fatalf("%s: search(%d)=%d %v want %d", what, u, j, f, i)
			}
		}
		for _, u := range []uint32{0, 1, base - 1, math.MaxUint32, math.MaxUint32 - 1} {
			j, f := l.search(u)
			wj, wf := slices.BinarySearch(model, u)
			if j != wj || f != wf {
				t.Fatalf("%s: search(%d)=%d %v want %d %v", what, u, j, f, wj, wf)
			}
		}
		if len(model) > 0 && l.last() != model[len(model)-1] {
			t.Fatalf("%s: last", what)
		}
	}
	check("loaded", &l, model)
	// insert before the first UID of chunk 1 and chunk 2 (odd UIDs are free)
	for _, k := range []int{1, 2} {
		u := l.firsts[k] - 1
		i, f := l.search(u)
		if f {
			t.Fatal("found")
		}
		l.insert(i, u, 9, nil)
		model = slices.Insert(model, i, u)
	}
	check("inserted", &l, model)
	origModel := model[:0:0]
	for i := range shared.len() {
		origModel = append(origModel, shared.uid(i))
	}
	// remove everything, then refill
	all := make([]int, l.len())
	for i := range all {
		all[i] = i
	}
	l.remove(all)
	check("emptied", &l, nil)
	l.insert(0, 7, 1, nil)
	l.append(math.MaxUint32, 2, nil)
	check("refilled", &l, []uint32{7, math.MaxUint32})
	check("shared untouched", &shared, origModel)
}
