package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Limits that bound what Parse holds in memory, whatever the size of the message.
const (
	// MaxHeaderBytes caps each header block kept for parsing, and the top-level
	// header stored in MessageStructure.Header. Bytes beyond it are skipped.
	MaxHeaderBytes = 256 << 10
	// MaxDepth caps the nesting of multiparts and encapsulated messages; a
	// multipart below it is a text/plain leaf, a message/rfc822 an opaque one.
	MaxDepth = 32
	// MaxParts caps the number of body parts; children of a multipart beyond it
	// are skipped (their bytes stay inside the parent's range).
	MaxParts = 10000

	// retainBudget caps the strings kept from part headers and encapsulated
	// envelopes (parameters, descriptions, addresses) over a whole message; a
	// part that would exceed it keeps only its media type and encoding.
	retainBudget = 1 << 20
	// maxBoundaryLen is far above the 70 characters of RFC 2046 5.1.1 and well
	// below readBufferSize, so that a delimiter line is always seen whole.
	maxBoundaryLen = 1000
	readBufferSize = 64 << 10
	// previewRawMax is how much of the preview candidate's encoded body is
	// kept: enough for 200 characters after HTML markup and transfer encoding.
	previewRawMax = 64 << 10
)

// Parse reads a whole message from r in one streaming pass and returns its
// envelope, its MIME tree with byte offsets relative to the start of the message,
// its top-level header block and an RFC 8970 preview.
//
// MessageStructure.Header holds the top-level header block including the blank
// line that ends it (RFC 9051 6.4.5 BODY[HEADER]), truncated to MaxHeaderBytes;
// HeaderComplete tells whether it is whole. Malformed MIME never fails the
// parse; only a read error from r does.
func Parse(r io.Reader) (*metadatapb.MessageStructure, error) {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	p := &parser{
		sc:     scanner{r: br, atLineStart: true},
		parts:  1,
		budget: retainBudget,
	}
	top, _ := p.parseEntity(defaultText, 0)
	if p.sc.err != nil {
		return nil, fmt.Errorf("parse message at offset %d: %w", p.sc.off, p.sc.err)
	}
	return &metadatapb.MessageStructure{
		Envelope: buildEnvelope(top.fields),
		Body:     top.part,
		Header:   top.header,
		Preview:  p.preview,
	}, nil
}

// HeaderComplete reports whether s.Header holds the whole top-level header
// block. When it does not (a header over MaxHeaderBytes), header fetches must
// read SectionRange(s, nil, "HEADER") from the blob.
func HeaderComplete(s *metadatapb.MessageStructure) bool {
	b := s.GetBody()
	return b != nil && uint64(len(s.GetHeader())) == b.GetBodyOffset()-b.GetHeaderOffset()
}

// scanner reads the message as chunks that end at a line feed, or at the end
// of the read buffer for overlong lines, and keeps the bookkeeping that part
// offsets and line counts are computed from.
type scanner struct {
	r           *bufio.Reader
	off         int64   // offset of the next unread byte
	lf          int64   // line feeds read so far
	last        [3]byte // the last three bytes read, last[2] the most recent
	atLineStart bool
	eof         bool
	err         error
}

// next returns the next chunk and whether it starts a line. The chunk is only
// valid until the following call.
func (s *scanner) next() (chunk []byte, lineStart, ok bool) {
	if s.eof || s.err != nil {
		return nil, false, false
	}
	lineStart = s.atLineStart
	chunk, err := s.r.ReadSlice('\n')
	switch {
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
	case errors.Is(err, io.EOF):
		s.eof = true
	default:
		s.err = err
		return nil, false, false
	}
	n := len(chunk)
	if n == 0 {
		return nil, false, false
	}
	s.off += int64(n)
	s.atLineStart = chunk[n-1] == '\n'
	if s.atLineStart {
		s.lf++
	}
	s.keepLast(chunk)
	return chunk, lineStart, true
}

