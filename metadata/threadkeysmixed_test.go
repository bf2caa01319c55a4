package metadata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
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
			r := rand.New(rand.NewPCG(seed, 7))
			h := newHarness(t)
			stamp := func(cmd *metadatapb.Command) *metadatapb.Command {
				l := uint32(r.IntN(5))
				cmd.FeatureLevel = &l
				return cmd
			}
			h.ok(stamp(cmdTenant("example", "Example.ORG")))
			h.ok(stamp(cmdAccount("Alice@Example.org")))
			names := []string{"INBOX", "A", "B", "C"}
			idOf := func(name string) uint64 {
				if m := h.mailbox(alice, name); m != nil {
					return m.GetId()
				}
				return 0
			}
			ids := map[uint64]bool{}
			ops := map[string]int{}
			completeChecks, partialChecks := 0, 0
			check := func(step int, what string) {
				for id := range ids {
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
			n := 0
			defer func() { t.Logf("ops %v complete checks %d partial checks %d", ops, completeChecks, partialChecks) }()
			for step := 0; step < 500; step++ {
				name := names[r.IntN(len(names))]
				id := idOf(name)
				var cmd *metadatapb.Command
				var what string
				switch op := r.IntN(11); {
				case id == 0:
					cmd, what = cmdCreateMailbox(alice, name), "create"
				case op < 3:
					var thr [][]string
					for range 1 + r.IntN(5) {
						n++
						thr = append(thr, []string{fmt.Sprintf("m%d@x", n), fmt.Sprintf("m%d@x", r.IntN(n+1))})
					}
					cmd, what = cmdAppendThread(alice, id, thr...), "append"
					if r.IntN(4) == 0 {
						cmd, what = cmdAppend(alice, id, fmt.Sprintf("b%d", step)), "append-nokeys"
					}
				case op == 3:
					a := uint32(1 + r.IntN(40))
					cmd, what = cmdStore(alice, id, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(a, a+uint32(r.IntN(10)))}, []string{`\Seen`, `\Flagged`, "kw"}[r.IntN(3)]), "store"
				case op == 4:
					a := uint32(1 + r.IntN(40))
					cmd, what = cmdExpunge(alice, id, uidRange(a, a+uint32(r.IntN(5)))), "expunge"
				case op == 5:
					dst := idOf(names[r.IntN(len(names))])
					if dst == 0 || dst == id {
						continue
					}
					a := uint32(1 + r.IntN(40))
					cmd, what = cmdCopy(alice, id, dst, r.IntN(2) == 0, uidRange(a, a+uint32(r.IntN(8)))), "copy/move"
				case op == 6 && name != "INBOX" && r.IntN(2) == 0:
					cmd, what = cmdDeleteMailbox(alice, name), "delete"
				case op == 6 || op == 7:
					to := names[1+r.IntN(3)]
					if idOf(to) != 0 {
						continue
					}
					cmd, what = cmdRename(alice, name, to), "rename"
				default:
					cmd, what = cmdNumberMessages(alice, id, uint32(1+r.IntN(6))), "fill"
				}
				if res := h.apply(stamp(cmd)); res.GetCode() == 0 {
					ops[what]++
				}
				for _, nm := range names {
					if i := idOf(nm); i != 0 {
						ids[i] = true
					}
				}
				check(step, what)
			}
			for id := range ids {
				for i := 0; i < 1000; i++ {
					res := h.apply(cmdNumberMessages(alice, id, 7))
					if res.GetCode() != 0 || res.GetNumberMessages().GetComplete() {
						break
					}
				}
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
