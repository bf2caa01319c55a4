package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strings"
	"time"
)

// Corpus generates realistic messages, the same bytes for the same seed, stream and index:
// plain text, multipart/alternative (text and HTML), multipart/mixed with base64
// attachments, threads (In-Reply-To and References), UTF-8 in headers both as RFC 2047
// encoded words and as raw 8-bit (RFC 6532), and sizes skewed like a real mailbox (most
// messages a few KiB, a long tail of attachments up to MaxSize).
type Corpus struct {
	Seed    uint64
	MinSize int // default 1 KiB
	MaxSize int // default 1 MiB
	// UniqueWords starts the first text part of each message with a word no other
	// message holds (UniqueWord), as the IDs, numbers and names of real mail make a
	// mailbox's vocabulary grow with it.
	UniqueWords bool
}

// UniqueWord is the word only message index of stream holds when Corpus.UniqueWords.
func UniqueWord(stream uint64, index int) string {
	return fmt.Sprintf("ref%dx%07d", stream, index)
}

// Message kinds and the share of each (out of 100).
const (
	kindPlain       = iota // text/plain
	kindAlternative        // multipart/alternative: text/plain + text/html
	kindAttachment         // multipart/mixed: a text part and 1 or 2 base64 attachments
)

var kindShare = [...]int{kindPlain: 55, kindAlternative: 25, kindAttachment: 20}

// Subject styles.
const (
	subjectASCII   = iota
	subjectUTF8B   // =?UTF-8?B?...?= (RFC 2047 4.1)
	subjectLatin1Q // =?ISO-8859-1?Q?...?= (RFC 2047 4.2)
	subjectRaw8bit // raw UTF-8 (RFC 6532 3.2)
	subjectStyleCount
)

var words = strings.Fields(`quarterly report meeting agenda budget review project deadline
invoice shipment contract proposal draft schedule update release notes server migration
backup weekend offsite lunch holiday travel expenses security audit roadmap hiring interview
feedback customer support ticket outage postmortem design document kubernetes storage cluster
latency throughput benchmark mailbox archive newsletter conference keynote workshop`)

// SearchWord is a word that appears in the subjects of many corpus messages; the load
// generator searches for it.
const SearchWord = "report"

var utf8Words = strings.Fields(`réunion Müller Straße café naïve Zürich façade résumé São Paulo
Ελληνικά данные 会議 予定 Ærøskøbing Kraków żółw`)

type person struct{ name, addr string }

var people = []person{
	{"Alice Martin", "alice@example.org"},
	{"Bob O'Neil", "bob@example.net"},
	{"José Álvarez", "jose@example.es"},
	{"Zoë Müller", "zoe@example.de"},
	{"李小龍", "li@example.cn"},
	{"Søren Kierkegaard", "soren@example.dk"},
	{"Carol Smith", "carol@example.com"},
	{"Дмитрий Петров", "dmitry@example.ru"},
	{"", "noreply@notifications.example.com"},
	{"Ops Team", "ops@example.org"},
}

var baseDate = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

func (c Corpus) sizes() (lo, hi int) {
	lo, hi = c.MinSize, c.MaxSize
	if lo <= 0 {
		lo = 1 << 10
	}
	if hi <= 0 {
		hi = 1 << 20
	}
	return lo, max(hi, lo)
}

// rng returns the generator of one part (0 head, 1 body) of message index of stream.
func (c Corpus) rng(stream uint64, index int, part uint64) *rand.Rand {
	return rand.New(c.source(stream, index, part))
}

// source is rng's PCG, which build skips ahead past attachment bytes it does not keep.
func (c Corpus) source(stream uint64, index int, part uint64) *rand.PCG {
	return rand.NewPCG(c.Seed^(stream*0x9e3779b97f4a7c15), uint64(index)<<1|part)
}

// head is what a message shows of itself to its replies.
type head struct {
	reply   bool
	parent  int
	subject []string
	style   int
}