// keepLast keeps the last three bytes read, of which b, not empty, were read last.
func (s *scanner) keepLast(b []byte) {
	switch n := len(b); n {
	case 1:
		s.last = [3]byte{s.last[1], s.last[2], b[0]}
	case 2:
		s.last = [3]byte{s.last[2], b[0], b[1]}
	default:
		s.last = [3]byte{b[n-3], b[n-2], b[n-1]}
	}
}

// mark is the scanner state before a chunk, kept so that a chunk that turns
// out to be a delimiter line can be turned into a stop.
type mark struct {
	off  int64
	lf   int64
	last [3]byte
}

func (s *scanner) mark() mark { return mark{off: s.off, lf: s.lf, last: s.last} }

// plainRun returns the buffered bytes from the next unread one that hold no line a
// delimiter could begin (delimiters: there is a boundary to look for), reading more when
// none is buffered: up to the line feed before the first line that starts with "-", all
// of them with no boundary to look for. It is empty when the next unread byte begins such
// a line, or the input ended (s.eof, s.err), which next reads as it did. A body is most
// of a message and has no delimiter in most of its lines: a run is passed over in a few
// scans of all its bytes (advance) where next takes a call per line.
func (s *scanner) plainRun(delimiters bool) []byte {
	if s.eof || s.err != nil {
		return nil
	}
	if _, err := s.r.Peek(1); err != nil {
		if errors.Is(err, io.EOF) {
			s.eof = true
		} else {
			s.err = err
		}
		return nil
	}
	buf, _ := s.r.Peek(s.r.Buffered())
	if !delimiters {
		return buf
	}
	if s.atLineStart && buf[0] == '-' {
		return nil
	}
	if i := bytes.Index(buf, []byte("\n-")); i >= 0 {
		return buf[:i+1]
	}
	return buf
}

// advance consumes run, which plainRun returned, keeping the bookkeeping next keeps.
func (s *scanner) advance(run []byte) {
	n := len(run)
	s.off += int64(n)
	s.lf += int64(bytes.Count(run, []byte{'\n'}))
	s.atLineStart = run[n-1] == '\n'
	s.keepLast(run)
	s.r.Discard(n)
}

type stopKind uint8

const (
	stopEOF       stopKind = iota
	stopDelimiter          // "--boundary"
	stopClose              // "--boundary--"
)

// stop is what ended a part: the end of input or a delimiter line of one of the
// enclosing multiparts.
type stop struct {
	kind  stopKind
	level int   // index of the matched boundary in parser.boundaries; -1 at EOF
	at    int64 // offset of the delimiter line, or of the end of input
	// term is the length of the line break before the delimiter line, which
	// RFC 2046 5.1.1 makes part of the delimiter, not of the body before it.
	term     int
	lf       int64 // line feeds before that line break
	lastBody byte  // the byte before that line break
}

func delimiterStop(m mark, kind stopKind, level int) stop {
	st := stop{kind: kind, level: level, at: m.off, lf: m.lf}
	if m.last[2] == '\n' {
		st.term = 1
		if m.last[1] == '\r' {
			st.term = 2
		}
		st.lf--
	}
	st.lastBody = m.last[2-st.term]
	return st
}

func (s *scanner) eofStop() stop {
	return stop{kind: stopEOF, level: -1, at: s.off, lf: s.lf, lastBody: s.last[2]}
}

type mediaDefault uint8

const (
	defaultText    mediaDefault = iota // RFC 2045 5.2
	defaultMessage                     // RFC 2046 5.1.5, children of multipart/digest
)

type parser struct {
	sc         scanner
	boundaries [][]byte // boundaries of the enclosing multiparts, outermost first
	parts      int
	budget     int
	inMessage  int // depth of encapsulated messages around the current part
	preview    string
}

// entity is one parsed header and body: the top-level message, a part, or an
// encapsulated message.
type entity struct {
	part   *metadatapb.BodyPart
	header []byte
	fields []HeaderField
}

