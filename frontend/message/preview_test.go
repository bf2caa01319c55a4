package message

import (
	"testing"
	"unicode"
)

// TestASCIIClasses: collapseSpace's ASCII fast path classifies every ASCII byte as its
// rune path does (unicode.IsSpace; unicode.IsControl or the category Cf).
func TestASCIIClasses(t *testing.T) {
	for c := range byte(0x80) {
		r := rune(c)
		if asciiSpace(c) != unicode.IsSpace(r) {
			t.Errorf("asciiSpace(%#x) = %v, unicode.IsSpace %v", c, asciiSpace(c), unicode.IsSpace(r))
		}
		dropped := !unicode.IsSpace(r) && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))
		if !asciiSpace(c) && asciiDropped(c) != dropped {
			t.Errorf("asciiDropped(%#x) = %v, want %v", c, asciiDropped(c), dropped)
		}
	}
	if got := collapseSpace([]byte("\x00 a\tb\x7f\r\n c\u00a0\u200bd\u0085e  "), previewChars); got != "a b c d e" {
		t.Errorf("collapseSpace = %q, want %q", got, "a b c d e")
	}
}