func (c Corpus) head(stream uint64, index int) head {
	r := c.rng(stream, index, 0)
	h := head{style: r.IntN(subjectStyleCount)}
	h.reply = index > 0 && r.Float64() < 0.35
	h.parent = index - 1 - r.IntN(min(index, 30)+1)
	if h.parent < 0 {
		h.parent, h.reply = 0, false
	}
	n := 3 + r.IntN(5)
	for i := 0; i < n; i++ {
		if h.style != subjectASCII && i%3 == 1 {
			h.subject = append(h.subject, utf8Words[r.IntN(len(utf8Words))])
		} else {
			h.subject = append(h.subject, words[r.IntN(len(words))])
		}
	}
	return h
}

// MessageID is the Message-ID of message index of stream, without angle brackets.
func (c Corpus) MessageID(stream uint64, index int) string {
	return fmt.Sprintf("%d.%d.%x@bench.strata.test", index, stream, c.Seed)
}

// thread returns the root's head and the References of message index, root first, at most
// 10 (RFC 5322 3.6.4 allows trimming the middle).
func (c Corpus) thread(stream uint64, index int, h head) (head, []string) {
	var refs []string
	root := h
	for root.reply && len(refs) < 10 {
		parent := root.parent
		refs = append(refs, "<"+c.MessageID(stream, parent)+">")
		root = c.head(stream, parent)
	}
	for i, j := 0, len(refs)-1; i < j; i, j = i+1, j-1 {
		refs[i], refs[j] = refs[j], refs[i]
	}
	return root, refs
}

// Flags returns the flags message index of stream is populated with, like a mailbox read
// over the years: 80% \Seen (a quarter of those also \Answered), 3% \Flagged, the rest
// unseen.
func (c Corpus) Flags(stream uint64, index int) []string {
	r := rand.New(rand.NewPCG(c.Seed^(stream*0x9e3779b97f4a7c15)^0x5eedf1a65eedf1a6, uint64(index)))
	var flags []string
	if r.IntN(100) < 80 {
		flags = append(flags, `\Seen`)
		if r.IntN(4) == 0 {
			flags = append(flags, `\Answered`)
		}
	}
	if r.IntN(100) < 3 {
		flags = append(flags, `\Flagged`)
	}
	return flags
}

// Message returns message index of stream (a user, or a load-generator client).
func (c Corpus) Message(stream uint64, index int) []byte {
	return c.messageIn(&messageBuffer{}, stream, index)
}

// messageBuffer holds the memory one message is generated in, for the next message of a
// client that is done with the last one.
type messageBuffer struct {
	body        bytes.Buffer // the header from Date on, then the body
	trace       bytes.Buffer // Return-Path and Received
	attachments [2][]byte
	msg         []byte
}

// messageIn is Message in buf's memory: the message is valid until buf's next use.
func (c Corpus) messageIn(buf *messageBuffer, stream uint64, index int) []byte {
	_, hi := c.sizes()
	reserve := 4096
	for {
		msg := c.build(buf, stream, index, reserve)
		if len(msg) <= hi || reserve > hi {
			return msg
		}
		reserve += len(msg) - hi + 1024
	}
}