func (p *parser) parseEntity(def mediaDefault, depth int) (*entity, stop) {
	headerOffset := p.sc.off
	header, st, cut := p.readHeader()
	fields := Fields(header)
	part, boundary := p.describe(fields, def, depth)
	e := &entity{part: part, header: header, fields: fields}
	part.HeaderOffset = uint64(headerOffset)
	if cut {
		// No blank line: the header ran into a delimiter or the end of input,
		// and the body is empty.
		part.BodyOffset = uint64(st.at)
		part.EndOffset = uint64(st.at)
		return e, st
	}
	part.BodyOffset = uint64(p.sc.off)
	lfAtBody := p.sc.lf
	switch {
	case boundary != nil:
		st = p.parseMultipart(part, boundary, depth)
	case isEncapsulated(part) && depth < MaxDepth && p.parts < MaxParts:
		st = p.parseEncapsulated(part, depth)
	default:
		st = p.parseLeaf(part)
	}
	p.setEnd(part, lfAtBody, st)
	return e, st
}

// setEnd sets the end offset, size and line count of a part whose body ran
// from part.BodyOffset to the stop st.
func (p *parser) setEnd(part *metadatapb.BodyPart, lfAtBody int64, st stop) {
	end := st.at - int64(st.term)
	lf, last := st.lf, st.lastBody
	floor := int64(part.BodyOffset)
	if n := len(part.Parts); n > 0 {
		floor = max(floor, int64(part.Parts[n-1].EndOffset))
	}
	if part.Message != nil {
		floor = max(floor, int64(part.Message.EndOffset))
	}
	if end < floor {
		// The line break before the delimiter also ends a delimiter line or
		// a header inside this part ("--inner\n--outer"): it stays in this
		// part, so that the part contains its children.
		end = floor
		switch {
		case end == st.at && st.term > 0:
			lf++
			last = '\n'
		case end == st.at-1 && st.term == 2:
			last = '\r'
		}
	}
	if end <= int64(part.BodyOffset) {
		part.EndOffset = part.BodyOffset
		return
	}
	part.EndOffset = uint64(end)
	part.Size = uint64(end) - part.BodyOffset
	part.Lines = uint64(lf - lfAtBody)
	if last != '\n' {
		part.Lines++ // an unterminated last line is a line too
	}
}

// readHeader reads a header block up to and including the blank line that
// ends it (RFC 5322 2.1). cut reports that a delimiter line or the end of
// input came first; st is then that stop.
func (p *parser) readHeader() (header []byte, st stop, cut bool) {
	for {
		m := p.sc.mark()
		chunk, lineStart, ok := p.sc.next()
		if !ok {
			return header, p.sc.eofStop(), true
		}
		if lineStart {
			if level, kind, ok := p.matchDelimiter(chunk); ok {
				return header, delimiterStop(m, kind, level), true
			}
			if isBlankLine(chunk) {
				return appendCapped(header, chunk), stop{}, false
			}
		}
		header = appendCapped(header, chunk)
	}
}

func appendCapped(header, chunk []byte) []byte {
	room := MaxHeaderBytes - len(header)
	if room <= 0 {
		return header
	}
	return append(header, chunk[:min(room, len(chunk))]...)
}

func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// matchDelimiter reports whether line is a delimiter of an enclosing multipart,
// innermost first: "--" boundary, optionally "--", then only linear white
// space (RFC 2046 5.1.1). A delimiter of an outer multipart also ends the inner
// ones whose close delimiter is missing, as in Dovecot and Cyrus.
func (p *parser) matchDelimiter(line []byte) (level int, kind stopKind, ok bool) {
	if len(p.boundaries) == 0 || len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return 0, 0, false
	}
	rest := line[2:]
	for i := len(p.boundaries) - 1; i >= 0; i-- {
		b := p.boundaries[i]
		if !bytes.HasPrefix(rest, b) {
			continue
		}
		tail := rest[len(b):]
		kind := stopDelimiter
		if len(tail) >= 2 && tail[0] == '-' && tail[1] == '-' {
			kind = stopClose
			tail = tail[2:]
		}
		if len(bytes.TrimLeft(tail, " \t\r\n")) == 0 {
			return i, kind, true
		}
	}
	return 0, 0, false
}

