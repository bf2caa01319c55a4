package sortthread

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestSortMatchesComparison checks the rank-based Sort against RFC 5256 3 stated directly:
// compare the keys in order, REVERSE negating one, the sequence number last; with one key
// and with several, with values that pack into 32 bits and values that do not.
func TestSortMatchesComparison(t *testing.T) {
	msgs, _ := benchMessages(3000)
	for i, m := range msgs {
		m.To, m.Cc = msgs[(i*7)%len(msgs)].From, strings.ToUpper(m.Subject[:3])
		m.Size %= 5000 // ties
	}
	// Dates spanning 2^41 seconds: with SIZE they do not pack into 64 bits (orderPacked),
	// so both the packed and the compared orders are checked.
	msgs[10].Date, msgs[20].Date = 1<<40, -(1 << 40)
	direct := func(k Key, a, b *Message) int {
		switch k {
		case Arrival:
			return cmp.Compare(a.Arrival, b.Arrival)
		case Date:
			return cmp.Compare(a.Date, b.Date)
		case Size:
			return cmp.Compare(a.Size, b.Size)
		}
		v := stringKey(k)
		return strings.Compare(v(a), v(b))
	}
	for _, criteria := range [][]Criterion{
		{{Key: Subject}}, {{Key: Subject, Reverse: true}}, {{Key: From}, {Key: Size, Reverse: true}},
		{{Key: Cc, Reverse: true}, {Key: To}, {Key: Arrival}}, {{Key: Size}}, {{Key: Date, Reverse: true}},
		{{Key: DisplayFrom}, {Key: DisplayTo, Reverse: true}}, {{Key: Date}, {Key: Size, Reverse: true}},
	} {
		got := slices.Clone(msgs)
		Sort(got, criteria)
		want := slices.Clone(msgs)
		slices.SortStableFunc(want, func(a, b *Message) int {
			for _, c := range criteria {
				if r := direct(c.Key, a, b); r != 0 {
					if c.Reverse {
						return -r
					}
					return r
				}
			}
			return 0 // stable: sequence order
		})
		if !slices.Equal(got, want) {
			t.Errorf("Sort by %v differs from the direct comparison", criteria)
		}
		// Compare, which keeps SORT contexts in order, agrees with Sort.
		byCompare := slices.Clone(msgs)
		slices.SortFunc(byCompare, func(a, b *Message) int { return Compare(a, b, criteria) })
		if !slices.Equal(byCompare, want) {
			t.Errorf("sorting with Compare by %v differs from Sort", criteria)
		}
	}
}

// TestRadixSort: the radix sort of packed keys (large inputs) agrees with a comparison
// sort, for keys of every width, keys with many equal digits and a single distinct key.
func TestRadixSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, width := range []int{1, 11, 12, 33, 53, 64} {
		for _, n := range []int{5000, 70000} {
			keys := make([]uint64, n)
			for i := range keys {
				keys[i] = rng.Uint64() >> (64 - width)
				if i%3 == 0 {
					keys[i] &^= 0xfff000 // digits equal across many keys
				}
			}
			want := slices.Clone(keys)
			slices.Sort(want)
			radixSort(keys, 0, width)
			if !slices.Equal(keys, want) {
				t.Fatalf("width %d, %d keys: radix sort differs", width, n)
			}
		}
	}
	// Keys whose low bits ascend as given (a position): only the bits above are sorted.
	for _, from := range []int{3, 11, 20} {
		keys := make([]uint64, 70000)
		for i := range keys {
			keys[i] = rng.Uint64N(1<<13)<<from | uint64(i)*(1<<from)/uint64(len(keys))
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		radixSort(keys, from, from+13)
		if !slices.Equal(keys, want) {
			t.Fatalf("low %d bits given ascending: radix sort differs", from)
		}
	}
	same := slices.Repeat([]uint64{42}, 5000)
	radixSort(same, 0, 6)
	if slices.ContainsFunc(same, func(k uint64) bool { return k != 42 }) {
		t.Error("equal keys changed")
	}
}

// TestRanksOctetOrder: Ranks orders as strings.Compare does, for values that tie on
// their first sixteen octets, differ past them, hold NULs (a value and its extension by
// NULs), are empty or shorter than eight octets.
func TestRanksOctetOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []byte{0, 1, 'a', 'b', 0x7f, 0x80, 0xff}
	for iter := range 200 {
		seen := map[string]bool{}
		var distinct []string
		for range r.IntN(300) {
			n := r.IntN(14)
			if iter%3 == 0 {
				n = 8 + r.IntN(12) // mostly ties on the prefix
			}
			b := make([]byte, n)
			for k := range b {
				b[k] = alphabet[r.IntN(len(alphabet))]
			}
			if v := string(b); !seen[v] {
				seen[v] = true
				distinct = append(distinct, v)
			}
		}
		rank := Ranks(distinct)
		for a := range distinct {
			for b := range distinct {
				if got, want := cmp.Compare(rank[a], rank[b]), strings.Compare(distinct[a], distinct[b]); got != want {
					t.Fatalf("iter %d: ranks of %q and %q compare %d, the values %d", iter, distinct[a], distinct[b], got, want)
				}
			}
		}
	}
}

// TestOrderByRankFewRows: a SORT by one string key of a few messages of a mailbox with
// many distinct values (ranks far above the count, so Order packs and radix sorts instead
// of counting) and of all of them (counting) order as the direct comparison does, REVERSE
// too, equal values in position order.
func TestOrderByRankFewRows(t *testing.T) {
	msgs, _ := benchMessages(3000)
	for i, m := range msgs {
		m.Subject = fmt.Sprintf("%05d", (i*7919)%2500) // 2,500 distinct, some equal
	}
	cols := ColumnsOf(msgs, nil)
	for _, rows := range [][]int32{{2999, 5, 17, 2500, 3, 4}, nil} {
		if rows == nil {
			rows = cols.Rows
		}
		sub := *cols
		sub.Rows = rows
		for _, reverse := range []bool{false, true} {
			got := sub.Order([]Criterion{{Key: Subject, Reverse: reverse}})
			want := make([]int32, len(rows))
			for i := range want {
				want[i] = int32(i)
			}
			slices.SortStableFunc(want, func(a, b int32) int {
				r := strings.Compare(msgs[rows[a]].Subject, msgs[rows[b]].Subject)
				if reverse {
					return -r
				}
				return r
			})
			if !slices.Equal(got, want) {
				t.Errorf("%d rows, reverse %v: order %v, want %v", len(rows), reverse, got[:min(len(got), 8)], want[:min(len(want), 8)])
			}
		}
	}
}