// build generates the message in buf, leaving reserve bytes of MaxSize for all but
// attachments.
func (c Corpus) build(buf *messageBuffer, stream uint64, index int, reserve int) []byte {
	h := c.head(stream, index)
	root, refs := c.thread(stream, index, h)
	src := c.source(stream, index, 1)
	r := rand.New(src)
	lo, hi := c.sizes()

	b := &buf.body
	b.Reset()
	b.Grow(2048)
	from := people[r.IntN(len(people))]
	to := people[r.IntN(len(people))]
	date := baseDate.Add(time.Duration(index)*17*time.Minute + time.Duration(r.IntN(600))*time.Second)
	fmt.Fprintf(b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: %s\r\n", renderAddress(from, root.style))
	fmt.Fprintf(b, "To: %s\r\n", renderAddress(to, root.style))
	if r.IntN(4) == 0 {
		cc := people[r.IntN(len(people))]
		fmt.Fprintf(b, "Cc: %s, %s\r\n", renderAddress(cc, root.style), renderAddress(people[(index+3)%len(people)], subjectASCII))
	}
	subject := renderSubject(root)
	if h.reply {
		subject = "Re: " + subject
	}
	fmt.Fprintf(b, "Subject: %s\r\n", subject)
	fmt.Fprintf(b, "Message-ID: <%s>\r\n", c.MessageID(stream, index))
	if len(refs) > 0 {
		fmt.Fprintf(b, "In-Reply-To: %s\r\n", refs[len(refs)-1])
		fmt.Fprintf(b, "References: %s\r\n", strings.Join(refs, "\r\n "))
	}
	b.WriteString("MIME-Version: 1.0\r\n")

	kind := pickKind(r)
	target := lognormal(r, 3<<10, 0.8)
	if kind == kindAlternative {
		target = lognormal(r, 8<<10, 0.8)
	}
	var attachments [][]byte
	attached := 0
	if kind == kindAttachment {
		// Each attachment draws its size and then that many random bytes, and is cut
		// to fit MaxSize with room for the header, a text part and the MIME framing:
		// only the bytes kept are generated, the generator skipping past the rest.
		count := 1 + r.IntN(2)
		share := (hi-b.Len()-reserve)/count - attachmentOverhead
		for i := range count {
			n := lognormal(r, 48<<10, 1.3)
			keep := max(n, 0)
			if encodedLen(keep) > share {
				keep = min(keep, max(0, share*3/4*76/78-3))
			}
			a := randomBytes(buf.attachments[i][:0], r, src, n, keep)
			buf.attachments[i] = a
			attachments = append(attachments, a)
			attached += encodedLen(len(a)) + attachmentOverhead
		}
	}
	target = min(max(target+attached, lo), hi)
	b.Grow(target + 2048) // the text parts overshoot their share by up to a line

	boundary := fmt.Sprintf("=_bench_%x_%d", r.Uint32(), index)
	first := ""
	if c.UniqueWords {
		first = UniqueWord(stream, index)
	}
	switch kind {
	case kindPlain:
		textLen := max(target-b.Len()-120, 64)
		writePlainPart(b, r, textLen, false, first)
	case kindAlternative:
		fmt.Fprintf(b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary)
		b.WriteString("This is a multi-part message in MIME format.\r\n")
		textLen := max((target-b.Len()-400)/3, 64)
		fmt.Fprintf(b, "--%s\r\n", boundary)
		writePlainPart(b, r, textLen, true, first)
		fmt.Fprintf(b, "\r\n--%s\r\n", boundary)
		writeHTMLPart(b, r, textLen*2)
		fmt.Fprintf(b, "\r\n--%s--\r\n", boundary)
	case kindAttachment:
		fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
		fmt.Fprintf(b, "--%s\r\n", boundary)
		writePlainPart(b, r, max(target-b.Len()-attached-200, 200), true, first)
		for i, a := range attachments {
			fmt.Fprintf(b, "\r\n--%s\r\n", boundary)
			writeAttachment(b, r, i, a)
		}
		fmt.Fprintf(b, "\r\n--%s--\r\n", boundary)
	}
	buf.msg = withTrace(buf.msg[:0], &buf.trace, r, from, date, b.Bytes(), lo)
	return buf.msg
}

// attachmentOverhead is about what an attachment's headers and boundary take.
const attachmentOverhead = 400

// encodedLen is the size of n bytes in base64 with CRLF after every 76 characters.
func encodedLen(n int) int {
	chars := (n + 2) / 3 * 4
	return chars + (chars+75)/76*2
}

// withTrace appends to dst Return-Path and the Received chain a delivered message carries
// (RFC 5321 4.4), written in b first: two to four hops, more while the message is shorter
// than lo; then rest.
func withTrace(dst []byte, b *bytes.Buffer, r *rand.Rand, from person, date time.Time, rest []byte, lo int) []byte {
	b.Reset()
	fmt.Fprintf(b, "Return-Path: <%s>\r\n", from.addr)
	hops := 2 + r.IntN(3)
	for hop := 0; hop < hops || b.Len()+len(rest) < lo; hop++ {
		at := date.Add(time.Duration(hops-hop) * time.Second)
		fmt.Fprintf(b, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\r\n\tby mail.bench.strata.test with ESMTPS id %08X\r\n\tfor <inbox@bench.strata.test>; %s\r\n",
			hop+1, hop+1, 1+r.IntN(250), r.Uint32(), at.Format(time.RFC1123Z))
	}
	return append(append(dst, b.Bytes()...), rest...)
}

func pickKind(r *rand.Rand) int {
	n := r.IntN(100)
	for k, share := range kindShare {
		if n < share {
			return k
		}
		n -= share
	}
	return kindPlain
}

// lognormal draws a size with the given median and spread: most near the median, a long
// tail above it.
func lognormal(r *rand.Rand, median int, sigma float64) int {
	return int(float64(median) * math.Exp(sigma*r.NormFloat64()))
}

// randomBytes appends to dst the first keep (<= max(n, 0)) of n random bytes: one draw of
// r for each whole 8 bytes of the n, little-endian, the last n%8 bytes zero. r draws from
// src, which is then skipped past the draws of the bytes not kept, so that r's next draw
// is the one after all n (a message cut to MaxSize costs only what it keeps).
func randomBytes(dst []byte, r *rand.Rand, src *rand.PCG, n, keep int) []byte {
	dst = slices.Grow(dst, keep)
	b := dst[len(dst) : len(dst)+keep]
	words := max(n, 0) / 8
	drawn := keep / 8
	for i := range drawn {
		binary.LittleEndian.PutUint64(b[8*i:], r.Uint64())
	}
	var last [8]byte // zero: the bytes after n's last whole word
	if rest := keep % 8; rest > 0 {
		if drawn < words {
			binary.LittleEndian.PutUint64(last[:], r.Uint64())
			drawn++
		}
		copy(b[keep-rest:], last[:rest])
	}
	skipPCG(src, uint64(words-drawn))
	return dst[:len(dst)+keep]
}

// skipPCG advances p by n steps, as n calls of p.Uint64 would, in O(log n): p's state is
// a 128-bit linear congruential generator, state*mul + inc mod 2^128 (math/rand/v2's
// pcg.go), and n steps of it are one affine map, composed by squaring (F. Brown, "Random
// Number Generation with Arbitrary Strides", 1994).
func skipPCG(p *rand.PCG, n uint64) {
	if n == 0 {
		return
	}
	const (
		mulHi = 2549297995355413924
		mulLo = 4865540595714422341
		incHi = 6364136223846793005
		incLo = 1442695040888963407
	)
	var buf [20]byte
	enc, _ := p.AppendBinary(buf[:0])
	state := u128{binary.BigEndian.Uint64(enc[4:]), binary.BigEndian.Uint64(enc[12:])}
	accMul, accAdd := u128{0, 1}, u128{}
	curMul, curAdd := u128{mulHi, mulLo}, u128{incHi, incLo}
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			accMul = accMul.mul(curMul)
			accAdd = accAdd.mul(curMul).add(curAdd)
		}
		curAdd = curMul.add(u128{0, 1}).mul(curAdd)
		curMul = curMul.mul(curMul)
	}
	state = accMul.mul(state).add(accAdd)
	enc = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(enc[:4], state.hi), state.lo)
	if err := p.UnmarshalBinary(enc); err != nil {
		panic(err) // the encoding AppendBinary gave, with a new state: cannot fail
	}
}

