package metadata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

func readAllTK(t testing.TB, f *FSM, mailbox uint64, read func(*view, uint64, uint32, int, bool) ([]byte, uint32, bool, error)) []byte {
	t.Helper()
	v := f.view()
	defer v.close()
	var out []byte
	full := false
	for after := uint32(0); ; {
		recs, last, more, err := read(v, mailbox, after, sortColumnChunkBytes, full)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
		if !more {
			return out
		}
		after, full = last, true
	}
}

// TestThreadKeysMixedStamps: random client commands with random stamps and small
// fills; after each, a thread_keys_complete mailbox's 't' entries equal those derived from
// its column, and a partially filled one's equal those at or below thread_keyed_through_uid.
func TestThreadKeysMixedStamps(t *testing.T) {
	seeds := 12
	if s, err := strconv.Atoi(os.Getenv("TKSEEDS")); err == nil {
		seeds = s
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := newMixedStampsRun(t, rand.New(rand.NewPCG(seed, 7)), commandMix{steps: 500, ops: 11, deleteOneIn: 2, renameOps: 2, renameOneIn: 1})
			h := m.h
			completeChecks, partialChecks := 0, 0
			check := func(step int, what string) {
				for id := range m.ids {
					rec, err := getMailboxRecord(h.f, id)
					if err != nil || rec.GetMailbox() == nil {
						// destroyed: no 't' chunk may remain
						if got := readAllTK(t, h.f, id, (*view).threadKeysRecords); len(got) > 0 {
							t.Fatalf("step %d (%s): destroyed mailbox %d keeps %d thread-keys bytes", step, what, id, len(got))
						}
						continue
					}
					got := readAllTK(t, h.f, id, (*view).threadKeysRecords)
					want := readAllTK(t, h.f, id, (*view).threadKeysFromColumn)
					if rec.GetThreadKeysComplete() {
						completeChecks++
						if !bytes.Equal(got, want) {
							t.Fatalf("step %d (%s): mailbox %d thread_keys_complete: %d 't' bytes, %d derived\n got %x\nwant %x", step, what, id, len(got), len(want), got, want)
						}
						continue
					}
					through := rec.GetThreadKeyedThroughUid()
					if through > 0 {
						partialChecks++
					}
					if w := recsThroughRaw(want, through); !bytes.Equal(got, w) {
						t.Fatalf("step %d (%s): mailbox %d partial through %d: %d 't' bytes, %d derived", step, what, id, through, len(got), len(w))
					}
				}
			}
			defer func() { t.Logf("ops %v complete checks %d partial checks %d", m.ops, completeChecks, partialChecks) }()
			m.run(check)
			m.fillAll()
			for id := range m.ids {
				if rec, err := getMailboxRecord(h.f, id); err == nil && rec.GetMailbox() != nil && !rec.GetThreadKeysComplete() {
					t.Fatalf("mailbox %d not thread_keys_complete after the fill", id)
				}
			}
			check(-1, "filled")
		})
	}
}

func recsThroughRaw(recs []byte, through uint32) []byte {
	var out []byte
	for len(recs) > 0 {
		uid, _, rest, ok := nextColumnRecord(recs)
		if !ok {
			break
		}
		if uid <= through {
			out = append(out, recs[:len(recs)-len(rest)]...)
		}
		recs = rest
	}
	return out
}