// scanBody reads body bytes up to the next delimiter of an enclosing multipart
// or the end of input, appending up to limit bytes of them to *capture when
// capture is not nil.
func (p *parser) scanBody(capture *[]byte, limit int) stop {
	for {
		if run := p.sc.plainRun(len(p.boundaries) > 0); len(run) > 0 {
			if capture != nil && len(*capture) < limit {
				*capture = append(*capture, run[:min(limit-len(*capture), len(run))]...)
			}
			p.sc.advance(run)
			continue
		}
		m := p.sc.mark()
		chunk, lineStart, ok := p.sc.next()
		if !ok {
			return p.sc.eofStop()
		}
		if lineStart {
			if level, kind, ok := p.matchDelimiter(chunk); ok {
				return delimiterStop(m, kind, level)
			}
		}
		if capture != nil && len(*capture) < limit {
			*capture = append(*capture, chunk[:min(limit-len(*capture), len(chunk))]...)
		}
	}
}

// parseMultipart reads a multipart body: preamble, body parts, close
// delimiter, epilogue (RFC 2046 5.1.1). It returns the stop that ends the
// multipart itself: the end of input or a delimiter of an enclosing multipart.
func (p *parser) parseMultipart(part *metadatapb.BodyPart, boundary []byte, depth int) stop {
	p.boundaries = append(p.boundaries, boundary)
	own := len(p.boundaries) - 1
	childDefault := defaultText
	if part.Subtype == "digest" {
		childDefault = defaultMessage // RFC 2046 5.1.5
	}
	st := p.scanBody(nil, 0) // preamble
	for st.kind == stopDelimiter && st.level == own {
		if p.parts >= MaxParts {
			st = p.scanBody(nil, 0)
			continue
		}
		p.parts++
		child, next := p.parseEntity(childDefault, depth+1)
		part.Parts = append(part.Parts, child.part)
		st = next
	}
	p.boundaries = p.boundaries[:own]
	if st.kind == stopClose && st.level == own {
		st = p.scanBody(nil, 0) // epilogue
	}
	return st
}

// parseEncapsulated reads the body of a message/rfc822 or message/global part
// as a message of its own (RFC 2046 5.2.1, RFC 6532 3.7).
func (p *parser) parseEncapsulated(part *metadatapb.BodyPart, depth int) stop {
	p.parts++
	p.inMessage++
	inner, st := p.parseEntity(defaultText, depth+1)
	p.inMessage--
	part.Message = inner.part
	env := buildEnvelope(inner.fields)
	if cost := envelopeCost(env); cost <= p.budget {
		p.budget -= cost
		part.Envelope = env
	} else {
		part.Envelope = &metadatapb.Envelope{}
	}
	return st
}

// parseLeaf reads a non-multipart body, keeping a prefix of it when it is the
// preview candidate: the first text/plain or text/html part that is not an
// attachment and not inside an encapsulated message.
func (p *parser) parseLeaf(part *metadatapb.BodyPart) stop {
	if p.preview != "" || p.inMessage > 0 || part.Type != "text" ||
		(part.Subtype != "plain" && part.Subtype != "html") || part.Disposition == "attachment" {
		return p.scanBody(nil, 0)
	}
	rawp := previewBuffers.Get().(*[]byte)
	raw := (*rawp)[:0]
	st := p.scanBody(&raw, previewRawMax)
	p.preview = buildPreview(raw, part)
	*rawp = raw[:0]
	previewBuffers.Put(rawp)
	return st
}

// readers and previewBuffers are reused across parses: every APPEND and delivery parses
// its message once, and a read buffer and a preview prefix of 64 KiB each were most of
// what a parse allocated. The parser copies whatever it keeps from them (header blocks
// by appendCapped, strings by conversion, the preview by buildPreview).
var (
	readers        = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	previewBuffers = sync.Pool{New: func() any { b := make([]byte, 0, previewRawMax); return &b }}
)

func isEncapsulated(part *metadatapb.BodyPart) bool {
	if part.Type != "message" || (part.Subtype != "rfc822" && part.Subtype != "global") {
		return false
	}
	// Only an identity encoding can be parsed in place (RFC 2046 5.2.1 forbids
	// others for message/rfc822; message/global may use them, RFC 6532 3.5).
	switch part.Encoding {
	case "7BIT", "8BIT", "BINARY":
		return true
	}
	return false
}
