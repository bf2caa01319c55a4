// Package mailtext defines the text that IMAP SEARCH's text keys (RFC 9051 6.4.4: BCC, BODY,
// CC, FROM, HEADER, SUBJECT, TEXT, TO) look into, after decoding and case folding, so that
// the frontend's full scan and the search index (package searchindex) see the very same
// text. It has no I/O of its own: callers hand it the stored structure and readers of the
// blob's byte ranges.
//
// Invariants:
//
//   - One definition. Substring search compares text after Unicode simple case folding
//     (Fold), on decoded text: RFC 2047 encoded-words in header fields, and the
//     Content-Transfer-Encoding and charset of body parts (Segments, SegmentContent). The
//     scan and the index both go through these functions, so a needle the scan finds in
//     a message is made of trigrams the index holds for it.
//   - Bounded memory. Body content streams; a part header is read up to MaxPartHeader.
package mailtext

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"

	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// MaxPartHeader bounds a nested part's header read into memory.
const MaxPartHeader = 1 << 20

// FoldRune maps r to the smallest rune of its simple case-folding orbit, so that each side
// of a comparison is mapped rune by rune to one representative and a folded needle can be
// found with a plain byte search.
func FoldRune(r rune) rune {
	if r >= 0 && r < foldTableSize {
		return rune(foldTable[r])
	}
	return foldOrbit(r)
}

// foldOrbit is FoldRune computed: the smallest rune of r's simple case-folding orbit.
func foldOrbit(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// foldTable holds FoldRune of the runes below foldTableSize (ASCII and the two-byte UTF-8
// runes: Latin, Greek, Cyrillic, ...), so the folding of most text looks a rune up
// instead of walking its orbit (TestFoldTable).
const foldTableSize = 0x800

var foldTable = func() (t [foldTableSize]uint16) {
	for r := range rune(foldTableSize) {
		t[r] = uint16(foldOrbit(r)) // the least of r's orbit is at most r: it fits
	}
	return t
}()

// Fold folds every rune of s; invalid UTF-8 bytes become U+FFFD.
func Fold(s string) string { return string(AppendFold(make([]byte, 0, len(s)), s)) }

// AppendFold appends the folded s to dst (Fold without the allocation of a string; ASCII
// byte by byte, other runes through FoldRune, invalid UTF-8 bytes as U+FFFD).
func AppendFold(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		dst = utf8.AppendRune(dst, FoldRune(r))
		i += n
	}
	return dst
}

// wordDecoder decodes RFC 2047 encoded-words in any charset go-message knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// DecodeWords decodes the encoded-words of a header field value (RFC 2047); a value that
// does not decode is matched as it is.
func DecodeWords(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	if decoded, err := wordDecoder.DecodeHeader(v); err == nil {
		return decoded
	}
	return v
}

// FieldValueTexts calls fn with the folded texts a header key on field f looks into
// (RFC 9051 6.4.4 HEADER, FROM, TO, CC, BCC): its decoded value and, for an address field,
// its address list as parsed (message.AddressListText), as Dovecot matches FROM: an
// envelope address has neither comments nor folding white space.
func FieldValueTexts(f message.HeaderField, fn func(folded string) bool) bool {
	v := f.Value()
	if fn(Fold(DecodeWords(v))) {
		return true
	}
	return IsAddressField(f.Name) && fn(Fold(DecodeWords(message.AddressListText(v))))
}

// FieldText is the folded text TEXT looks into for header field f: its name and decoded
// value.
func FieldText(f message.HeaderField) string {
	return Fold(f.Name + ": " + DecodeWords(f.Value()))
}

