package metadata

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestListingRandomOps (review of coldsel21): random APPEND (with REPLACE in the
// same mailbox), STORE (UNCHANGEDSINCE, REPLACE), EXPUNGE, COPY and MOVE (both ways and
// into the same mailbox), DELETE and CREATE of the same name, with a mailbox stripped to
// before the column and filled between the commands. After every command the column of
// every mailbox equals its records (through listed_through_uid while filling).
func TestListingRandomOps(t *testing.T) {
	h := withAccount(t)
	names := []string{"INBOX", "A", "B"}
	h.ok(cmdCreateMailbox(alice, "A"))
	h.ok(cmdCreateMailbox(alice, "B"))
	h.ok(cmdAccount(bob))
	for _, n := range []string{"INBOX", "A", "B"} {
		h.ok(cmdSetACL(alice, alice, n, bob, "lrswitedk"))
	}
	id := func(name string) uint64 { return h.mustMailbox(alice, name).GetId() }
	rng := rand.New(rand.NewSource(7))
	blob := 0
	flagsPool := []string{`\Seen`, `\Flagged`, `\Deleted`, `$K1`, `$K2`, `\Answered`}
	pick := func() []string {
		var out []string
		for _, f := range flagsPool {
			if rng.Intn(3) == 0 {
				out = append(out, f)
			}
		}
		return out
	}
	check := func(step int, what string) {
		t.Helper()
		for _, name := range names {
			mb := id(name)
			rec := h.mustMailboxRecord(mb)
			through := uint32(0)
			if !rec.GetListingColumn() {
				through = rec.GetListedThroughUid()
				if through == 0 {
					if n := listingChunks(t, h, mb); n != 0 {
						t.Fatalf("step %d %s: %s: %d chunks before the fill", step, what, name, n)
					}
					continue
				}
			}
			if got, want := h.listingEntries(mb), h.recordEntries(mb, through); !slices.Equal(got, want) {
				t.Fatalf("step %d %s: %s (through %d): column\n%v\nrecords\n%v", step, what, name, through, got, want)
			}
			if rec.GetListingColumn() {
				h.seenView(bob, alice, mb) // listBothWays: column and records alike for bob
				for _, limit := range []uint32{0, 3} {
					if got, want := pagedListing(t, h, mb, limit, true), pagedListing(t, h, mb, limit, false); !slices.Equal(got, want) {
						t.Fatalf("step %d %s: %s pages of %d differ", step, what, name, limit)
					}
				}
			}
		}
	}
	for step := 0; step < 600; step++ {
		name := names[rng.Intn(len(names))]
		mb := id(name)
		box := h.mustMailbox(alice, name)
		next := box.GetUidNext()
		lo := uint32(1)
		if next > 12 {
			lo = next - 12
		}
		r := uidRange(lo+uint32(rng.Intn(6)), lo+uint32(6+rng.Intn(8)))
		var what string
		switch op := rng.Intn(10); op {
		case 0, 1:
			what = "append"
			cmd := cmdAppendFlagged(mb, blob, 1+rng.Intn(4))
			blob += 10
			for _, m := range cmd.GetAppend().GetMessages() {
				m.Flags = pick()
			}
			if op == 1 && next > 1 {
				what = "append-replace"
				cmd.GetAppend().Messages = cmd.GetAppend().Messages[:1]
				cmd.GetAppend().ReplaceMailboxId = mb
				cmd.GetAppend().ReplaceUid = lo + uint32(rng.Intn(int(next-lo)))
			}
			h.apply(cmd)
		case 2, 3:
			what = "store"
			ops := []metadatapb.FlagOp{metadatapb.FlagOp_FLAG_OP_ADD, metadatapb.FlagOp_FLAG_OP_REMOVE, metadatapb.FlagOp_FLAG_OP_REPLACE}
			since := uint64(0)
			if rng.Intn(2) == 0 {
				since = box.GetHighestModseq() - uint64(rng.Intn(3))
			}
			user := alice
			if rng.Intn(2) == 0 {
				user = bob
			}
			h.apply(cmdStoreAs(user, alice, mb, ops[rng.Intn(3)], since, []*metadatapb.UidRange{r}, pick()...))
		case 4:
			what = "expunge"
			h.apply(cmdExpunge(alice, mb, r))
		case 5, 6:
			what = "copy/move"
			dst := id(names[rng.Intn(len(names))])
			h.apply(cmdCopy(alice, mb, dst, rng.Intn(2) == 0, r))
		case 7:
			if name == "INBOX" {
				continue
			}
			what = "delete+create"
			h.ok(cmdDeleteMailbox(alice, name))
			h.ok(cmdCreateMailbox(alice, name))
			h.ok(cmdSetACL(alice, alice, name, bob, "lrswitedk"))
		case 8:
			what = "strip"
			if rng.Intn(4) == 0 {
				h.stripNumbers(mb, 0)
				h.stripDates(mb)
				h.stripListing(mb)
			}
		case 9:
			what = "fill"
			h.apply(cmdNumberMessages(alice, mb, uint32(1+rng.Intn(5))))
		}
		check(step, fmt.Sprintf("%s on %s", what, name))
	}
	dst := h.restored()
	if string(dst.digest()) != string(h.digest()) {
		t.Fatal("a restored replica's digest differs")
	}
}

// TestListingChunkBounded (review of coldsel21): the flags of a message are not
// bounded in number (each STORE +FLAGS may add maxFlags keywords of maxFlagLen bytes), and
// the listing column keeps them for 128 messages in one value that every STORE, APPEND or
// EXPUNGE in the run rewrites whole. The sort-key column bounds its entries for this
// reason (maxSortColumnKeys: a chunk every write copies, a snapshot field); the listing
// column did not (now an entry over maxListingFlags is read from its record). Here 128
// messages get 512 keywords of 200 bytes each, then a STORE of one flag on one message
// rewrote a chunk of ~13 MB.
func TestListingChunkBounded(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppendFlagged(inbox, 0, 128))
	for round := 0; round < 4; round++ {
		var kw []string
		for i := 0; i < maxFlags; i++ {
			kw = append(kw, fmt.Sprintf("$R%dK%03d%0190d", round, i, 0))
		}
		h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 128)}, kw...))
	}
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(5, 5)}, `\Flagged`))
	v := h.f.view()
	defer v.close()
	chunk, _, err := getRaw(v.r, listingChunkKey(inbox, 0))
	if err != nil {
		t.Fatal(err)
	}
	// What the sort-key column allows a chunk: 128 entries of maxSortColumnKeys.
	if limit := sortChunkUIDs * maxSortColumnKeys; len(chunk) > limit {
		t.Fatalf("a STORE of one flag on one message rewrote a listing chunk of %d bytes (records: one message's is %d bytes); the sort column bounds a chunk to %d", len(chunk), len(chunk)/sortChunkUIDs, limit)
	}
}
