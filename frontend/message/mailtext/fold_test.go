package mailtext

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// TestFoldChunks: the chunks FoldChunks hands out, less the keep bytes each repeats, are
// the text folded rune by rune (invalid bytes as U+FFFD), for ASCII, multi-byte runes and
// invalid UTF-8, texts longer than a chunk, and readers that return a byte at a time.
func TestFoldChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 17))
	alphabet := []string{"a", "Z", "q", " ", "\r\n", "é", "Ж", "ß", "会", "\xff", "\xc3", "ǅ"}
	for _, size := range []int{0, 1, 100, foldWindow - 1, foldWindow, 3*foldWindow + 7} {
		var sb strings.Builder
		for sb.Len() < size {
			if r.IntN(3) == 0 {
				sb.WriteString(strings.Repeat("abcXYZ ", 1+r.IntN(50)))
			}
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		text := sb.String()
		var want []byte
		for _, ch := range text { // invalid bytes range as U+FFFD, as ReadRune reads them
			want = utf8.AppendRune(want, FoldRune(ch))
		}
		for _, keep := range []int{0, 2} {
			for name, src := range map[string]io.Reader{"whole": strings.NewReader(text), "bytewise": iotest.OneByteReader(strings.NewReader(text))} {
				var got []byte
				first := true
				err := FoldChunks(src, keep, func(c []byte) bool {
					if !first {
						c = c[keep:]
					}
					first = false
					got = append(got, c...)
					return true
				})
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%d bytes, keep %d, %s reader: folded %d bytes, want %d (err %v)", size, keep, name, len(got), len(want), err)
				}
			}
		}
	}
}

// TestFoldTable: the table FoldRune reads below foldTableSize holds the least rune of
// each rune's simple case-folding orbit (foldOrbit), and runes above it fold the same way
// through the orbit (ASCII letters to upper case, 'ǅ' and 'ſ' to their orbit's least).
func TestFoldTable(t *testing.T) {
	for r := rune(0); r < foldTableSize+0x100; r++ {
		if got, want := FoldRune(r), foldOrbit(r); got != want {
			t.Fatalf("FoldRune(%U) = %U, want %U", r, got, want)
		}
	}
	for r, want := range map[rune]rune{'a': 'A', 'Z': 'Z', 'ǅ': 'Ǆ', 'ſ': 'S', 'K': 'K', 'ß': 'ß', '会': '会', 0x1E9E: 'ß', -1: -1, utf8.MaxRune + 1: utf8.MaxRune + 1} {
		if got := FoldRune(r); got != want {
			t.Errorf("FoldRune(%U) = %U, want %U", r, got, want)
		}
	}
	for c := range byte(utf8.RuneSelf) {
		if rune(asciiUpper[c]) != FoldRune(rune(c)) {
			t.Fatalf("asciiUpper[%q] = %q", c, asciiUpper[c])
		}
	}
}

// foldByRange is Fold as it was defined: rune by rune over the string's range (invalid
// bytes as U+FFFD).
func foldByRange(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(FoldRune(r))
	}
	return b.String()
}

// FuzzAppendFold: AppendFold appends to what dst holds exactly the folding of s rune by
// rune, and Fold returns the same text.
func FuzzAppendFold(f *testing.F) {
	for _, s := range []string{"", "Hello, World", "ÉTÉ été", "ǅungla ſ", "\xff\xc3 a\xe2\x82", "会议 Zürich", "\x00\t\r\n"} {
		f.Add("prefix", s)
	}
	f.Fuzz(func(t *testing.T, prefix, s string) {
		want := foldByRange(s)
		if got := AppendFold([]byte(prefix), s); string(got) != prefix+want {
			t.Fatalf("AppendFold(%q, %q) = %q, want %q", prefix, s, got, prefix+want)
		}
		if got := Fold(s); got != want {
			t.Fatalf("Fold(%q) = %q, want %q", s, got, want)
		}
	})
}
