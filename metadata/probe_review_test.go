package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestProbeRandomAgainstGet (review of append22): random stores (L6, L0, memtable layers
// with sets, deletes and range deletions, keys that are prefixes of one another) and a
// random batch interleaving writes, deletes, range deletions, savepoint rollbacks and
// probe reads (random order and ascending runs, which take Pebble's seek-using-next path);
// every probeGet and every tx.get must equal the indexed batch's Get, and every value a
// probe returned must stay what it was after later writes and refreshes.
func TestProbeRandomAgainstGet(t *testing.T) {
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { probeRandom(t, seed) })
	}
}

func probeRandom(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	h := newHarness(t)
	g := h.f.acquire()
	defer g.release()
	prefixes := []byte{prefixRequest, prefixThread, prefixMessageNumber, prefixBlob, prefixDedup, prefixMark, prefixMessage}
	var keys [][]byte
	for _, p := range prefixes {
		keys = append(keys, []byte{p})
		for _, a := range []string{"a", "b"} {
			keys = append(keys, []byte(string(p)+a))
			for _, b := range []string{"a", "b", "\x00", "\xff"} {
				keys = append(keys, []byte(string(p)+a+b))
				keys = append(keys, []byte(string(p)+a+b+"z"))
			}
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	randKey := func() []byte { return keys[rng.Intn(len(keys))] }
	randRange := func() ([]byte, []byte) {
		a, b := randKey(), randKey()
		if bytes.Compare(a, b) > 0 {
			a, b = b, a
		}
		if bytes.Equal(a, b) {
			b = append(bytes.Clone(b), 0)
		}
		return a, b
	}
	for layer := 0; layer < 4; layer++ {
		b := g.db.NewBatch()
		for n := 0; n < 60; n++ {
			switch r := rng.Intn(10); {
			case r < 6:
				_ = b.Set(randKey(), []byte(fmt.Sprintf("L%d-%d", layer, n)), nil)
			case r < 9:
				_ = b.Delete(randKey(), nil)
			default:
				s, e := randRange()
				_ = b.DeleteRange(s, e, nil)
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
		case 1, 2:
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
	type held struct{ key, got, copy []byte }
	var returned []held
	want := func(k []byte) ([]byte, bool) {
		v, c, err := b.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		out := bytes.Clone(v)
		c.Close()
		return out, true
	}
	probe := func(step int, k []byte) {
		t.Helper()
		got, found, err := tx.probeGet(k)
		if err != nil {
			t.Fatal(err)
		}
		w, wf := want(k)
		if found != wf || !bytes.Equal(got, w) {
			t.Fatalf("step %d: probe %q: %q %v, Get %q %v", step, k, got, found, w, wf)
		}
		if found {
			returned = append(returned, held{k, got, bytes.Clone(got)})
		}
		// The txn's read (cache, then probe) agrees too.
		gv, gf, err := tx.get(k)
		if err != nil {
			t.Fatal(err)
		}
		if gf != wf || !bytes.Equal(gv, w) {
			t.Fatalf("step %d: tx.get %q: %q %v, Get %q %v", step, k, gv, gf, w, wf)
		}
	}
	for step := 0; step < 2000; step++ {
		switch r := rng.Intn(20); {
		case r < 5:
			tx.mustSet(randKey(), []byte(fmt.Sprintf("batch-%d", step)))
		case r < 7:
			tx.mustDelete(randKey())
		case r < 8:
			s, e := randRange()
			tx.deleteRange(bytes.Clone(s), bytes.Clone(e))
		case r < 9:
			// A command that writes and is rolled back.
			tx.savepoint()
			for n := rng.Intn(4); n >= 0; n-- {
				k := randKey()
				probe(step, k)
				if rng.Intn(2) == 0 {
					tx.mustSet(k, []byte(fmt.Sprintf("rolled-%d", step)))
				} else {
					tx.mustDelete(k)
				}
			}
			if rng.Intn(2) == 0 {
				tx.rollback()
			} else {
				tx.releaseSavepoint()
			}
		case r < 11:
			// An ascending run without writes between (seek-using-next).
			i := rng.Intn(len(keys))
			for n := rng.Intn(8); n >= 0 && i < len(keys); n-- {
				probe(step, keys[i])
				i += 1 + rng.Intn(3)
			}
		case r < 12:
			// An ascending run with writes between.
			i := rng.Intn(len(keys))
			for n := rng.Intn(8); n >= 0 && i < len(keys); n-- {
				probe(step, keys[i])
				if rng.Intn(2) == 0 {
					tx.mustSet(randKey(), []byte(fmt.Sprintf("asc-%d-%d", step, n)))
				} else {
					s, e := randRange()
					tx.deleteRange(bytes.Clone(s), bytes.Clone(e))
				}
				i += 1 + rng.Intn(3)
			}
		default:
			probe(step, randKey())
		}
		if step%100 == 0 {
			for _, r := range returned {
				if !bytes.Equal(r.got, r.copy) {
					t.Fatalf("step %d: a value probed at %q changed from %q to %q", step, r.key, r.copy, r.got)
				}
			}
			// Clear the cache now and then so tx.get goes to the probe again.
			clear(tx.cache)
		}
	}
	for _, k := range keys {
		probe(-1, k)
	}
}

// TestProbeIteratorClosedAfterApply (review of append22): after batches whose commands read
// probed keys (request IDs, blob records, thread keys), including a retried request and a
// batch of only already-applied entries, no iterator is left open: Pebble's Close reports
// leaked iterators.
func TestProbeIteratorClosedAfterApply(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "one"))
	batchOf(h, cmdAppend(alice, inbox, "b1"), cmdAppend(alice, inbox, "b2", "b3"))
	// A replay of entries at or below the applied index: the early return.
	h.f.ApplyBatch(h.log[:1])
	// A retry: the request ID is found.
	h.f.ApplyBatch(h.log[len(h.log)-1:])
	if err := h.f.Close(); err != nil {
		t.Fatalf("close after applying: %v", err)
	}
}
