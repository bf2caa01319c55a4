package metadata

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// stripThreadKeys makes mailbox as a build before the thread-keys projection stored it,
// behind the FSM's back: no 't' chunk, a record without thread_keys_complete.
func (h *harness) stripThreadKeys(mailbox uint64) {
	h.t.Helper()
	h.stripDerived(mailbox, prefixThreadKeys, func(rec *metadatapb.MailboxRecord) {
		rec.ThreadKeysComplete, rec.ThreadKeyedThroughUid = false, 0
	})
}

// readThreadKeys reads mailbox's thread-keys projection above after as ReadSortColumn
// with thread_keys does (complete: from the chunks, else derived from the column),
// maxBytes a read.
func (h *harness) readThreadKeys(mailbox uint64, after uint32, maxBytes int, complete bool) []byte {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	read := (*view).threadKeysFromColumn
	if complete {
		read = (*view).threadKeysRecords
	}
	var out []byte
	full := false
	for {
		recs, last, more, err := read(v, mailbox, after, maxBytes, full)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, recs...)
		if !more {
			return out
		}
		after, full = last, true
	}
}

// TestThreadKeysFillRestoresTheProjection: a mailbox of 400 messages (unnumbered ones with
// an over-long Message-ID, messages without sort keys, expunged and moved ones) has a
// thread-keys projection equal, in reads of any size, to the one derived from its column;
// stripped as a build before the projection stored it, it is read derived from the column
// with the same bytes, and the NumberMessagesCommands that fill it, 37 entries a command
// with an APPEND, an EXPUNGE and a MOVE in the middle, end with thread_keys_complete, the
// store the APPENDs wrote, the same reads after a restart, and a restored replica's digest
// equal to the original's; DELETE leaves no 't' key.
func TestThreadKeysFillRestoresTheProjection(t *testing.T) {
	h := withAccount(t)
	inbox, archive := h.mustMailbox(alice, "INBOX").GetId(), h.mustMailbox(alice, "Archive").GetId()
	var blobs []string
	for i := range 400 {
		blobs = append(blobs, fmt.Sprintf("t%03d", i))
	}
	long := cmdAppendKeys(alice, inbox, true, "long1", "long2")
	for _, m := range long.GetAppend().GetMessages() {
		m.Structure.SortKeys.MessageId = string(bytes.Repeat([]byte("x"), maxNumberedID+1))
	}
	h.ok(cmdAppendDated(alice, inbox, blobs[:250]...))
	h.ok(long)
	h.ok(cmdAppendKeys(alice, inbox, false, "bare1", "bare2"))
	h.ok(cmdAppendDated(alice, inbox, blobs[250:]...))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(3, 3), uidRange(120, 140)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	h.ok(cmdCopy(alice, inbox, archive, true, uidRange(200, 210)))
	h.wantSortColumn()
	want := h.readThreadKeys(inbox, 0, 1<<20, true)
	withStrings := 0
	for recs := want; len(recs) > 0; {
		_, rec, rest, ok := nextColumnRecord(recs)
		if !ok {
			t.Fatal("the projection does not take apart")
		}
		if bytes.Contains(rec, []byte("xxxx")) {
			withStrings++
		}
		recs = rest
	}
	if withStrings != 2 {
		t.Fatalf("%d unnumbered entries kept their Message-ID, want 2", withStrings)
	}
	for _, maxBytes := range []int{1, 100, 5000} {
		if got := h.readThreadKeys(inbox, 0, maxBytes, true); !bytes.Equal(got, want) {
			t.Fatalf("read by %d bytes differs", maxBytes)
		}
		if got := h.readThreadKeys(inbox, 0, maxBytes, false); !bytes.Equal(got, want) {
			t.Fatalf("derived from the column by %d bytes differs", maxBytes)
		}
	}

	h.stripThreadKeys(inbox)
	if n := h.keysWith(prefixThreadKeys); n != 1 { // Archive's
		t.Fatalf("%d 't' keys after the strip", n)
	}
	if got := h.readThreadKeys(inbox, 0, 100, false); !bytes.Equal(got, want) {
		t.Fatal("thread keys derived from the column differ")
	}
	h.fillMailbox(inbox, 37, 40, func(step int, _ *metadatapb.NumberMessagesResult) {
		if step == 5 {
			// An APPEND, an EXPUNGE on both sides of the fill point and a MOVE out while
			// the projection is filled.
			h.ok(cmdAppendDated(alice, inbox, "late1", "late2"))
			h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(10, 11), uidRange(390, 390)}, `\Deleted`))
			h.ok(cmdExpunge(alice, inbox))
			h.ok(cmdCopy(alice, inbox, archive, true, uidRange(300, 305)))
			h.wantSortColumn()
		}
	})
	rec := h.mustMailboxRecord(inbox)
	if !rec.GetThreadKeysComplete() || rec.GetThreadKeyedThroughUid() != 0 {
		t.Fatalf("after the fill: %v", rec)
	}
	h.wantSortColumn()
	filled := h.readThreadKeys(inbox, 0, 1<<20, true)
	if got := h.readThreadKeys(inbox, 0, 100, false); !bytes.Equal(got, filled) {
		t.Fatal("filled thread keys differ from those derived from the column")
	}
	h.reopen()
	if got := h.readThreadKeys(inbox, 0, 1<<20, true); !bytes.Equal(got, filled) {
		t.Fatal("thread keys differ after a restart")
	}
	dst := h.restored()
	if !bytes.Equal(dst.digest(), h.digest()) {
		t.Fatal("a restored replica's digest differs")
	}
	dst.wantSortColumn()

	// Stripped and filled with nothing else in between, the store is the APPENDs'.
	h2 := withAccount(t)
	box := h2.mustMailbox(alice, "INBOX").GetId()
	h2.ok(cmdAppendDated(alice, box, blobs[:300]...))
	want2 := h2.numberState(box)
	h2.stripThreadKeys(box)
	h2.fillMailbox(box, 64, 20, nil)
	if !bytes.Equal(h2.numberState(box), want2) {
		t.Fatal("the filled store differs from the one the appends wrote")
	}

	h.deleteLeavesNoColumn("Archive")
}

