package metadata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// From the review of sortfirst19/left19 (sortcol19): the same random log applied in random
// batch groupings (carry on) and one entry per batch on cold caches must give identical stores,
// and each store's column must match its messages.

// applyGrouped applies entries to h in random groups (the harness log already holds them).
func applyGrouped(t *testing.T, f *FSM, entries []*raft.Log, rng *rand.Rand, cold bool) []any {
	var out []any
	for i := 0; i < len(entries); {
		n := 1 + rng.IntN(8)
		if i+n > len(entries) {
			n = len(entries) - i
		}
		if cold {
			g := f.acquire()
			g.carried = nil
			g.release()
		}
		out = append(out, f.ApplyBatch(entries[i:i+n])...)
		i += n
	}
	return out
}

func TestReviewSortColumnRandomBatches(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			h := withAccount(t)
			h.ok(cmdCreateMailbox(alice, "RevBox"))
			inbox, archive := h.mustMailbox(alice, "INBOX").GetId(), h.mustMailbox(alice, "RevBox").GetId()
			boxes := []uint64{inbox, archive}
			prefix := len(h.log)
			var entries []*raft.Log
			blob := 0
			for step := 0; step < 400; step++ {
				box := boxes[rng.IntN(2)]
				var cmd *metadatapb.Command
				switch r := rng.IntN(100); {
				case r < 35:
					var blobs []string
					for range 1 + rng.IntN(40) {
						blob++
						blobs = append(blobs, fmt.Sprintf("b%05d", blob))
					}
					cmd = cmdAppendKeys(alice, box, rng.IntN(5) != 0, blobs...)
				case r < 45:
					blob++
					cmd = cmdAppendKeys(alice, box, true, fmt.Sprintf("b%05d", blob))
					cmd.GetAppend().DedupKey = []byte(fmt.Sprintf("k%d", rng.IntN(6)))
					cmd.GetAppend().DedupWindowSeconds = uint32(1 + rng.IntN(3))
				case r < 65:
					lo := uint32(rng.IntN(600))
					cmd = cmdStore(alice, box, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(lo, lo+uint32(rng.IntN(200)))}, `\Deleted`)
				case r < 78:
					if rng.IntN(2) == 0 {
						cmd = cmdExpunge(alice, box)
					} else {
						lo := uint32(rng.IntN(600))
						cmd = cmdExpunge(alice, box, uidRange(lo, lo+uint32(rng.IntN(300))))
					}
				case r < 90:
					lo := uint32(rng.IntN(600))
					dst := boxes[rng.IntN(2)] // includes the same mailbox
					cmd = cmdCopy(alice, box, dst, rng.IntN(2) == 0, uidRange(lo, lo+uint32(rng.IntN(60))))
				case r < 93:
					// a failing command mid-batch (copy without UIDs: InvalidArgument)
					cmd = cmdCopy(alice, box, box, false)
				default:
					h.now = h.now.Add(time.Duration(rng.IntN(5)) * time.Second)
					if rng.IntN(4) == 0 {
						h.index += retryEntries
					}
					blob++
					cmd = cmdAppendKeys(alice, box, true, fmt.Sprintf("b%05d", blob))
				}
				entries = append(entries, h.entry(cmd))
			}
			// Store 1 (h): random groups, caches carried.
			res1 := applyGrouped(t, h.f, entries, rng, false)
			// Store 2: the whole log, other random groups, caches carried.
			s2 := newHarness(t)
			s2.f.ApplyBatch(h.log[:prefix])
			mid := len(entries) / 2
			res2 := applyGrouped(t, s2.f, entries[:mid], rand.New(rand.NewPCG(seed, 7)), false)
			// Restore mid-memo: s2's state into a new store, which goes on with other groups.
			s2 = s2.restored()
			res2 = append(res2, applyGrouped(t, s2.f, entries[mid:], rand.New(rand.NewPCG(seed, 8)), false)...)
			// Store 3: one entry per batch, cold.
			s3 := newHarness(t)
			s3.f.ApplyBatch(h.log[:prefix])
			res3 := applyGrouped(t, s3.f, entries, rand.New(rand.NewPCG(0, 0)), true)
			for i := range res1 {
				if !proto.Equal(res1[i].(proto.Message), res2[i].(proto.Message)) || !proto.Equal(res1[i].(proto.Message), res3[i].(proto.Message)) {
					t.Fatalf("entry %d: results differ: %v / %v / %v", i, res1[i], res2[i], res3[i])
				}
			}
			if !bytes.Equal(h.digest(), s2.digest()) || !bytes.Equal(h.digest(), s3.digest()) {
				t.Fatal("digests differ between batchings")
			}
			n := h.wantSortColumn()
			s3.wantSortColumn()
			// Paging: every maxBytes gives the column in UID order.
			for _, box := range boxes {
				all, _ := h.readColumn(box, 0, 1<<30)
				if !slices.IsSorted(all) {
					t.Fatalf("column not sorted: %v", all)
				}
				for _, mb := range []int{1, 100, 777, 5000} {
					got, _ := h.readColumn(box, 0, mb)
					if !slices.Equal(got, all) {
						t.Fatalf("maxBytes %d: %d uids, want %d", mb, len(got), len(all))
					}
					for _, after := range []uint32{126, 127, 128, 255, 256} {
						got, _ := h.readColumn(box, after, mb)
						var want []uint32
						for _, u := range all {
							if u > after {
								want = append(want, u)
							}
						}
						if !slices.Equal(got, want) {
							t.Fatalf("after %d maxBytes %d: got %d uids want %d", after, mb, len(got), len(want))
						}
					}
				}
			}
			fv := h.f.view()
			fl, _, _ := getRaw(fv.r, keyDedupFloor)
			fv.close()
			t.Logf("seed %d: %d column entries, %d dedup age keys, floor %x", seed, n, h.keysWith(prefixDedupAge), fl)
			// Delete everything: no orphan chunks.
			h.deleteLeavesNoColumn("RevBox")
		})
	}
}

// TestReviewSortColumnConcurrentReads: reads of the column (own views) while batches
// rewrite chunks; run with -race.
func TestReviewSortColumnConcurrentReads(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			v := h.f.view()
			after := uint32(0)
			for {
				recs, last, more, err := v.sortColumnRecords(inbox, after, 300, after > 0)
				if err != nil {
					errs <- err
					v.close()
					return
				}
				prev := after
				for len(recs) > 0 {
					uid, _, rest, ok := nextColumnRecord(recs)
					if !ok || uid <= prev {
						errs <- fmt.Errorf("bad record order %d after %d", uid, prev)
						v.close()
						return
					}
					prev, recs = uid, rest
				}
				if !more {
					break
				}
				after = last
			}
			v.close()
		}
	}()
	blob := 0
	for round := 0; round < 60; round++ {
		var entries []*raft.Log
		for range 5 {
			var blobs []string
			for range 7 {
				blob++
				blobs = append(blobs, fmt.Sprintf("c%05d", blob))
			}
			entries = append(entries, h.entry(cmdAppendKeys(alice, inbox, true, blobs...)))
		}
		lo := uint32(round * 20)
		entries = append(entries, h.entry(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(lo, lo+9)}, `\Deleted`)))
		entries = append(entries, h.entry(cmdExpunge(alice, inbox)))
		h.f.ApplyBatch(entries)
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	h.wantSortColumn()
}
