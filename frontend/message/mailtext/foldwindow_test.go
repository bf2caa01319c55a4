package mailtext

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// oldFoldRune is FoldRune as of 7c896e3^1.
func oldFoldRune(r rune) rune {
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

func oldFold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(oldFoldRune(r))
	}
	return b.String()
}

// oldFoldChunks is FoldChunks as of 7c896e3^1 (own buffers).
func oldFoldChunks(r io.Reader, keep int, chunk func([]byte) bool) error {
	br := bufio.NewReaderSize(r, 32<<10)
	buf := make([]byte, 0, foldWindow+utf8.UTFMax)
	for {
		if ascii, _ := br.Peek(br.Buffered()); len(ascii) > 0 && ascii[0] < utf8.RuneSelf {
			n := 0
			for ; n < len(ascii) && ascii[n] < utf8.RuneSelf && len(buf) < foldWindow; n++ {
				c := ascii[n]
				if 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				}
				buf = append(buf, c)
			}
			_, _ = br.Discard(n)
			if len(buf) >= foldWindow {
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
		buf = utf8.AppendRune(buf, oldFoldRune(ch))
		if len(buf) >= foldWindow {
			if !chunk(buf) {
				return nil
			}
			k := min(keep, len(buf))
			buf = append(buf[:0], buf[len(buf)-k:]...)
		}
	}
}

// Every rune value (and out-of-range ones) folds as the old rune-by-rune function did.
func TestFoldRuneAllRunes(t *testing.T) {
	for r := rune(-2); r <= utf8.MaxRune+2; r++ {
		if got, want := FoldRune(r), oldFoldRune(r); got != want {
			t.Fatalf("FoldRune(%U) = %U, old %U", r, got, want)
		}
	}
	for _, r := range []rune{-1 << 31, 1<<31 - 1, 0xD800, 0xDFFF} {
		if got, want := FoldRune(r), oldFoldRune(r); got != want {
			t.Fatalf("FoldRune(%U) = %U, old %U", r, got, want)
		}
	}
}

// Fold/AppendFold equal the old Fold on every 1-, 2- and 3-byte string and every encoded
// rune, alone and between neighbours (invalid sequences, surrogates, truncations).
func TestFoldStrings(t *testing.T) {
	check := func(s string) {
		if got, want := Fold(s), oldFold(s); got != want {
			t.Fatalf("Fold(%q) = %q, old %q", s, got, want)
		}
		if got, want := string(AppendFold([]byte("p"), s)), "p"+oldFold(s); got != want {
			t.Fatalf("AppendFold(%q) = %q, old %q", s, got, want)
		}
	}
	for a := 0; a < 256; a++ {
		check(string([]byte{byte(a)}))
		for b := 0; b < 256; b++ {
			check(string([]byte{byte(a), byte(b)}))
		}
	}
	for a := 0xC0; a < 256; a++ {
		for b := 0x70; b < 0xC4; b++ {
			for c := 0; c < 256; c++ {
				check(string([]byte{byte(a), byte(b), byte(c)}))
			}
		}
	}
	var all strings.Builder
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if utf8.ValidRune(r) {
			all.WriteRune(r)
		}
	}
	check(all.String())
	check("İıſßẞΣσςÅÅǅǄǆᏸᏰꭰᎠ\u0301e\u0301K")
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200000; i++ {
		b := make([]byte, rng.Intn(12))
		for j := range b {
			switch rng.Intn(3) {
			case 0:
				b[j] = byte(rng.Intn(128))
			default:
				b[j] = byte(rng.Intn(256))
			}
		}
		check(string(b))
	}
}

func collectChunks(f func(io.Reader, int, func([]byte) bool) error, in []byte, keep int) ([]string, error) {
	var out []string
	err := f(bytes.NewReader(in), keep, func(b []byte) bool {
		h := sha256.Sum256(b)
		out = append(out, string(h[:])+strconv.Itoa(len(b)))
		return true
	})
	return out, err
}

// FoldChunks hands out the very chunks the old one did, on random mixes of ASCII,
// multi-byte and invalid text crossing window boundaries, and leaves the input untouched.
func TestFoldChunksSameAsOld(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	pieces := []string{"a", "Z", "hello world ", "é", "ſ", "K", "\xff", "\xe2\x82", "会", "𝔸", "\r\n", "ß"}
	for i := 0; i < 300; i++ {
		var sb strings.Builder
		n := rng.Intn(3*foldWindow + 10)
		for sb.Len() < n {
			if rng.Intn(4) == 0 {
				sb.WriteString(strings.Repeat("x", rng.Intn(40000)))
			}
			sb.WriteString(pieces[rng.Intn(len(pieces))])
		}
		in := []byte(sb.String())
		orig := string(in)
		keep := []int{0, 1, 3, 47, 1000, foldWindow - 1}[rng.Intn(6)]
		if keep == foldWindow-1 && len(in) > foldWindow+300 {
			in = in[:foldWindow+300]
			orig = string(in)
		}
		got, err1 := collectChunks(FoldChunks, in, keep)
		want, err2 := collectChunks(oldFoldChunks, in, keep)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if len(got) != len(want) {
			t.Fatalf("case %d keep %d: %d chunks, old %d", i, keep, len(got), len(want))
		}
		for k := range got {
			if got[k] != want[k] {
				t.Fatalf("case %d keep %d: chunk %d differs", i, keep, k)
			}
		}
		if string(in) != orig {
			t.Fatalf("case %d: input mutated", i)
		}
	}
}

// A needle longer than the fold window (keep >= foldWindow) over a long body: FoldChunks
// must return (found or not), not spin or panic.
func TestFoldChunksKeepBeyondWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{"ascii", strings.Repeat("a", foldWindow+100)},
		{"rune at window end", strings.Repeat("a", foldWindow-1) + "é" + strings.Repeat("a", 100)},
		{"3-byte rune at window end", strings.Repeat("a", foldWindow-1) + "会" + strings.Repeat("a", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needle := []byte(Fold(strings.Repeat("\xff", 1<<16))) // a 64 KiB literal of invalid bytes: 192 KiB folded
			done := make(chan any, 1)
			go func() {
				defer func() { done <- recover() }()
				_, _ = FoldedContains(strings.NewReader(tc.body), needle)
			}()
			select {
			case v := <-done:
				if v != nil {
					t.Fatalf("FoldedContains panicked: %v", v)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("FoldedContains still running after 5 s (needle %d bytes, body %d bytes)", len(needle), len(tc.body))
			}
		})
	}
}