// TestThreadKeysRandomOps: random APPEND (messages with and without sort keys, some with
// an id too long to number), EXPUNGE, STORE, COPY and MOVE (both ways and into the same
// mailbox), DELETE and CREATE of the same name, with mailboxes stripped to before the
// projection (or before the numbers) and filled between the commands. After every command
// every 't' entry is its column entry's projection, a complete mailbox has one per column
// entry (wantSortColumn), and reading the projection answers what deriving it from the
// column does; at the end a restored replica's digest is the original's.
func TestThreadKeysRandomOps(t *testing.T) {
	h := withAccount(t)
	names := []string{"INBOX", "A", "B"}
	h.ok(cmdCreateMailbox(alice, "A"))
	h.ok(cmdCreateMailbox(alice, "B"))
	id := func(name string) uint64 { return h.mustMailbox(alice, name).GetId() }
	rng := rand.New(rand.NewSource(22))
	blob := 0
	for step := 0; step < 500; step++ {
		name := names[rng.Intn(len(names))]
		mb := id(name)
		next := h.mustMailbox(alice, name).GetUidNext()
		lo := uint32(1)
		if next > 12 {
			lo = next - 12
		}
		r := uidRange(lo+uint32(rng.Intn(6)), lo+uint32(6+rng.Intn(8)))
		var what string
		switch rng.Intn(10) {
		case 0, 1, 2:
			what = "append"
			var blobs []string
			for range 1 + rng.Intn(5) {
				blobs = append(blobs, fmt.Sprintf("r%05d", blob))
				blob++
			}
			cmd := cmdAppendDated(alice, mb, blobs...)
			if rng.Intn(5) == 0 {
				cmd = cmdAppendKeys(alice, mb, false, blobs...)
			}
			if rng.Intn(6) == 0 {
				m := cmd.GetAppend().GetMessages()[0]
				if m.GetStructure().GetSortKeys() != nil {
					m.Structure.SortKeys.References = append(m.Structure.SortKeys.References, string(bytes.Repeat([]byte("y"), maxNumberedID+1)))
				}
			}
			h.apply(cmd)
		case 3:
			what = "store"
			h.apply(cmdStore(alice, mb, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{r}, `\Seen`))
		case 4:
			what = "expunge"
			h.apply(cmdStore(alice, mb, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{r}, `\Deleted`))
			h.apply(cmdExpunge(alice, mb))
		case 5, 6:
			what = "copy/move"
			h.apply(cmdCopy(alice, mb, id(names[rng.Intn(len(names))]), rng.Intn(2) == 0, r))
		case 7:
			if name == "INBOX" {
				continue
			}
			what = "delete+create"
			h.ok(cmdDeleteMailbox(alice, name))
			h.ok(cmdCreateMailbox(alice, name))
		case 8:
			what = "strip"
			switch rng.Intn(3) {
			case 0:
				h.stripThreadKeys(mb)
			case 1: // a build before the numbers had no projection either
				h.stripNumbers(mb, 0)
				h.stripDates(mb)
				h.stripListing(mb)
				h.stripThreadKeys(mb)
			}
		case 9:
			what = "fill"
			h.apply(cmdNumberMessages(alice, mb, uint32(1+rng.Intn(40))))
		}
		h.wantSortColumn()
		for _, n := range names {
			box := id(n)
			if complete := h.mustMailboxRecord(box).GetThreadKeysComplete(); complete {
				if got, want := h.readThreadKeys(box, 0, 300, true), h.readThreadKeys(box, 0, 300, false); !bytes.Equal(got, want) {
					t.Fatalf("step %d %s on %s: %s's projection reads %d bytes, derived %d", step, what, name, n, len(got), len(want))
				}
			}
		}
	}
	dst := h.restored()
	if !bytes.Equal(dst.digest(), h.digest()) {
		t.Fatal("a restored replica's digest differs")
	}
}