// IsAddressField reports whether name is the field of a FROM, TO, CC or BCC key.
func IsAddressField(name string) bool {
	for _, n := range []string{"From", "To", "Cc", "Bcc"} {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// FieldNameEqual reports whether a and b name the same header field: field names are
// printable US-ASCII (RFC 5322 2.2) compared without regard to ASCII case, so that the
// scan and the index agree on which field a HEADER key names; Unicode case folding
// (strings.EqualFold) would make "ſubject" (U+017F) name Subject in the scan alone.
func FieldNameEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HeaderScope returns the search index scope of the values of header field name: the
// index keeps Subject, From, To, Cc and Bcc apart and every other field together.
//
// The names are compared without regard to ASCII case (FieldNameEqual), with no string
// made per field: no letter of these names is the lower case of a rune outside ASCII
// (only K and I are, from U+212A and U+0130), so this is strings.ToLower's answer.
func HeaderScope(name string) metadatapb.SearchScope {
	for _, s := range headerScopes {
		if FieldNameEqual(name, s.name) {
			return s.scope
		}
	}
	return metadatapb.SearchScope_SEARCH_SCOPE_OTHER
}

// headerScopes are the fields HeaderScope keeps apart.
var headerScopes = []struct {
	name  string
	scope metadatapb.SearchScope
}{
	{"subject", metadatapb.SearchScope_SEARCH_SCOPE_SUBJECT},
	{"from", metadatapb.SearchScope_SEARCH_SCOPE_FROM},
	{"to", metadatapb.SearchScope_SEARCH_SCOPE_TO},
	{"cc", metadatapb.SearchScope_SEARCH_SCOPE_CC},
	{"bcc", metadatapb.SearchScope_SEARCH_SCOPE_BCC},
}

// HeaderContains reports whether a header field of header, decoded and folded, holds
// needle; TEXT matches a field's name as well as its value.
func HeaderContains(header []byte, needle string) bool {
	for _, f := range message.Fields(header) {
		if strings.Contains(FieldText(f), needle) {
			return true
		}
	}
	return false
}

// Segment is a byte range of a stored message that BODY or TEXT search: a header block
// (matched field by field after RFC 2047 decoding) or the content of a leaf part.
type Segment struct {
	Offset, Length int64
	Header         bool
	// BodyOnly marks the segments BODY reads too; the others (MIME headers of parts) only
	// TEXT reads.
	BodyOnly bool
	Encoding string
	Charset  string
}

// Segments lists, in blob order, the ranges a BODY (withHeaders false) or TEXT search
// reads: every text part's content and the header of every encapsulated message
// (message/rfc822), which are part of the body; TEXT adds the MIME headers of the parts
// (with BodyOnly false). Parts that are not text (images, archives, application data) are
// not searched. The message's own header is not listed: it is in the stored structure.
func Segments(part *metadatapb.BodyPart, withHeaders bool, out []Segment) []Segment {
	switch {
	case strings.EqualFold(part.GetType(), "multipart"):
		for _, child := range part.GetParts() {
			if withHeaders {
				out = appendHeaderSegment(out, child, false)
			}
			out = Segments(child, withHeaders, out)
		}
	case part.GetMessage() != nil:
		out = appendHeaderSegment(out, part.GetMessage(), true)
		out = Segments(part.GetMessage(), withHeaders, out)
	case part.GetType() == "" || strings.EqualFold(part.GetType(), "text") || strings.EqualFold(part.GetType(), "message"):
		var cs string
		for _, p := range part.GetParams() {
			if strings.EqualFold(p.GetKey(), "charset") {
				cs = p.GetValue()
			}
		}
		if part.GetEndOffset() > part.GetBodyOffset() {
			out = append(out, Segment{
				Offset: int64(part.GetBodyOffset()), Length: int64(part.GetEndOffset() - part.GetBodyOffset()),
				BodyOnly: true, Encoding: part.GetEncoding(), Charset: cs,
			})
		}
	}
	return out
}

func appendHeaderSegment(out []Segment, part *metadatapb.BodyPart, body bool) []Segment {
	if part.GetBodyOffset() > part.GetHeaderOffset() {
		out = append(out, Segment{Offset: int64(part.GetHeaderOffset()), Length: int64(part.GetBodyOffset() - part.GetHeaderOffset()), Header: true, BodyOnly: body})
	}
	return out
}

// SegmentContent returns a reader of the decoded content of a part segment read from r:
// transfer-decoded (a Content-Transfer-Encoding it does not know is read as stored) and
// converted to UTF-8 from a charset go-message knows.
func SegmentContent(r io.Reader, seg Segment) io.Reader {
	content, err := TransferDecoder(r, seg.Encoding)
	if errors.Is(err, ErrUnknownCTE) {
		content = r // searched as stored
	}
	return convertCharset(content, seg.Charset)
}

// convertCharset returns a reader of content converted to UTF-8 from cs, if go-message
// knows it.
func convertCharset(content io.Reader, cs string) io.Reader {
	switch cs = strings.ToLower(cs); cs {
	case "", "utf-8", "us-ascii", "utf8":
	default:
		if converted, err := charset.Reader(cs, content); err == nil {
			return converted
		}
	}
	return content
}

// ReadPartHeader reads a header segment from r, up to MaxPartHeader bytes.
func ReadPartHeader(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, MaxPartHeader))
}

// SegmentContains searches one segment read from r for the folded needle.
func SegmentContains(r io.Reader, seg Segment, needle string) (bool, error) {
	if seg.Header {
		header, err := ReadPartHeader(r)
		if err != nil {
			return false, err
		}
		return HeaderContains(header, needle), nil
	}
	return FoldedContains(SegmentContent(r, seg), []byte(needle))
}

// foldWindow is the size of the folded chunks FoldChunks hands out.
const foldWindow = 64 << 10

