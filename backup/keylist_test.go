package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/blobstore"
)

func blobKeyN(i int) string {
	return blobstore.Key("t1", sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
}

// TestKeyListSpoolsInOrder writes keys through a keyList and reads them back: the same
// keys in the same order, the checksum of the bytes a stored list holds, and every key
// out of order, repeated or malformed refused.
func TestKeyListSpoolsInOrder(t *testing.T) {
	var keys []string
	for i := range 2500 {
		keys = append(keys, blobKeyN(i))
	}
	slices.Sort(keys)
	l, err := newKeyList(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	for _, k := range keys {
		if err := l.add(k); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := l.finish()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(keys, "\n") + "\n"
	want := sha256.Sum256([]byte(text))
	if sum != hex.EncodeToString(want[:]) || l.n != uint64(len(keys)) {
		t.Fatalf("sum %s count %d, want %x %d", sum, l.n, want, len(keys))
	}
	for range 2 { // each rewinds
		var got []string
		if err := l.each(func(k string) bool { got = append(got, k); return true }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, keys) {
			t.Fatalf("read back %d keys, not the %d written", len(got), len(keys))
		}
	}

	// A stored list read back is checked the same way.
	r, err := spoolKeyList(strings.NewReader(text), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if sum2, _ := r.finish(); sum2 != sum || r.n != l.n {
		t.Fatalf("respooled list: sum %s count %d", sum2, r.n)
	}
	r.close()

	for name, bad := range map[string][]string{
		"out of order": {keys[1], keys[0]},
		"repeated":     {keys[0], keys[0]},
		"malformed":    {keys[0], "../etc/passwd"},
	} {
		l, err := newKeyList(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.add(bad[0]); err != nil {
			t.Fatal(err)
		}
		if err := l.add(bad[1]); err == nil {
			t.Errorf("%s: %q after %q accepted", name, bad[1], bad[0])
		}
		l.close()
		if _, err := spoolKeyList(strings.NewReader(strings.Join(bad, "\n")+"\n"), t.TempDir()); err == nil {
			t.Errorf("%s: stored list accepted", name)
		}
	}
}
