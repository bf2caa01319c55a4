package message

import (
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// previewChars is the length of a preview in characters, within the limit of
// RFC 8970 3.
const previewChars = 200

// buildPreview turns the kept prefix of a text part into an RFC 8970 preview:
// transfer decoding, charset conversion to UTF-8, HTML markup removed, white
// space collapsed, at most previewChars characters.
func buildPreview(raw []byte, part *metadatapb.BodyPart) string {
	var decoded []byte
	switch part.Encoding {
	case "BASE64":
		decoded = decodeBase64Prefix(raw)
	case "QUOTED-PRINTABLE":
		if part.Subtype != "html" && readsAsUTF8(paramValue(part.Params, "charset")) {
			return quotedPrintablePreview(raw)
		}
		// A prefix may end inside an escape; what decodes before it is kept.
		decoded, _ = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
	default:
		decoded = raw
	}
	// decoded is up to previewRawMax bytes, of which a few hundred make the preview: a
	// body already in UTF-8 is read in place, not copied (issue 14: the copy was a sixth
	// of the bytes `strata serve` allocated under APPEND load).
	text := decodeCharsetBytes(paramValue(part.Params, "charset"), decoded)
	if part.Subtype == "html" {
		text = []byte(htmlText(string(text)))
	}
	return collapseSpace(text, previewChars)
}

// decodeBase64Prefix decodes as much of a possibly truncated base64 body as it
// can, ignoring line breaks and other characters outside the alphabet
// (RFC 2045 6.8).
func decodeBase64Prefix(raw []byte) []byte {
	clean := make([]byte, 0, len(raw))
	for _, c := range raw {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	clean = clean[:len(clean)/4*4]
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, _ := base64.StdEncoding.Decode(out, clean)
	return out[:n]
}

// inlineTags are HTML elements that do not separate words.
var inlineTags = map[string]bool{
	"a": true, "abbr": true, "b": true, "bdi": true, "bdo": true, "cite": true, "code": true,
	"em": true, "font": true, "i": true, "kbd": true, "mark": true, "q": true, "s": true,
	"small": true, "span": true, "strong": true, "sub": true, "sup": true, "u": true,
}

// skippedTags are HTML elements whose content is not text to preview.
var skippedTags = map[string]bool{"script": true, "style": true, "title": true}

// htmlText extracts the text of an HTML document: tags and comments removed,
// script, style and title content dropped, entities decoded.
func htmlText(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		lt := strings.IndexByte(s[i:], '<')
		if lt < 0 {
			sb.WriteString(s[i:])
			break
		}
		sb.WriteString(s[i : i+lt])
		i += lt
		if strings.HasPrefix(s[i:], "<!--") {
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				break
			}
			i += 4 + end + 3
			continue
		}
		gt := strings.IndexByte(s[i:], '>')
		if gt < 0 {
			break
		}
		closing := strings.HasPrefix(s[i:], "</")
		name := tagName(s[i+1 : i+gt])
		i += gt + 1
		if !closing && skippedTags[name] {
			end := strings.Index(strings.ToLower(s[i:]), "</"+name)
			if end < 0 {
				break
			}
			i += end
			continue
		}
		if !inlineTags[name] {
			sb.WriteByte(' ')
		}
	}
	return html.UnescapeString(sb.String())
}

func tagName(tag string) string {
	tag = strings.TrimPrefix(tag, "/")
	end := strings.IndexAny(tag, " \t\r\n/")
	if end >= 0 {
		tag = tag[:end]
	}
	return strings.ToLower(tag)
}

// collapseSpace replaces runs of white space with one space, drops control
// and invisible formatting characters (zero-width spaces, soft hyphens that
// newsletters use to pad their preheaders), trims, and keeps at most limit
// characters.
func collapseSpace(s []byte, limit int) string {
	preview, _, _ := collapseSpaceRead(s, limit)
	return preview
}

