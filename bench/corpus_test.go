package bench

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
)

func TestCorpusIsDeterministic(t *testing.T) {
	c := Corpus{Seed: 42}
	for i := 0; i < 20; i++ {
		if !bytes.Equal(c.Message(3, i), c.Message(3, i)) {
			t.Fatalf("message %d differs between calls", i)
		}
	}
	if bytes.Equal(c.Message(3, 5), c.Message(4, 5)) || bytes.Equal(c.Message(3, 5), Corpus{Seed: 43}.Message(3, 5)) {
		t.Fatal("different streams or seeds give the same message")
	}
}

// TestCorpusIsValidMIME parses every message with go-message and checks the mix the
// corpus promises: multipart kinds, decodable base64 attachments, threads, encoded and raw
// UTF-8 headers, and sizes within bounds with a long tail.
func TestCorpusIsValidMIME(t *testing.T) {
	c := Corpus{Seed: 1, MaxSize: 512 << 10}
	const n = 400
	ids := map[string]bool{}
	var sizes []int
	kinds := map[string]int{}
	attachments, replies, encodedSubjects, rawSubjects, withWord := 0, 0, 0, 0, 0
	for i := 0; i < n; i++ {
		raw := c.Message(7, i)
		sizes = append(sizes, len(raw))
		if len(raw) < 1<<10 || len(raw) > c.MaxSize {
			t.Errorf("message %d: %d bytes, outside [1 KiB, %d]", i, len(raw), c.MaxSize)
		}
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("message %d has a bare LF", i)
		}
		mr, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, raw[:min(len(raw), 600)])
		}
		rawSubject := mr.Header.Get("Subject")
		subject, err := mr.Header.Subject()
		if err != nil || !utf8.ValidString(subject) || subject == "" {
			t.Errorf("message %d: subject %q: %v", i, subject, err)
		}
		switch {
		case strings.Contains(rawSubject, "=?"):
			encodedSubjects++
		case !isASCII(rawSubject):
			rawSubjects++
		}
		if strings.Contains(subject, SearchWord) {
			withWord++
		}
		id, err := mr.Header.MessageID()
		if err != nil || id == "" || ids[id] {
			t.Fatalf("message %d: Message-ID %q (%v), or seen before", i, id, err)
		}
		ids[id] = true
		if parents, err := mr.Header.MsgIDList("In-Reply-To"); err == nil && len(parents) > 0 {
			replies++
			refs, _ := mr.Header.MsgIDList("References")
			if !ids[parents[0]] || len(refs) == 0 || refs[len(refs)-1] != parents[0] || !strings.HasPrefix(subject, "Re: ") {
				t.Errorf("message %d: In-Reply-To %v, References %v, subject %q", i, parents, refs, subject)
			}
		}
		if _, err := mr.Header.AddressList("From"); err != nil {
			t.Errorf("message %d: From %q: %v", i, mr.Header.Get("From"), err)
		}
		mediaType, _, _ := mr.Header.ContentType()
		kinds[mediaType]++
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("message %d: next part: %v", i, err)
			}
			body, err := io.ReadAll(p.Body)
			if err != nil {
				t.Fatalf("message %d: decode part: %v", i, err)
			}
			if ah, ok := p.Header.(*mail.AttachmentHeader); ok {
				name, err := ah.Filename()
				if err != nil || name == "" {
					t.Errorf("message %d: attachment name %q: %v", i, name, err)
				}
				attachments++
			} else if len(body) == 0 {
				t.Errorf("message %d: empty text part", i)
			}
		}
	}
	slices.Sort(sizes)
	median, p95 := sizes[n/2], sizes[n*95/100]
	t.Logf("kinds %v; %d attachments, %d replies, %d encoded and %d raw UTF-8 subjects; median %d B, p95 %d B, max %d B",
		kinds, attachments, replies, encodedSubjects, rawSubjects, median, p95, sizes[n-1])
	if kinds["text/plain"] == 0 || kinds["multipart/alternative"] == 0 || kinds["multipart/mixed"] == 0 {
		t.Errorf("kinds %v", kinds)
	}
	if attachments < n/10 || replies < n/5 || encodedSubjects < n/10 || rawSubjects < n/20 || withWord == 0 {
		t.Errorf("%d attachments, %d replies, %d encoded and %d raw subjects, %d with %q", attachments, replies, encodedSubjects, rawSubjects, withWord, SearchWord)
	}
	if median > 16<<10 || p95 < 32<<10 {
		t.Errorf("sizes not skewed: median %d, p95 %d", median, p95)
	}
}

func TestTokenizer(t *testing.T) {
	resp := &Response{
		Text:     `* 3 FETCH (UID 17 FLAGS (\Seen $Label1) BODY[HEADER.FIELDS (FROM SUBJECT)] {5} ENVELOPE ("d" "a \"q\" b" NIL NIL NIL NIL NIL NIL NIL "<id>"))`,
		Literals: [][]byte{[]byte("ab\r\nc")},
	}
	f, err := resp.Fields()
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 4 || f[2].Atom != "FETCH" || !f[3].IsList {
		t.Fatalf("fields %+v", f)
	}
	items := f[3].List
	if items[4].Atom != "BODY[HEADER.FIELDS (FROM SUBJECT)]" || string(items[5].Str) != "ab\r\nc" {
		t.Errorf("section %q literal %q", items[4].Atom, items[5].Str)
	}
	if env := items[7].List; len(env) != 10 || env[1].String() != `a "q" b` || env[2].Atom != "NIL" {
		t.Errorf("envelope %+v", env)
	}
	for _, bad := range []string{`* 1 FETCH (UID 1`, `* 1 FETCH "open`, `* 1 FETCH )`} {
		if _, err := (&Response{Text: bad}).Fields(); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestCorpusFlags checks that populated flags are the same for the same seed, stream and
// index, and come in the promised shares: most messages \Seen, some \Answered and
// \Flagged, some with no flag at all.
func TestCorpusFlags(t *testing.T) {
	c := Corpus{Seed: 1}
	const n = 10000
	counts := map[string]int{}
	none := 0
	for i := 0; i < n; i++ {
		flags := c.Flags(2, i)
		if !slices.Equal(flags, c.Flags(2, i)) {
			t.Fatalf("message %d: flags differ between calls", i)
		}
		if len(flags) == 0 {
			none++
		}
		for _, f := range flags {
			counts[f]++
		}
		if slices.Contains(flags, `\Answered`) && !slices.Contains(flags, `\Seen`) {
			t.Fatalf("message %d: \\Answered without \\Seen: %v", i, flags)
		}
	}
	within := func(name string, got, lo, hi int) {
		if got < lo || got > hi {
			t.Errorf("%s on %d of %d messages, want %d to %d", name, got, n, lo, hi)
		}
	}
	within(`\Seen`, counts[`\Seen`], 7700, 8300)
	within(`\Answered`, counts[`\Answered`], 1700, 2300)
	within(`\Flagged`, counts[`\Flagged`], 200, 400)
	within("no flag", none, 1700, 2300)
	if slices.Equal(c.Flags(2, 0), c.Flags(3, 0)) && slices.Equal(c.Flags(2, 1), c.Flags(3, 1)) &&
		slices.Equal(c.Flags(2, 2), c.Flags(3, 2)) && slices.Equal(c.Flags(2, 3), c.Flags(3, 3)) &&
		slices.Equal(c.Flags(2, 4), c.Flags(3, 4)) && slices.Equal(c.Flags(2, 5), c.Flags(3, 5)) {
		t.Error("streams 2 and 3 have the same flags on their first six messages")
	}
}
