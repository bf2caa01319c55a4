package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestProbeReadsMatchGet: a txn's point reads through its probe iterator (probeGet) answer
// what the indexed batch's Get answers, for keys in L6, in L0, in the memtable and in the
// batch, written, overwritten, deleted and range-deleted in the batch after the probe was
// opened, and for absent keys of every probed prefix.
func TestProbeReadsMatchGet(t *testing.T) {
	h := newHarness(t)
	g := h.f.acquire()
	defer g.release()
	key := func(prefix byte, i int) []byte { return []byte(fmt.Sprintf("%cprobe-%05d", prefix, i)) }
	prefixes := []byte{prefixRequest, prefixThread, prefixMessageNumber, prefixBlob, prefixDedup, prefixMark}
	// Three layers in the store: compacted to L6, flushed to L0, left in the memtable;
	// each overwrites or deletes part of the one below.
	for layer := 0; layer < 3; layer++ {
		b := g.db.NewBatch()
		for _, p := range prefixes {
			for i := layer; i < 300; i += 3 - layer {
				v := []byte(fmt.Sprintf("v%d-%d", layer, i))
				if i%7 == layer {
					if err := b.Delete(key(p, i), nil); err != nil {
						t.Fatal(err)
					}
				} else if err := b.Set(key(p, i), v, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		switch layer {
		case 0:
			if err := g.db.Compact(t.Context(), []byte{0}, []byte{0xff}, true); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := g.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := g.db.NewIndexedBatch()
	tx := newTxn(b, nil)
	defer func() {
		tx.close()
		_ = b.Close()
	}()
	check := func(round string) {
		t.Helper()
		for _, p := range prefixes {
			for i := 0; i < 320; i++ {
				k := key(p, i)
				got, gotFound, err := tx.probeGet(k)
				if err != nil {
					t.Fatal(err)
				}
				want, closer, err := b.Get(k)
				wantFound := err == nil
				if err != nil && !errors.Is(err, pebble.ErrNotFound) {
					t.Fatal(err)
				}
				if gotFound != wantFound || !bytes.Equal(got, want) {
					t.Fatalf("%s: %q: probe %q (%v), Get %q (%v)", round, k, got, gotFound, want, wantFound)
				}
				if closer != nil {
					closer.Close()
				}
			}
		}
	}
	check("store")
	// Writes after the probe opened: it must see them at the next read.
	for _, p := range prefixes {
		for i := 0; i < 320; i += 5 {
			if i%2 == 0 {
				tx.mustSet(key(p, i), []byte(fmt.Sprintf("batch-%d", i)))
			} else {
				tx.mustDelete(key(p, i))
			}
		}
	}
	check("batch writes")
	tx.deleteRange(key(prefixBlob, 100), key(prefixBlob, 200))
	check("range deletion")
	tx.insert(key(prefixBlob, 150), []byte("after the range"))
	check("set over the range deletion")
}
