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

// commandMix is how a mixedStampsRun draws its client commands. Each step picks one of
// mixedStampsNames; a mailbox not there yet is created; else op := r.IntN(ops) picks: 0 to 2
// append (one time in four a message with no thread keys), 3 store, 4 expunge, 5 copy or
// move, 6 on a mailbox other than INBOX a delete one time in deleteOneIn; else ops 6 up to
// 5+renameOps a rename one time in renameOneIn; the rest a fill of a small batch.
type commandMix struct {
	steps       int
	ops         int
	deleteOneIn int
	renameOps   int
	renameOneIn int
	unstamped   bool // one command in seven carries no stamp; else each a level 0 to 5
}

var mixedStampsNames = []string{"INBOX", "A", "B", "C"}

// mixedStampsRun is one seed's run: random client commands of a mix to alice's mailboxes of
// one FSM, each with a random feature-level stamp, interleaved with fills of small batches.
type mixedStampsRun struct {
	h   *harness
	r   *rand.Rand
	mix commandMix
	ids map[uint64]bool // every mailbox made so far, destroyed or not
	ops map[string]int  // commands that succeeded, by kind
}

// newMixedStampsRun makes the tenant and alice's account with stamped commands.
func newMixedStampsRun(t *testing.T, r *rand.Rand, mix commandMix) *mixedStampsRun {
	m := &mixedStampsRun{h: newHarness(t), r: r, mix: mix, ids: map[uint64]bool{}, ops: map[string]int{}}
	m.h.ok(m.stamp(cmdTenant("example", "Example.ORG")))
	m.h.ok(m.stamp(cmdAccount("Alice@Example.org")))
	return m
}

func (m *mixedStampsRun) stamp(cmd *metadatapb.Command) *metadatapb.Command {
	levels := 6
	if m.mix.unstamped {
		levels = 7
	}
	if k := m.r.IntN(levels); k < 6 {
		l := uint32(k)
		cmd.FeatureLevel = &l
	}
	return cmd
}

// oneIn is true one time in n; with n 1 it draws nothing.
func (m *mixedStampsRun) oneIn(n int) bool {
	return n <= 1 || m.r.IntN(n) == 0
}

func (m *mixedStampsRun) idOf(name string) uint64 {
	if mb := m.h.mailbox(alice, name); mb != nil {
		return mb.GetId()
	}
	return 0
}

// run applies mix.steps commands and calls check(step, what) after each.
func (m *mixedStampsRun) run(check func(step int, what string)) {
	r, names := m.r, mixedStampsNames
	n := 0
	for step := 0; step < m.mix.steps; step++ {
		name := names[r.IntN(len(names))]
		id := m.idOf(name)
		var cmd *metadatapb.Command
		var what string
		switch op := r.IntN(m.mix.ops); {
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
			dst := m.idOf(names[r.IntN(len(names))])
			if dst == 0 || dst == id {
				continue
			}
			a := uint32(1 + r.IntN(40))
			cmd, what = cmdCopy(alice, id, dst, r.IntN(2) == 0, uidRange(a, a+uint32(r.IntN(8)))), "copy/move"
		case op == 6 && name != "INBOX" && m.oneIn(m.mix.deleteOneIn):
			cmd, what = cmdDeleteMailbox(alice, name), "delete"
		case op >= 6 && op < 6+m.mix.renameOps && m.oneIn(m.mix.renameOneIn):
			to := names[1+r.IntN(3)]
			if m.idOf(to) != 0 {
				continue
			}
			cmd, what = cmdRename(alice, name, to), "rename"
		default:
			cmd, what = cmdNumberMessages(alice, id, uint32(1+r.IntN(6))), "fill"
		}
		if res := m.h.apply(m.stamp(cmd)); res.GetCode() == 0 {
			m.ops[what]++
		}
		for _, nm := range names {
			if i := m.idOf(nm); i != 0 {
				m.ids[i] = true
			}
		}
		check(step, what)
	}
}

// fillAll fills every mailbox to the end, in batches of 7.
func (m *mixedStampsRun) fillAll() {
	for id := range m.ids {
		for i := 0; i < 1000; i++ {
			res := m.h.apply(cmdNumberMessages(alice, id, 7))
			if res.GetCode() != 0 || res.GetNumberMessages().GetComplete() {
				break
			}
		}
	}
}

// TestMixedStampsKeepLayoutsTrue applies random client commands with random stamps
// (none, 0..4) interleaved with backfill commands of small batches to one FSM, and after
// every command checks, for every mailbox: a mailbox dates_complete has exactly the date
// records derived from its column; a mailbox listing_column has exactly the listing
// entries of its records (else exactly those at or below listed_through_uid); the SELECT
// listing from the column equals the one from the records.
func TestMixedStampsKeepLayoutsTrue(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := newMixedStampsRun(t, rand.New(rand.NewPCG(seed, 99)), commandMix{steps: 400, ops: 10, deleteOneIn: 3, renameOps: 1, renameOneIn: 3, unstamped: true})
			h := m.h
			partial := 0
			check := func(step int, what string) {
				for id := range m.ids {
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
			defer func() { t.Logf("ok ops %v; checks of partially filled mailboxes %d", m.ops, partial) }()
			m.run(check)
			// Fill everything, then every mailbox must be complete and true.
			m.fillAll()
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