// u128 is an unsigned 128-bit integer; mul and add wrap mod 2^128.
type u128 struct{ hi, lo uint64 }

func (a u128) mul(b u128) u128 {
	hi, lo := bits.Mul64(a.lo, b.lo)
	return u128{hi + a.hi*b.lo + a.lo*b.hi, lo}
}

func (a u128) add(b u128) u128 {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, carry)
	return u128{hi, lo}
}

func renderAddress(p person, style int) string {
	switch {
	case p.name == "":
		return p.addr
	case isASCII(p.name):
		if strings.ContainsAny(p.name, `'".,`) {
			return Quote(p.name) + " <" + p.addr + ">"
		}
		return p.name + " <" + p.addr + ">"
	case style == subjectRaw8bit:
		return Quote(p.name) + " <" + p.addr + ">"
	default:
		return mime.QEncoding.Encode("UTF-8", p.name) + " <" + p.addr + ">"
	}
}

func renderSubject(h head) string {
	text := strings.Join(h.subject, " ")
	switch h.style {
	case subjectUTF8B:
		return mime.BEncoding.Encode("UTF-8", text)
	case subjectLatin1Q:
		// ISO-8859-1 can hold only Latin-1; other words stay as their UTF-8 encoded word.
		if latin, ok := toLatin1(text); ok {
			return mime.QEncoding.Encode("ISO-8859-1", latin)
		}
		return mime.QEncoding.Encode("UTF-8", text)
	}
	return text
}

