package searchindex

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// TestDocRecentAcrossResets: the words a doc reused message after message holds are each
// message's own, through the cache of recent words (Doc.recent): after the message
// counter wraps, after the interned words are dropped for growing too large, and with
// more distinct words than the cache has slots.
func TestDocRecentAcrossResets(t *testing.T) {
	d := NewDoc()
	check := func(step string, want ...string) {
		t.Helper()
		var got []string
		words, _ := DocWords(d)
		for _, w := range words {
			got = append(got, w[1:])
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: words %q, want %q", step, got, want)
		}
	}
	d.Add(ScopeBody, []byte("ALPHA BETA ALPHA"))
	check("first message", "ALPHA", "BETA")
	d.Reset()
	d.msg = math.MaxUint32 // the next Reset wraps around to message 1, the first's
	d.Reset()
	d.Add(ScopeBody, []byte("ALPHA"))
	check("after the counter wrapped", "ALPHA")

	var many []byte
	var want []string
	for i := range maxSeen + 10 {
		w := fmt.Sprintf("W%d", i)
		many = append(append(many, w...), ' ')
		want = append(want, w)
	}
	d.Reset()
	d.Add(ScopeBody, many)
	check("more words than the cache holds", want...)
	d.Reset() // drops the interned words
	d.Add(ScopeBody, []byte("W1 ALPHA W1"))
	check("after the interned words were dropped", "W1", "ALPHA")
}
