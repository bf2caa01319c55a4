package imapresp

import (
	"io"
	"strconv"

	"github.com/strata-mail/strata/frontend/message"
)

// WriteSort writes "* SORT n..." (RFC 5256 5: sort-data = "SORT" *(SP nz-number)), with
// "(MODSEQ m)" when modseq is not 0 (RFC 7162 3.1.6), a piece at a time (writeNumbers).
func WriteSort(w io.Writer, nums []uint32, modseq uint64) error {
	return writeNumbers(w, "* SORT", len(nums), func(k int) uint32 { return nums[k] }, modseq)
}

// ESort is the ESEARCH response of a SORT with RETURN (RFC 5267 3.1).
type ESort struct {
	Tag     string
	UID     bool
	Returns []string // MIN, MAX, ALL, COUNT, PARTIAL in the client's order
	Nums    []uint32 // the messages found, in sort order
	Partial *Partial // the range of PARTIAL
	ModSeq  uint64   // when not 0, goes out as MODSEQ (RFC 7162 3.1.10)
	// Relevancy holds the RELEVANCY score (1 to 100) of each of Nums, in their order
	// (RFC 6203 4).
	Relevancy []uint32
}

// Partial is an RFC 9394 3.1 partial-range: 1-based positions in the result, negative ones
// counted from its end.
type Partial struct{ First, Last int64 }

// Slice returns the part of nums the range selects (RFC 9394 3.1).
func (p Partial) Slice(nums []uint32) []uint32 {
	n := int64(len(nums))
	lo, hi := p.First, p.Last
	if lo < 0 {
		lo, hi = n+hi+1, n+lo+1 // -1 is the last; the range reads from its end
	}
	lo, hi = max(lo, 1), min(hi, n)
	if lo > hi {
		return nil
	}
	return nums[lo-1 : hi]
}

func (p Partial) String() string {
	return strconv.FormatInt(p.First, 10) + ":" + strconv.FormatInt(p.Last, 10)
}

// AppendESort appends "* ESEARCH (TAG "tag")[ UID]" and the return data of a sorted result
// (RFC 5267 3.2): MIN and MAX are the first and last in sort order, ALL lists the messages
// in sort order (a range only for ascending consecutive runs), and all three are left out
// when nothing matched; PARTIAL gives the range and its messages or NIL (RFC 9394 3.1).
func AppendESort(b []byte, enc message.Encoder, e ESort) []byte {
	b = enc.AppendString(append(b, "* ESEARCH (TAG "...), e.Tag)
	b = append(b, ')')
	if e.UID {
		b = append(b, " UID"...)
	}
	for _, opt := range e.Returns {
		switch {
		case opt == "COUNT":
			b = strconv.AppendInt(append(b, " COUNT "...), int64(len(e.Nums)), 10)
		case opt == "PARTIAL" && e.Partial != nil:
			b = append(append(b, " PARTIAL ("...), e.Partial.String()...)
			if part := e.Partial.Slice(e.Nums); len(part) > 0 {
				b = AppendOrderedSet(append(b, ' '), part)
			} else {
				b = append(b, " NIL"...)
			}
			b = append(b, ')')
		case len(e.Nums) == 0:
		case opt == "MIN":
			b = strconv.AppendUint(append(b, " MIN "...), uint64(e.Nums[0]), 10)
		case opt == "MAX":
			b = strconv.AppendUint(append(b, " MAX "...), uint64(e.Nums[len(e.Nums)-1]), 10)
		case opt == "ALL":
			b = AppendOrderedSet(append(b, " ALL "...), e.Nums)
		case opt == "RELEVANCY" && len(e.Relevancy) == len(e.Nums):
			// RFC 6203 4: "RELEVANCY" SP "(" relevancy-score *(SP relevancy-score) ")", in
			// the order of ALL; left out, as ALL is, when nothing matched.
			b = append(b, " RELEVANCY ("...)
			for k, score := range e.Relevancy {
				if k > 0 {
					b = append(b, ' ')
				}
				b = strconv.AppendUint(b, uint64(score), 10)
			}
			b = append(b, ')')
		}
	}
	if e.ModSeq != 0 {
		b = strconv.AppendUint(append(b, " MODSEQ "...), e.ModSeq, 10)
	}
	return append(b, '\r', '\n')
}

// AppendOrderedSet appends nums as a sequence-set in their order (RFC 5267 3.2: the order of
// ALL is the sort order), with runs of ascending consecutive numbers as ranges.
func AppendOrderedSet(b []byte, nums []uint32) []byte {
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(nums[i]), 10)
		if j > i {
			b = strconv.AppendUint(append(b, ':'), uint64(nums[j]), 10)
		}
		i = j + 1
	}
	return b
}

// ContextUpdate is one pair of an ADDTO or REMOVEFROM data item (RFC 5267 4.3.3, 4.3.4):
// the messages Nums, in the requested order, inserted at context position Pos or removed
// starting from it; Pos is 0 in the update of a SEARCH context, whose results go wherever
// mailbox order puts them.
type ContextUpdate struct {
	Remove bool
	Pos    uint32
	Nums   []uint32
}

// AppendContextUpdate appends "* ESEARCH (TAG "tag")[ UID]" and the ADDTO and REMOVEFROM
// data items of updates, in their order, which is the order the client applies them in
// (RFC 5267 4.3.2); consecutive updates of one kind share one data item: ret-data-addto =
// "ADDTO" SP "(" context-position SP sequence-set *(SP context-position SP sequence-set)
// ")", and REMOVEFROM alike (RFC 5267 5).
func AppendContextUpdate(b []byte, enc message.Encoder, tag string, uid bool, updates []ContextUpdate) []byte {
	b = enc.AppendString(append(b, "* ESEARCH (TAG "...), tag)
	b = append(b, ')')
	if uid {
		b = append(b, " UID"...)
	}
	for k, u := range updates {
		switch {
		case k > 0 && u.Remove == updates[k-1].Remove:
			b = append(b, ' ')
		case u.Remove:
			if k > 0 {
				b = append(b, ')')
			}
			b = append(b, " REMOVEFROM ("...)
		default:
			if k > 0 {
				b = append(b, ')')
			}
			b = append(b, " ADDTO ("...)
		}
		b = strconv.AppendUint(b, uint64(u.Pos), 10)
		b = AppendOrderedSet(append(b, ' '), u.Nums)
	}
	if len(updates) > 0 {
		b = append(b, ')')
	}
	return append(b, '\r', '\n')
}
