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
