package lmtp

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/strata-mail/strata/sieve"
)

// TestProgramCacheBound checks the LRU keeps at most max programs and drops the least
// recently used.
func TestProgramCacheBound(t *testing.T) {
	c := newProgramCache(2)
	progs := make([]*sieve.Program, 3)
	keys := make([][sha256.Size]byte, 3)
	for i := range progs {
		p, err := sieve.Compile("s", []byte(strings.Repeat("keep;", i+1)), sieve.Options{})
		if err != nil {
			t.Fatal(err)
		}
		progs[i], keys[i] = p, sha256.Sum256([]byte{byte(i)})
	}
	c.put(keys[0], progs[0])
	c.put(keys[1], progs[1])
	if c.get(keys[0]) != progs[0] { // 0 is now the most recent
		t.Fatal("program 0 not cached")
	}
	c.put(keys[2], progs[2])
	if c.get(keys[1]) != nil {
		t.Error("program 1, the least recently used, was not evicted")
	}
	if c.get(keys[0]) != progs[0] || c.get(keys[2]) != progs[2] {
		t.Error("programs 0 and 2 should be cached")
	}
	if c.order.Len() != 2 || len(c.items) != 2 {
		t.Errorf("cache holds %d/%d entries, want 2", c.order.Len(), len(c.items))
	}
}

// TestRejectText keeps a reject reason on one reply line.
func TestRejectText(t *testing.T) {
	for in, want := range map[string]string{
		"go away":              "go away",
		"line one\r\nline two": "line one line two",
		"":                     "Message rejected",
		"\x00\t ":              "Message rejected",
		"zu groß":              "zu gro?",
	} {
		if got := rejectText(in); got != want {
			t.Errorf("rejectText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := rejectText(strings.Repeat("x", 1000)); len(got) != 400 {
		t.Errorf("long reason has %d bytes, want 400", len(got))
	}
}
