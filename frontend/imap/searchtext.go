package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/charset"

	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Substring search (RFC 9051 6.4.4: "case-insensitive ... substring") compares text after
// Unicode simple case folding, the equivalence strings.EqualFold uses, on decoded text:
// RFC 2047 encoded-words in header fields, and the Content-Transfer-Encoding and charset of
// body parts. Each side is mapped rune by rune to one representative of its simple-folding
// orbit, so a folded needle can be found with a plain byte search.

// foldRune maps r to the smallest rune of its simple case-folding orbit.
func foldRune(r rune) rune {
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

// foldString folds every rune of s; invalid UTF-8 bytes become U+FFFD.
func foldString(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldCriteria returns a copy of crit whose header, BODY and TEXT strings are folded; the
// values of the keys carried as Header entries that are not header fields (isHeaderKey) are
// compared as they are.
func foldCriteria(crit *imap.SearchCriteria) *imap.SearchCriteria {
	out := *crit
	out.Header = make([]imap.SearchCriteriaHeaderField, len(crit.Header))
	for i, h := range crit.Header {
		out.Header[i] = h
		if isHeaderKey(h) {
			out.Header[i].Value = foldString(h.Value)
		}
	}
	out.Body = foldStrings(crit.Body)
	out.Text = foldStrings(crit.Text)
	out.Not = make([]imap.SearchCriteria, len(crit.Not))
	for i := range crit.Not {
		out.Not[i] = *foldCriteria(&crit.Not[i])
	}
	out.Or = make([][2]imap.SearchCriteria, len(crit.Or))
	for i := range crit.Or {
		out.Or[i] = [2]imap.SearchCriteria{*foldCriteria(&crit.Or[i][0]), *foldCriteria(&crit.Or[i][1])}
	}
	return &out
}

func foldStrings(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = foldString(s)
	}
	return out
}

// wordDecoder decodes RFC 2047 encoded-words in any charset go-message knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeWords decodes the encoded-words of a header field value; a value that does not
// decode is matched as it is.
func decodeWords(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	if decoded, err := wordDecoder.DecodeHeader(v); err == nil {
		return decoded
	}
	return v
}

// textSegment is a byte range of a stored message that BODY or TEXT search: a header block
// (matched field by field after RFC 2047 decoding) or the content of a leaf part.
type textSegment struct {
	offset, length int64
	header         bool
	encoding       string
	charset        string
}

// textSegments lists, in blob order, the ranges a BODY (withHeaders false) or TEXT search
// reads: every text part's content and the header of every encapsulated message
// (message/rfc822), which are part of the body; TEXT adds the MIME headers of the parts.
// Parts that are not text (images, archives, application data) are not searched. The
// message's own header is not listed: it is in the stored structure.
func textSegments(part *metadatapb.BodyPart, withHeaders bool, out []textSegment) []textSegment {
	switch {
	case strings.EqualFold(part.GetType(), "multipart"):
		for _, child := range part.GetParts() {
			if withHeaders {
				out = appendHeaderSegment(out, child)
			}
			out = textSegments(child, withHeaders, out)
		}
	case part.GetMessage() != nil:
		out = appendHeaderSegment(out, part.GetMessage())
		out = textSegments(part.GetMessage(), withHeaders, out)
	case part.GetType() == "" || strings.EqualFold(part.GetType(), "text") || strings.EqualFold(part.GetType(), "message"):
		var cs string
		for _, p := range part.GetParams() {
			if strings.EqualFold(p.GetKey(), "charset") {
				cs = p.GetValue()
			}
		}
		if part.GetEndOffset() > part.GetBodyOffset() {
			out = append(out, textSegment{
				offset: int64(part.GetBodyOffset()), length: int64(part.GetEndOffset() - part.GetBodyOffset()),
				encoding: part.GetEncoding(), charset: cs,
			})
		}
	}
	return out
}

func appendHeaderSegment(out []textSegment, part *metadatapb.BodyPart) []textSegment {
	if part.GetBodyOffset() > part.GetHeaderOffset() {
		out = append(out, textSegment{offset: int64(part.GetHeaderOffset()), length: int64(part.GetBodyOffset() - part.GetHeaderOffset()), header: true})
	}
	return out
}

// textContains reports whether the folded needle occurs in a stored message: in its body
// (BODY) or, with withHeaders, in its header or body (TEXT), RFC 9051 6.4.4. The top-level
// header comes from the stored structure; the rest streams from the blob in one ranged read,
// so memory stays bounded whatever the message size.
func (c *conn) textContains(rec *metadatapb.MessageRecord, needle string, withHeaders bool) (bool, error) {
	if needle == "" {
		return true, nil
	}
	st := rec.GetStructure()
	if withHeaders && headerContains(st.GetHeader(), needle) {
		return true, nil
	}
	segments := textSegments(st.GetBody(), withHeaders, nil)
	if len(segments) == 0 {
		return false, nil
	}
	first := segments[0].offset
	last := segments[len(segments)-1]
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	blob, err := c.srv.cfg.Blobs.Get(ctx, rec.GetBlobKey(), first, last.offset+last.length-first)
	if err != nil {
		return false, fmt.Errorf("search body of message %d: %w", rec.GetUid(), err)
	}
	defer blob.Close()
	pos := first
	for _, seg := range segments {
		if seg.offset < pos {
			continue // overlapping ranges come only from a malformed structure
		}
		if _, err := io.CopyN(io.Discard, blob, seg.offset-pos); err != nil {
			return false, fmt.Errorf("search body of message %d: %w", rec.GetUid(), err)
		}
		content := &countingReader{r: io.LimitReader(blob, seg.length)}
		found, err := segmentContains(content, seg, needle)
		if err != nil {
			return false, fmt.Errorf("search body of message %d: %w", rec.GetUid(), err)
		}
		if found {
			return true, nil
		}
		// Skip what the segment's reader left unread, so the next offset is right.
		if _, err := io.Copy(io.Discard, content); err != nil {
			return false, fmt.Errorf("search body of message %d: %w", rec.GetUid(), err)
		}
		pos = seg.offset + content.n
	}
	return false, nil
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

// segmentContains searches one segment read from r.
func segmentContains(r io.Reader, seg textSegment, needle string) (bool, error) {
	if seg.header {
		header, err := io.ReadAll(io.LimitReader(r, maxPartHeader))
		if err != nil {
			return false, err
		}
		return headerContains(header, needle), nil
	}
	content, err := transferDecoder(r, seg.encoding)
	if errors.Is(err, errUnknownCTE) {
		content = r // searched as stored
	}
	switch cs := strings.ToLower(seg.charset); cs {
	case "", "utf-8", "us-ascii", "utf8":
	default:
		if converted, err := charset.Reader(cs, content); err == nil {
			content = converted
		}
	}
	return foldedContains(content, []byte(needle))
}

// headerContains reports whether a header field of header, decoded and folded, holds
// needle; TEXT matches a field's name as well as its value.
func headerContains(header []byte, needle string) bool {
	for _, f := range message.Fields(header) {
		if strings.Contains(foldString(f.Name+": "+decodeWords(f.Value())), needle) {
			return true
		}
	}
	return false
}

// foldedContains reports whether the folded text of r holds needle. It folds into a window
// that keeps the last len(needle)-1 bytes between rounds, so a match across two reads is
// found and memory stays bounded.
func foldedContains(r io.Reader, needle []byte) (bool, error) {
	const window = 64 << 10
	br := bufio.NewReaderSize(r, 32<<10)
	buf := make([]byte, 0, window+utf8.UTFMax)
	for {
		ch, _, err := br.ReadRune()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return bytes.Contains(buf, needle), nil
			}
			return false, err
		}
		buf = utf8.AppendRune(buf, foldRune(ch))
		if len(buf) >= window {
			if bytes.Contains(buf, needle) {
				return true, nil
			}
			keep := min(len(needle)-1, len(buf))
			buf = append(buf[:0], buf[len(buf)-keep:]...)
		}
	}
}
