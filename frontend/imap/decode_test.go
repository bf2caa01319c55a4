package imap

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestTransferDecoder(t *testing.T) {
	for _, tc := range []struct{ encoding, in, want string }{
		{"", "as is\r\n", "as is\r\n"},
		{"8BIT", "caf\xc3\xa9", "caf\xc3\xa9"},
		{"Base64", "aGVs\r\nbG8=\r\n", "hello"},
		{"base64", "aGVs bG8h\r\n*!~", "hello!"}, // RFC 2045 6.8: ignore other characters
		{"base64", "aGVsbG8=aGk=", "hellohi"},
		{"base64", "aGVsbG8=a", "hello"},            // content ends where decoding fails
		{"quoted-printable", "a=3Db=\r\nc", "a=bc"}, // soft line break
		{"quoted-printable", "caf=C3=A9 =\r\n", "caf\xc3\xa9 "},
	} {
		r, err := transferDecoder(iotest.OneByteReader(strings.NewReader(tc.in)), tc.encoding)
		if err != nil {
			t.Errorf("%s %q: %v", tc.encoding, tc.in, err)
			continue
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s %q = %q, %v; want %q", tc.encoding, tc.in, got, err, tc.want)
		}
	}
	if _, err := transferDecoder(strings.NewReader(""), "x-uuencode"); !errors.Is(err, errUnknownCTE) {
		t.Errorf("x-uuencode: %v", err)
	}
	// A failing source is an error, never the end of the content.
	broken := io.MultiReader(strings.NewReader("aGVs"), iotest.ErrReader(errors.New("disk on fire")))
	r, _ := transferDecoder(broken, "base64")
	if _, err := io.ReadAll(r); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("source error = %v", err)
	}
}

func TestFoldedContains(t *testing.T) {
	for _, tc := range []struct {
		text, needle string
		want         bool
	}{
		{"Hello World", "WORLD", true},
		{"Grüße", "GRÜSSE", false}, // simple folding: ß is not ss
		{"GRÜẞE", "grüße", true},   // capital sharp s folds to ß
		{"ΣΤΡΑΤΑ", "στρατα", true},
		{"ΟΔΟΣ", "οδος", true}, // final sigma
		{"\u212a", "k", true},  // KELVIN SIGN
		{"caf\xff", "CAF", true},
	} {
		got, err := foldedContains(strings.NewReader(tc.text), []byte(foldString(tc.needle)))
		if err != nil || got != tc.want {
			t.Errorf("%q in %q = %v, %v", tc.needle, tc.text, got, err)
		}
	}
	// A match across the 64 KiB window boundary, in a multi-byte text.
	for _, at := range []int{64<<10 - 3, 64<<10 - 1, 64 << 10, 3 * 64 << 10} {
		text := strings.Repeat("x", at) + "ÉCOLE" + strings.Repeat("y", 1000)
		got, err := foldedContains(strings.NewReader(text), []byte(foldString("école")))
		if err != nil || !got {
			t.Errorf("needle at %d: %v, %v", at, got, err)
		}
	}
	if got, _ := foldedContains(strings.NewReader(strings.Repeat("é", 100<<10)), []byte(foldString("ée!"))); got {
		t.Error("false match")
	}
}
