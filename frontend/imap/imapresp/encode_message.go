package imapresp

import (
	"io"
	"strconv"
	"sync"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/message"
)

// AppendExists appends "* n EXISTS" (RFC 9051 7.4.1).
func AppendExists(b []byte, n int) []byte {
	b = strconv.AppendInt(append(b, "* "...), int64(n), 10)
	return append(b, " EXISTS\r\n"...)
}

// AppendRecent appends "* n RECENT" (RFC 3501 7.3.2; IMAP4rev1 only).
func AppendRecent(b []byte, n int) []byte {
	b = strconv.AppendInt(append(b, "* "...), int64(n), 10)
	return append(b, " RECENT\r\n"...)
}

// AppendExpunge appends "* seq EXPUNGE" (RFC 9051 7.5.1).
func AppendExpunge(b []byte, seq int) []byte {
	b = strconv.AppendInt(append(b, "* "...), int64(seq), 10)
	return append(b, " EXPUNGE\r\n"...)
}

// AppendVanished appends "* VANISHED uids" (RFC 7162 3.2.10, RFC 9586 3), or "* VANISHED
// (EARLIER) uids" for the expunges of before the command (earlier).
func AppendVanished(b []byte, earlier bool, uids imap.UIDSet) []byte {
	b = append(b, "* VANISHED "...)
	if earlier {
		b = append(b, "(EARLIER) "...)
	}
	b = append(b, uids.String()...)
	return append(b, '\r', '\n')
}

// AppendFlags appends the FLAGS response, "* FLAGS (flag ...)" (RFC 9051 7.3.5).
func AppendFlags(b []byte, flags []string) []byte {
	return append(AppendFlagList(append(b, "* FLAGS "...), flags), '\r', '\n')
}

// AppendFlagList appends a flag list "(flag ...)" (RFC 9051 9 flag-list). The flags are
// atoms as stored (system flags and keywords, RFC 9051 2.3.2).
func AppendFlagList(b []byte, flags []string) []byte {
	b = append(b, '(')
	for i, f := range flags {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f...)
	}
	return append(b, ')')
}

// AppendFetchStart appends the start of a FETCH response up to its first data item: "* num
// FETCH (" with num the message number, or "* num UIDFETCH (" with num the UID in a UIDONLY
// session (RFC 9051 7.5.2, RFC 9586 3.3).
func AppendFetchStart(b []byte, num uint32, uidFetch bool) []byte {
	b = strconv.AppendUint(append(b, "* "...), uint64(num), 10)
	if uidFetch {
		return append(b, " UIDFETCH ("...)
	}
	return append(b, " FETCH ("...)
}

// AppendModSeq appends the MODSEQ fetch data item "MODSEQ (n)" (RFC 7162 3.1.4, 7).
func AppendModSeq(b []byte, modseq uint64) []byte {
	b = strconv.AppendUint(append(b, "MODSEQ ("...), modseq, 10)
	return append(b, ')')
}

// AppendObjectID appends an object id as "(" objectid ")" (RFC 8474 7), or NIL for "" (a
// metadata service that predates OBJECTID; RFC 8474 5.2 allows NIL for THREADID).
func AppendObjectID(b []byte, id string) []byte {
	if id == "" {
		return append(b, "NIL"...)
	}
	return append(append(append(b, '('), id...), ')')
}

// FlagsFetch is a FETCH response that reports a message's flags: after STORE (RFC 9051
// 6.4.6), as an unsolicited update (7.5.2), or for QRESYNC (RFC 7162 3.2.5).
type FlagsFetch struct {
	// Num is the message number, or the UID when UIDFetch.
	Num      uint32
	UIDFetch bool // a UIDONLY session's UIDFETCH response (RFC 9586 3.3)
	// UID, when not 0, goes out as the UID item before FLAGS (RFC 7162 3.1, RFC 9051
	// 6.4.9); UIDs are never 0 (RFC 9051 2.3.1.1).
	UID   uint32
	Flags []string
	// ModSeq, when not 0, goes out as the MODSEQ item after FLAGS (RFC 7162 3.1);
	// mod-sequence values are never 0 (RFC 7162 7).
	ModSeq uint64
}

// AppendFlagsFetch appends "* n FETCH ([UID u ]FLAGS (...)[ MODSEQ (m)])".
func AppendFlagsFetch(b []byte, f FlagsFetch) []byte {
	b = AppendFetchStart(b, f.Num, f.UIDFetch)
	if f.UID != 0 {
		b = strconv.AppendUint(append(b, "UID "...), uint64(f.UID), 10)
		b = append(b, ' ')
	}
	b = AppendFlagList(append(b, "FLAGS "...), f.Flags)
	if f.ModSeq != 0 {
		b = AppendModSeq(append(b, ' '), f.ModSeq)
	}
	return append(b, ")\r\n"...)
}

