package sortthread

import (
	"cmp"
	"math/bits"
	"slices"
	"unsafe"
)

// Columns are the keys of the messages to order, kept by the caller as a struct of arrays
// (one entry per row, e.g. per message of a mailbox in UID order) so that neither a message
// nor a string is allocated per command: message k of the set is row Rows[k] of each
// column. Only the columns the command's keys read need be set.
type Columns struct {
	Rows          []int32 // the messages, in sequence order (RFC 5256 3: ties go by it)
	Arrival, Date []int64 // by row: internal date; sent date (RFC 5256 2.2)
	Size          []uint64
	Text          [numKeys]TextColumn // by Key, for the string keys (stringKey)
	Relevancy     []uint32            // by position in Rows (RFC 6203 4), set only for RELEVANCY

	// THREAD (RFC 5256 4): Message-IDs and references interned to ids below IDs (0: none).
	MessageID []uint32 // by row
	RefStart  []uint32 // by row, and one more: row r's references are Refs[RefStart[r]:RefStart[r+1]]
	Refs      []uint32 // root first; 0 for an empty one
	IDs       int
	Reply     []bool // by row: the subject was a reply or forward (RFC 5256 2.1)
}

const numKeys = int(Relevancy) + 1

// TextColumn is a string key as ids of the distinct values (by row) and the rank of each id
// in octet order. Id 0 is always the empty string, so its rank is 0 and no other's is.
type TextColumn struct {
	IDs  []uint32
	Rank []uint32
}

// Order returns the positions in c.Rows in the order of criteria (RFC 5256 3): each
// criterion breaks the ties of those before it, REVERSE reverses only its own, and
// messages equal under all of them stay in sequence order. The criteria are turned into
// integer columns (a string key into the rank of its value); when their spans and the
// position fit in 64 bits together they are packed into one uint64 a message and radix
// sorted, else sorted by comparison.
func (c *Columns) Order(criteria []Criterion) []int32 {
	if len(criteria) == 1 && stringKey(criteria[0].Key) != nil {
		if order, ok := c.orderByRank(c.Text[criteria[0].Key], criteria[0].Reverse); ok {
			return order
		}
	}
	n := len(c.Rows)
	cols := make([][]int64, len(criteria))
	for k, cr := range criteria {
		cols[k] = c.values(cr)
	}
	if order, ok := orderPacked(cols, n); ok {
		return order
	}
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		for _, col := range cols {
			if col[a] != col[b] {
				return cmp.Compare(col[a], col[b])
			}
		}
		return cmp.Compare(a, b)
	})
	return order
}

// orderByRank orders the positions by the rank of one string key (REVERSE: highest
// first), equal ranks in position order (RFC 5256 3), by a counting sort: a pass to count
// the ranks and a pass to place the positions, nothing packed per message (a SORT by
// SUBJECT alone of a million messages). ok is false, and nothing done, when the ranks
// reach far above the count of positions (a few messages of a large mailbox): the counts
// would cost more than the sort.
func (c *Columns) orderByRank(t TextColumn, reverse bool) ([]int32, bool) {
	maxRank := uint32(0)
	for _, r := range c.Rows {
		maxRank = max(maxRank, t.Rank[t.IDs[r]])
	}
	if int(maxRank) > 4*len(c.Rows)+1024 {
		return nil, false
	}
	key := func(r int32) uint32 {
		if reverse {
			return maxRank - t.Rank[t.IDs[r]]
		}
		return t.Rank[t.IDs[r]]
	}
	start := make([]int32, maxRank+2)
	for _, r := range c.Rows {
		start[key(r)+1]++
	}
	for k := 1; k < len(start); k++ {
		start[k] += start[k-1]
	}
	order := make([]int32, len(c.Rows))
	for i, r := range c.Rows {
		k := key(r)
		order[start[k]] = int32(i)
		start[k]++
	}
	return order, true
}