// FoldChunks folds the text of r and calls chunk with it in pieces of about 64 KiB (keep
// plus 64 KiB when keep passes 64 KiB), each starting with the last keep bytes of the one
// before, so that a needle of up to keep+1 bytes is whole in some chunk; chunk returns
// false to stop. Every piece brings at least 64 KiB of new text, and memory stays bounded
// by keep (a needle's size, which the command's limits bound) whatever the size of r. The
// slice chunk gets is reused once chunk returns.
func FoldChunks(r io.Reader, keep int, chunk func([]byte) bool) error {
	window := foldWindow
	if keep > foldWindow {
		// A window no larger than keep would hand out chunks with nothing new in them
		// (the loop would never end) or slice past its end: a SEARCH needle of 64 KiB of
		// invalid UTF-8 folds to 192 KiB of U+FFFD (review of idxfold22).
		window = keep + foldWindow
	}
	// Pooled buffers: the search index and BODY searches fold one segment after another,
	// and 96 KiB allocated and cleared per segment was a third of the indexer's CPU.
	fb := foldBuffers.Get().(*foldBuffer)
	defer foldBuffers.Put(fb)
	br := fb.r
	br.Reset(r)
	defer br.Reset(nil)
	buf := fb.buf[:0]
	if cap(buf) < window+utf8.UTFMax {
		buf = make([]byte, 0, window+utf8.UTFMax) // not pooled: only a needle past 64 KiB needs it
	}
	for {
		// ASCII straight from the reader's buffer: most text is, and a ReadRune call per
		// byte was most of the folding's cost.
		if ascii, _ := br.Peek(br.Buffered()); len(ascii) > 0 && ascii[0] < utf8.RuneSelf {
			// Written in place up to the window's end: no append's capacity check per byte.
			start := len(buf)
			ascii = ascii[:min(len(ascii), window-start)]
			buf = buf[:start+len(ascii)]
			out := buf[start:]
			n := 0
			for ; n < len(ascii); n++ {
				c := ascii[n]
				if c >= utf8.RuneSelf {
					break
				}
				out[n] = asciiUpper[c]
			}
			buf = buf[:start+n]
			_, _ = br.Discard(n)
			if len(buf) >= window {
				if !chunk(buf) {
					return nil
				}
				k := min(keep, len(buf))
				buf = append(buf[:0], buf[len(buf)-k:]...)
			}
			continue
		}
		ch, _, err := br.ReadRune()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(buf) > 0 {
					chunk(buf)
				}
				return nil
			}
			return err
		}
		buf = utf8.AppendRune(buf, FoldRune(ch))
		if len(buf) >= window {
			if !chunk(buf) {
				return nil
			}
			k := min(keep, len(buf))
			buf = append(buf[:0], buf[len(buf)-k:]...)
		}
	}
}

// asciiUpper is FoldRune of each ASCII byte.
var asciiUpper = func() (t [utf8.RuneSelf]byte) {
	for c := range byte(utf8.RuneSelf) {
		t[c] = byte(foldOrbit(rune(c)))
	}
	return t
}()

// foldBuffer is what one FoldChunks call reads and folds with.
type foldBuffer struct {
	r   *bufio.Reader
	buf []byte
}

var foldBuffers = sync.Pool{New: func() any {
	return &foldBuffer{r: bufio.NewReaderSize(nil, 32<<10), buf: make([]byte, 0, foldWindow+utf8.UTFMax)}
}}

// FoldedContains reports whether the folded text of r holds needle.
func FoldedContains(r io.Reader, needle []byte) (bool, error) {
	if len(needle) == 0 {
		return true, nil
	}
	found := false
	err := FoldChunks(r, max(len(needle)-1, 0), func(b []byte) bool {
		found = bytes.Contains(b, needle)
		return !found
	})
	if err != nil {
		return false, err
	}
	return found, nil
}

// WalkSegments reads segments, in blob order, from blob, a reader of the message's bytes
// from segments[0].Offset on, and calls fn with each segment and a reader of its bytes;
// fn returns true to stop. Overlapping segments, which only a malformed structure makes,
// are skipped.
func WalkSegments(blob io.Reader, segments []Segment, fn func(seg Segment, r io.Reader) (stop bool, err error)) error {
	if len(segments) == 0 {
		return nil
	}
	pos := segments[0].Offset
	for _, seg := range segments {
		if seg.Offset < pos {
			continue
		}
		if _, err := io.CopyN(io.Discard, blob, seg.Offset-pos); err != nil {
			return err
		}
		content := &countingReader{r: io.LimitReader(blob, seg.Length)}
		stop, err := fn(seg, content)
		if err != nil || stop {
			return err
		}
		// Skip what fn left unread, so the next offset is right.
		if _, err := io.Copy(io.Discard, content); err != nil {
			return err
		}
		pos = seg.Offset + content.n
	}
	return nil
}

// Span returns the offset and length of the blob range segments cover.
func Span(segments []Segment) (offset, length int64) {
	if len(segments) == 0 {
		return 0, 0
	}
	last := segments[len(segments)-1]
	return segments[0].Offset, last.Offset + last.Length - segments[0].Offset
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// IsWordSeparator reports whether b ends a word of folded text in the search index's word
// dictionary (package searchindex, "Exact answers"): ASCII white space and NUL, single
// bytes below 0x80 that never occur inside a multi-byte UTF-8 sequence.
func IsWordSeparator(b byte) bool {
	switch b {
	case 0, '\t', '\n', '\v', '\f', '\r', ' ':
		return true
	}
	return false
}

// InOneWord reports whether needle is not empty and holds no word separator, so that each
// of its occurrences in a text lies inside one word of it.
func InOneWord(needle string) bool {
	if needle == "" {
		return false
	}
	for i := 0; i < len(needle); i++ {
		if IsWordSeparator(needle[i]) {
			return false
		}
	}
	return true
}
