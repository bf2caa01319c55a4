package metadata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestMixedStampsKeepLayoutsTrue applies random client commands with random stamps
// (none, 0..4) interleaved with backfill commands of small batches to one FSM, and after
// every command checks, for every mailbox: a mailbox dates_complete has exactly the date
// records derived from its column; a mailbox listing_column has exactly the listing
// entries of its records (else exactly those at or below listed_through_uid); the SELECT
// listing from the column equals the one from the records.
func TestMixedStampsKeepLayoutsTrue(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			h := newHarness(t)
			okOps := map[string]int{}
			partial := 0
			stamp := func(cmd *metadatapb.Command) *metadatapb.Command {
				switch k := r.IntN(6); k {
				case 5:
				default:
					l := uint32(k)
					cmd.FeatureLevel = &l
				}
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
			check := func(step int, what string) {
				for id := range ids {
					rec, err := getMailboxRecord(h.f, id)
					if err != nil || rec.GetMailbox() == nil {
						continue
					}
					if rec.GetDatesComplete() {
						got, want := readAllDates(t, h.f, id, (*view).sortDateRecords), readAllDates(t, h.f, id, (*view).sortDatesFromColumn)
						if !bytes.Equal(got, want) {
							t.Fatalf("step %d (%s): mailbox %d dates_complete: %d record bytes, %d derived from the column", step, what, id, len(got), len(want))
						}
					}
					if rec.GetListedThroughUid() > 0 || rec.GetDatedThroughUid() > 0 {
						partial++
					}
					through := rec.GetListedThroughUid()
					if rec.GetListingColumn() {
						through = 0
					}
					if got, want := h.listingEntries(id), h.recordEntries(id, through); (rec.GetListingColumn() || through > 0 || len(got) > 0) && !slices.Equal(got, want) {
						t.Fatalf("step %d (%s): mailbox %d (listing_column %v, listed through %d): column %v, records %v", step, what, id, rec.GetListingColumn(), through, got, want)
					}
					if rec.GetListingColumn() {
						v := h.f.view()
						a, err1 := v.messageList(rec.GetMailbox(), listingQuery{owner: alice, user: alice, dictionary: true, column: true})
						b, err2 := v.messageList(rec.GetMailbox(), listingQuery{owner: alice, user: alice, dictionary: true, column: false})
						v.close()
						if err1 != nil || err2 != nil || !proto.Equal(a, b) {
							t.Fatalf("step %d (%s): mailbox %d: listing from the column differs from the records", step, what, id)
						}
					}
				}
			}
			n := 0
			defer func() { t.Logf("ok ops %v; checks of partially filled mailboxes %d", okOps, partial) }()
			for step := 0; step < 400; step++ {
				name := names[r.IntN(len(names))]
				id := idOf(name)
				var cmd *metadatapb.Command
				var what string
				switch op := r.IntN(10); {
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
				case op == 6 && name != "INBOX" && r.IntN(3) == 0:
					cmd, what = cmdDeleteMailbox(alice, name), "delete"
				case op == 6 && r.IntN(3) == 0:
					to := names[1+r.IntN(3)]
					if idOf(to) != 0 {
						continue
					}
					cmd, what = cmdRename(alice, name, to), "rename"
				default:
					cmd, what = cmdNumberMessages(alice, id, uint32(1+r.IntN(6))), "fill"
				}
				if res := h.apply(stamp(cmd)); res.GetCode() == 0 {
					okOps[what]++
				}
				for _, nm := range names {
					if i := idOf(nm); i != 0 {
						ids[i] = true
					}
				}
				check(step, what)
			}
			// Fill everything, then every mailbox must be complete and true.
			for id := range ids {
				for i := 0; i < 1000; i++ {
					res := h.apply(cmdNumberMessages(alice, id, 7))
					if res.GetCode() != 0 || res.GetNumberMessages().GetComplete() {
						break
					}
				}
			}
			check(-1, "filled")
		})
	}
}

func readAllDates(t testing.TB, f *FSM, mailbox uint64, read func(*view, uint64, uint32, int) ([]byte, uint32, bool, error)) []byte {
	t.Helper()
	v := f.view()
	defer v.close()
	var out []byte
	for after := uint32(0); ; {
		recs, last, more, err := read(v, mailbox, after, sortColumnChunkBytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
		if !more {
			return out
		}
		after = last
	}
}
