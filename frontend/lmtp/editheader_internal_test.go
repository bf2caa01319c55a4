package lmtp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/strata-mail/strata/sieve"
)

// TestEditMessage replays edits on raw messages: folded fields move whole, names match
// without case, a message without a body or a final line end keeps what it has, and an
// over-long header is refused rather than read into memory without bound.
func TestEditMessage(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		edits          []sieve.HeaderEdit
	}{
		{"add first and last", "A: 1\r\n\r\nbody\r\n", "N: v\r\nA: 1\r\nL: w\r\n\r\nbody\r\n",
			[]sieve.HeaderEdit{{Name: "N", Value: "v"}, {Name: "L", Value: "w", Last: true}}},
		{"delete a folded field", "A: 1\r\nX: long\r\n  folded\r\nx: 2\r\n\r\nb", "A: 1\r\nx: 2\r\n\r\nb",
			[]sieve.HeaderEdit{{Delete: true, Name: "X", Occurrence: 1}}},
		{"occurrences count the edited header", "X: 1\r\nX: 2\r\nX: 3\r\n\r\n", "X: 3\r\n\r\n",
			[]sieve.HeaderEdit{{Delete: true, Name: "x", Occurrence: 1}, {Delete: true, Name: "x", Occurrence: 1}}},
		{"no body", "A: 1\r\n", "N: v\r\nA: 1\r\n", []sieve.HeaderEdit{{Name: "N", Value: "v"}}},
		{"bare LF", "A: 1\n\nbody\n", "N: v\r\nA: 1\n\nbody\n", []sieve.HeaderEdit{{Name: "N", Value: "v"}}},
	} {
		var out bytes.Buffer
		if err := editMessage(&out, strings.NewReader(tc.in), tc.edits); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if out.String() != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, out.String(), tc.want)
		}
	}
	huge := "A: " + strings.Repeat("x", maxEditedHeader) + "\r\n\r\n"
	if err := editMessage(&bytes.Buffer{}, strings.NewReader(huge), []sieve.HeaderEdit{{Name: "N", Value: "v"}}); err == nil {
		t.Error("an over-long header was edited, want an error")
	}
}