// AppendModSeqFetch appends "* n FETCH ([UID u ]MODSEQ (m))", what STORE .SILENT reports
// of a message whose MODSEQ it moved in a CONDSTORE session (RFC 7162 3.1.3). uid is left
// out when 0, as FlagsFetch's.
func AppendModSeqFetch(b []byte, num uint32, uidFetch bool, uid uint32, modseq uint64) []byte {
	b = AppendFetchStart(b, num, uidFetch)
	if uid != 0 {
		b = strconv.AppendUint(append(b, "UID "...), uint64(uid), 10)
		b = append(b, ' ')
	}
	return append(AppendModSeq(b, modseq), ")\r\n"...)
}

// numbersPiece is how many bytes writeNumbers renders before it writes them out.
const numbersPiece = 32 << 10

// numbersPieces are writeNumbers' buffers, one per response being written.
var numbersPieces = sync.Pool{New: func() any { b := make([]byte, 0, numbersPiece+64); return &b }}

// WriteSearch writes the SEARCH response of IMAP4rev1, "* SEARCH n ..." (RFC 3501 7.2.5),
// with "(MODSEQ m)" when modseq is not 0: the highest MODSEQ of the messages found, for a
// SEARCH with MODSEQ that found any (RFC 7162 3.1.6).
func WriteSearch(w io.Writer, nums []uint32, modseq uint64) error {
	return WriteSearchOf(w, len(nums), func(k int) uint32 { return nums[k] }, modseq)
}

// WriteSearchOf is WriteSearch of n numbers given by num(0) to num(n-1), so that a caller
// holding the messages in another form (positions in a view) need not build the list of
// a million numbers first.
func WriteSearchOf(w io.Writer, n int, num func(k int) uint32, modseq uint64) error {
	return writeNumbers(w, "* SEARCH", n, num, modseq)
}

// writeNumbers writes a response of numbers: head, each number after a space, then
// " (MODSEQ m)" when modseq is not 0, then CRLF. It renders a piece at a time into a
// pooled buffer, so that an answer naming a million messages (about 7 MB of text, which
// SEARCH and SORT have no shorter form for) is never built whole.
func writeNumbers(w io.Writer, head string, n int, num func(k int) uint32, modseq uint64) error {
	piece := numbersPieces.Get().(*[]byte)
	defer numbersPieces.Put(piece)
	b := append((*piece)[:0], head...)
	for k := range n {
		if len(b) >= numbersPiece {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
		b = strconv.AppendUint(append(b, ' '), uint64(num(k)), 10)
	}
	if modseq != 0 {
		b = strconv.AppendUint(append(b, " (MODSEQ "...), modseq, 10)
		b = append(b, ')')
	}
	b = append(b, '\r', '\n')
	*piece = b[:0]
	_, err := w.Write(b)
	return err
}

// ESearch is an ESEARCH response (RFC 4731 3.1, RFC 9051 7.3.4).
type ESearch struct {
	Tag string // the tag of the SEARCH command
	UID bool   // Nums are UIDs (UID SEARCH)
	// Returns are the return options in the client's order: MIN, MAX, ALL and COUNT; any
	// other (SAVE) adds nothing.
	Returns []string
	Nums    []uint32 // the messages found, ascending
	// ModSeq, when not 0, goes out as MODSEQ (RFC 7162 3.1.10).
	ModSeq uint64
	// Relevancy: the RELEVANCY scores of Nums, in their order (RFC 6203 4).
	Relevancy []uint32
	// Partial is the range of PARTIAL (RFC 5267 4.4, RFC 9394 3.1).
	Partial *Partial
}

// AppendESearch appends "* ESEARCH (TAG "tag")[ UID]" and the return data the options ask
// for; MIN, MAX and ALL are left out when nothing matched (RFC 4731 3.1).
func AppendESearch(b []byte, enc message.Encoder, e ESearch) []byte {
	// Ascending numbers: the sort-ordered form is the usual sequence-set.
	return AppendESort(b, enc, ESort{Tag: e.Tag, UID: e.UID, Returns: e.Returns, Nums: e.Nums, ModSeq: e.ModSeq, Relevancy: e.Relevancy, Partial: e.Partial})
}

// NumSet is the sequence-set of nums (RFC 9051 9), message numbers or UIDs, with runs of
// consecutive numbers as ranges.
func NumSet(nums []uint32) imap.UIDSet {
	var set imap.UIDSet
	for _, n := range nums {
		set.AddNum(imap.UID(n))
	}
	return set
}