// collapseSpaceRead is collapseSpace, which also tells how many bytes of s it read
// (read) and whether it stopped there at the limit (full) rather than at the end of s:
// the preview then depends on s[:read] alone.
func collapseSpaceRead(s []byte, limit int) (preview string, read int, full bool) {
	var sb strings.Builder
	sb.Grow(limit)
	n := 0
	pendingSpace := false
	for read < len(s) {
		var r rune
		if c := s[read]; c < utf8.RuneSelf {
			// ASCII, most of a preview: classified as below by asciiSpace and
			// asciiDropped (TestASCIIClasses), without the tables of unicode.
			read++
			switch {
			case asciiSpace(c):
				pendingSpace = sb.Len() > 0
				continue
			case asciiDropped(c):
				continue
			}
			r = rune(c)
		} else {
			var size int
			r, size = utf8.DecodeRune(s[read:])
			read += size
			switch {
			case unicode.IsSpace(r):
				pendingSpace = sb.Len() > 0
				continue
			case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u034f' || r == unicode.ReplacementChar:
				continue
			}
		}
		if pendingSpace {
			if n+1 >= limit {
				return sb.String(), read, true
			}
			sb.WriteByte(' ')
			n++
			pendingSpace = false
		}
		sb.WriteRune(r)
		n++
		if n >= limit {
			return sb.String(), read, true
		}
	}
	return sb.String(), read, false
}

// asciiSpace is unicode.IsSpace for an ASCII byte: tab, line feed, vertical tab, form
// feed, carriage return and space.
func asciiSpace(c byte) bool { return c == ' ' || '\t' <= c && c <= '\r' }

// asciiDropped is what collapseSpace drops of the other ASCII bytes: the controls
// (unicode.IsControl); no ASCII character is of the category Cf.
func asciiDropped(c byte) bool { return c < 0x20 || c == 0x7f }

// quotedPrintablePreview is buildPreview of a quoted-printable part of plain text in
// UTF-8 or ASCII, decoding only as much of raw as the preview reads, where buildPreview
// decodes all of its up to 64 KiB (issue 14: a tenth of the APPEND's parse, and a
// growing buffer of the decoded size per message). The answer is buildPreview's: the
// decoder's output read so far is a prefix of what io.ReadAll would return (it stops at
// the same error), validUTF8 maps it rune by rune from the left, so only its last few
// bytes (a rune cut at the end of the prefix) can differ from those of the whole, and a
// preview that reached its limit before them depends on nothing after.
func quotedPrintablePreview(raw []byte) string {
	r := quotedprintable.NewReader(bytes.NewReader(raw))
	bufp := decodedPreviewBuffers.Get().(*[]byte)
	defer decodedPreviewBuffers.Put(bufp)
	decoded := (*bufp)[:0]
	defer func() { *bufp = decoded[:0] }()
	for want := previewDecodeStep; ; want *= 4 {
		ended := false
		for len(decoded) < want && !ended {
			decoded = slices.Grow(decoded, want-len(decoded))
			n, err := r.Read(decoded[len(decoded):want])
			decoded = decoded[:len(decoded)+n]
			ended = err != nil
		}
		text := validUTF8(decoded)
		preview, read, full := collapseSpaceRead(text, previewChars)
		// validUTF8 turns each of the at most utf8.UTFMax-1 bytes of a cut rune into a
		// rune of up to 2 bytes.
		if ended || full && read <= len(text)-2*utf8.UTFMax {
			return preview
		}
	}
}

// previewDecodeStep is how much decoded text quotedPrintablePreview reads first (a
// preview of 200 characters seldom needs more), growing fourfold while it needs more.
// At 2 KiB the decoding was still 6 µs of every APPEND of compare-append's messages.
const previewDecodeStep = 512

var decodedPreviewBuffers = sync.Pool{New: func() any { b := make([]byte, 0, previewDecodeStep); return &b }}