// values returns each message's value under cr, by position, reversed ones negated.
func (c *Columns) values(cr Criterion) []int64 {
	col := make([]int64, len(c.Rows))
	switch k := cr.Key; {
	case stringKey(k) != nil:
		t := c.Text[k]
		for i, r := range c.Rows {
			col[i] = int64(t.Rank[t.IDs[r]])
		}
	case k == Arrival, k == Date:
		v := c.Date
		if k == Arrival {
			v = c.Arrival
		}
		for i, r := range c.Rows {
			col[i] = v[r]
		}
	case k == Size:
		for i, r := range c.Rows {
			col[i] = int64(min(c.Size[r], 1<<62))
		}
	case k == Relevancy:
		// RFC 6203 4: the most relevant first (as Dovecot's index-sort.c orders it),
		// unlike the other number keys; REVERSE puts the least first.
		for i := range c.Rows {
			col[i] = -int64(c.Relevancy[i])
		}
	}
	if cr.Reverse {
		for i := range col {
			col[i] = -col[i]
		}
	}
	return col
}

// orderPacked sorts the positions by cols then position when every column's span and the
// position fit in 64 bits together: each message one uint64, the first column highest.
// It overwrites cols[0] when it packs (ok).
func orderPacked(cols [][]int64, n int) ([]int32, bool) {
	if n == 0 {
		return []int32{}, true
	}
	posBits := bits.Len(uint(n - 1))
	total := posBits
	los, widths := make([]int64, len(cols)), make([]int, len(cols))
	for k, col := range cols {
		lo, hi := slices.Min(col), slices.Max(col)
		if hi-lo < 0 {
			return nil, false // the span overflows
		}
		los[k], widths[k] = lo, bits.Len64(uint64(hi-lo))
		total += widths[k]
	}
	if total > 64 {
		return nil, false
	}
	// Packed in place of the first column (cols are Order's own): a message's value is
	// read before its packed key is written over it.
	var packed []uint64
	if len(cols) > 0 {
		packed = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(cols[0]))), n)
	} else {
		packed = make([]uint64, n)
	}
	shifts := make([]int, len(cols))
	shift := posBits
	for k := len(cols) - 1; k >= 0; k-- {
		shifts[k] = shift
		shift += widths[k]
	}
	for i := range packed {
		p := uint64(i)
		for k := len(cols) - 1; k >= 0; k-- {
			p |= uint64(cols[k][i]-los[k]) << shifts[k]
		}
		packed[i] = p
	}
	radixSort(packed, posBits, total)
	order := make([]int32, n)
	mask := uint64(1)<<posBits - 1
	for i, p := range packed {
		order[i] = int32(p & mask)
	}
	return order, true
}

// radixBits is the digit of radixSort: 2,048 counters stay in the first-level cache.
const radixBits = 11

// radixSort sorts keys whose values are below 2^width and whose bits below from ascend
// from key to key as given (orderPacked's position, which is the index): a
// least-significant-digit radix sort, a pass per digit of the bits from `from` up where
// the keys differ, for large inputs; pdqsort for small ones. The passes are stable, so
// keys equal above from stay as given, ascending below it: no pass is spent on those bits.
func radixSort(keys []uint64, from, width int) {
	if len(keys) < 1<<12 {
		slices.Sort(keys)
		return
	}
	passes := (max(width-from, 0) + radixBits - 1) / radixBits
	counts := make([][1 << radixBits]int, passes)
	for _, k := range keys {
		for p := range passes {
			counts[p][k>>(from+p*radixBits)&(1<<radixBits-1)]++
		}
	}
	buf := make([]uint64, len(keys))
	src, dst := keys, buf
	for p := range passes {
		c := &counts[p]
		shift := from + p*radixBits
		if c[keys[0]>>shift&(1<<radixBits-1)] == len(keys) {
			continue // every key has this digit
		}
		sum := 0
		for d, n := range c {
			c[d], sum = sum, sum+n
		}
		for _, k := range src {
			d := k >> shift & (1<<radixBits - 1)
			dst[c[d]] = k
			c[d]++
		}
		src, dst = dst, src
	}
	if passes > 0 && &src[0] != &keys[0] {
		copy(keys, src)
	}
}
