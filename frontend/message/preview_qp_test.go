package message

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// wholeQuotedPrintablePreview is buildPreview's way for every quoted-printable part: the
// whole prefix decoded, then read.
func wholeQuotedPrintablePreview(raw []byte) string {
	decoded, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
	return collapseSpace(decodeCharsetBytes("utf-8", decoded), previewChars)
}

// TestQuotedPrintablePreviewCutRune: a rune whose encoding the first decoding step cuts
// is the preview's last character; the preview is the whole decoding's (a reader that
// trusted the first step would end it with the cut rune's first byte instead).
func TestQuotedPrintablePreviewCutRune(t *testing.T) {
	for shift := 0; shift < 12; shift++ {
		var text strings.Builder
		// 198 characters, then white space up to the step, less shift bytes, then the euro
		// sign as the 200th character: its 3 bytes end at or around the step.
		for range 198 {
			text.WriteByte('x')
		}
		text.WriteString(strings.Repeat(" ", previewDecodeStep-198-shift))
		text.WriteString("€ and more text after it")
		var raw bytes.Buffer
		w := quotedprintable.NewWriter(&raw)
		w.Write([]byte(text.String()))
		w.Close()
		got, want := quotedPrintablePreview(raw.Bytes()), wholeQuotedPrintablePreview(raw.Bytes())
		if got != want {
			t.Fatalf("shift %d: preview ends %q, the whole decoding's %q", shift, got[len(got)-8:], want[len(want)-8:])
		}
		if !strings.HasSuffix(want, "x €") {
			t.Fatalf("shift %d: the test's preview ends %q, not with the euro sign", shift, want[len(want)-8:])
		}
	}
}

// TestQuotedPrintablePreviewMatchesWhole: random quoted-printable bodies (runs of white
// space longer than a decoding step, multi-byte and cut runes, bytes that are not UTF-8,
// soft line breaks, bad escapes, a prefix cut anywhere) get the preview of the whole
// decoding, through buildPreview too.
func TestQuotedPrintablePreviewMatchesWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "word ", "\u00e9", "€", "\U0001F600", "\xe2\x82", "\xff", "\t", "\r\n", "\u200b", "\x01", "=", "=4", "=ZZ", "=\r\n", "=E2=82=AC", "=C3", "= \r\n"}
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		for n := rng.IntN(400); n > 0; n-- {
			if rng.IntN(40) == 0 {
				b.WriteString(strings.Repeat(" ", rng.IntN(3*previewDecodeStep)))
				continue
			}
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		raw := []byte(b.String())
		if rng.IntN(2) == 0 { // encoded text, as a sender writes it
			var enc bytes.Buffer
			w := quotedprintable.NewWriter(&enc)
			w.Write(raw)
			w.Close()
			raw = enc.Bytes()
		}
		if len(raw) > 0 && rng.IntN(3) == 0 {
			raw = raw[:rng.IntN(len(raw))]
		}
		want := wholeQuotedPrintablePreview(raw)
		if got := quotedPrintablePreview(raw); got != want {
			t.Fatalf("body %d (%q): preview %q, whole decoding %q", i, raw, got, want)
		}
		part := &metadatapb.BodyPart{Type: "text", Subtype: "plain", Encoding: "QUOTED-PRINTABLE", Params: []*metadatapb.Param{{Key: "charset", Value: "UTF-8"}}}
		if got := buildPreview(raw, part); got != want {
			t.Fatalf("body %d: buildPreview %q, whole decoding %q", i, got, want)
		}
	}
}

func BenchmarkQuotedPrintablePreview(b *testing.B) {
	var text strings.Builder
	for i := 0; text.Len() < 60<<10; i++ {
		fmt.Fprintf(&text, "Line %d of a message body with a caf\u00e9 and a € sign.\r\n", i)
	}
	var raw bytes.Buffer
	w := quotedprintable.NewWriter(&raw)
	w.Write([]byte(text.String()))
	w.Close()
	b.Run("prefix", func(b *testing.B) {
		for b.Loop() {
			quotedPrintablePreview(raw.Bytes())
		}
	})
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			wholeQuotedPrintablePreview(raw.Bytes())
		}
	})
}