func toLatin1(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return "", false
		}
		b = append(b, byte(r))
	}
	return string(b), true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// appendSentence appends to dst a line of text of at least n bytes (without its end),
// words separated by spaces, some of them UTF-8.
func appendSentence(dst []byte, r *rand.Rand, n int, utf8 bool) []byte {
	start := len(dst)
	for len(dst)-start < n {
		if len(dst) > start {
			dst = append(dst, ' ')
		}
		if utf8 && r.IntN(8) == 0 {
			dst = append(dst, utf8Words[r.IntN(len(utf8Words))]...)
		} else {
			dst = append(dst, words[r.IntN(len(words))]...)
		}
	}
	return dst
}

// writePlainPart writes a text/plain part of about n bytes, starting with the line first
// unless it is empty.
func writePlainPart(b *bytes.Buffer, r *rand.Rand, n int, inMultipart bool, first string) {
	qp := r.IntN(3) == 0
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	if qp {
		b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		w := quotedprintable.NewWriter(b)
		if first != "" {
			fmt.Fprintf(w, "%s\r\n", first)
		}
		var line []byte // one Write per line, as the encoder was always given them
		for start := b.Len(); b.Len()-start < n; {
			line = append(appendSentence(line[:0], r, 40+r.IntN(80), true), ".\r\n"...)
			w.Write(line)
		}
		w.Close()
		b.WriteString("\r\n")
		return
	}
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
	if first != "" {
		b.WriteString(first + "\r\n")
	}
	for start := b.Len(); b.Len()-start < n; {
		b.Write(appendSentence(b.AvailableBuffer(), r, 30+r.IntN(40), true))
		b.WriteString("\r\n")
		if r.IntN(6) == 0 {
			b.WriteString("\r\n")
		}
	}
}

func writeHTMLPart(b *bytes.Buffer, r *rand.Rand, n int) {
	b.WriteString("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	w := quotedprintable.NewWriter(b)
	start := b.Len()
	fmt.Fprint(w, "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"></head><body>\r\n")
	const open = `<p style="font-family: Arial, sans-serif; margin: 0 0 1em 0">`
	var line []byte // one Write per paragraph, as the encoder was always given them
	for b.Len()-start < n {
		line = append(appendSentence(append(line[:0], open...), r, 60+r.IntN(120), true), ".</p>\r\n"...)
		w.Write(line)
	}
	fmt.Fprint(w, "</body></html>\r\n")
	w.Close()
}

var attachmentTypes = []struct{ mediaType, ext string }{
	{"application/pdf", "pdf"},
	{"image/jpeg", "jpg"},
	{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
	{"application/zip", "zip"},
}

func writeAttachment(b *bytes.Buffer, r *rand.Rand, i int, data []byte) {
	t := attachmentTypes[r.IntN(len(attachmentTypes))]
	name := fmt.Sprintf("%s-%d.%s", words[r.IntN(len(words))], i+1, t.ext)
	disposition := "attachment; filename=\"" + name + "\""
	if r.IntN(4) == 0 {
		// RFC 2231 parameter value with a charset for a non-ASCII file name.
		name = utf8Words[r.IntN(len(utf8Words))] + "-" + name
		disposition = "attachment; filename*=UTF-8''" + percentEncode(name)
	}
	fmt.Fprintf(b, "Content-Type: %s; name=\"%s\"\r\n", t.mediaType, mime.QEncoding.Encode("UTF-8", name))
	fmt.Fprintf(b, "Content-Disposition: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n", disposition)
	// Lines of 76 characters (RFC 2045 6.8), the last shorter or empty: 57 bytes each,
	// encoded straight into b.
	b.Grow(encodedLen(len(data)) + 2)
	for i := 0; ; i += 57 {
		b.Write(base64.StdEncoding.AppendEncode(b.AvailableBuffer(), data[i:min(i+57, len(data))]))
		b.WriteString("\r\n")
		if i+57 >= len(data) {
			return
		}
	}
}

func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
