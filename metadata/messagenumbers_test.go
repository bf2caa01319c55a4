package metadata

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdAppendThread is an Append of one message per ids: ids[k][0] is the Message-ID, the
// rest its references.
func cmdAppendThread(account string, mailbox uint64, ids ...[]string) *metadatapb.Command {
	var blobs []string
	for k := range ids {
		blobs = append(blobs, "t"+string(rune('a'+k)))
	}
	cmd := cmdAppend(account, mailbox, blobs...)
	for k, m := range cmd.GetAppend().GetMessages() {
		m.Structure.SortKeys = &metadatapb.SortKeys{Subject: "s", MessageId: ids[k][0], References: ids[k][1:]}
	}
	return cmd
}

// columnNumbers returns the numbers of mailbox's column entries by UID: the Message-ID's
// first, then the references'; nil for an entry without numbers.
func (h *harness) columnNumbers(mailbox uint64) map[uint32][]uint32 {
	h.t.Helper()
	out := map[uint32][]uint32{}
	for _, recs := range h.chunks(mailbox) {
		for len(recs) > 0 {
			uid, rec, rest, ok := nextColumnRecord(recs)
			if !ok {
				h.t.Fatalf("chunk does not take apart at %x", recs)
			}
			_, n := binary.Uvarint(rec)
			_, m := binary.Uvarint(rec[n:])
			e := &metadatapb.SortColumnEntry{}
			if err := proto.Unmarshal(rec[n+m:], e); err != nil {
				h.t.Fatal(err)
			}
			if e.MessageNumber != nil {
				out[uid] = append([]uint32{e.GetMessageNumber()}, e.GetReferenceNumbers()...)
			} else {
				out[uid] = nil
			}
			recs = rest
		}
	}
	return out
}

// chunks returns the stored chunks of mailbox's column.
func (h *harness) chunks(mailbox uint64) [][]byte {
	v := h.f.view()
	defer v.close()
	var out [][]byte
	err := scan(v.r, mailboxPrefix(prefixSortChunk, mailbox), mailboxPrefixEnd(prefixSortChunk, mailbox), func(_, val []byte) (bool, error) {
		out = append(out, bytes.Clone(val))
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// dictionarySize counts the 'I' keys of mailbox.
func (h *harness) dictionarySize(mailbox uint64) int {
	v := h.f.view()
	defer v.close()
	n := 0
	err := scan(v.r, mailboxPrefix(prefixMessageNumber, mailbox), mailboxPrefixEnd(prefixMessageNumber, mailbox), func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// TestMessageNumbers checks the Message-ID dictionary (messagenumbers.go): equal ids get
// equal numbers in one mailbox, in the order the ids come, "" is 0, an expunge keeps the
// numbers, a COPY numbers in the destination's own dictionary, an id too long leaves the
// entry unnumbered, DELETE removes the dictionary, and a replica that applies the same log
// has the same store.
func TestMessageNumbers(t *testing.T) {
	h := withAccount(t)
	inbox, archive := h.mustMailbox(alice, "INBOX"), h.mustMailbox(alice, "Archive")
	h.ok(cmdAppendThread(alice, inbox.GetId(),
		[]string{"a@x"},
		[]string{"b@x", "a@x", "x@x"},
		[]string{"", "", "b@x"},
		[]string{"a@x", "A@x"}, // octets, not case: "A@x" is another id
	))
	want := map[uint32][]uint32{1: {1}, 2: {2, 1, 3}, 3: {0, 0, 2}, 4: {1, 4}}
	if got := h.columnNumbers(inbox.GetId()); !mapsEqual(got, want) {
		t.Fatalf("numbers %v, want %v", got, want)
	}
	h.ok(cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 2)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox.GetId()))
	long := strings.Repeat("l", maxNumberedID+1)
	h.ok(cmdAppendThread(alice, inbox.GetId(), []string{"x@x", "a@x"}, []string{"c@x", long}, []string{"d@x", "b@x"}))
	want = map[uint32][]uint32{3: {0, 0, 2}, 4: {1, 4}, 5: {3, 1}, 6: nil, 7: {5, 2}}
	if got := h.columnNumbers(inbox.GetId()); !mapsEqual(got, want) {
		t.Fatalf("after expunge: numbers %v, want %v", got, want)
	}
	if n, last := h.dictionarySize(inbox.GetId()), h.mustMailboxRecord(inbox.GetId()).GetLastMessageNumber(); n != 5 || last != 5 {
		t.Fatalf("dictionary of %d ids, last number %d; want 5 and 5", n, last)
	}
	h.ok(cmdCopy(alice, inbox.GetId(), archive.GetId(), false, uidRange(7, 7)))
	if got := h.columnNumbers(archive.GetId()); !mapsEqual(got, map[uint32][]uint32{1: {1, 2}}) {
		t.Fatalf("copy: numbers %v", got)
	}
	h.wantSortColumn()
	dst := h.restored()
	if !bytes.Equal(dst.digest(), h.digest()) {
		t.Fatal("a restored replica's store differs")
	}
	h.ok(cmdDeleteMailbox(alice, "Archive"))
	if n := h.dictionarySize(archive.GetId()); n != 0 {
		t.Fatalf("deleted mailbox keeps %d dictionary entries", n)
	}
}

func mapsEqual(a, b map[uint32][]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !slices.Equal(v, w) || (v == nil) != (w == nil) {
			return false
		}
	}
	return true
}

// TestThreadIDsBounded: keys that do not take apart, or name an id longer than
// maxNumberedID, are not numbered.
func TestThreadIDsBounded(t *testing.T) {
	keys, err := proto.Marshal(&metadatapb.SortKeys{Subject: "s", MessageId: "m", References: []string{"r1", "", "r2"}})
	if err != nil {
		t.Fatal(err)
	}
	id, refs, ok := threadIDs(keys, nil)
	if !ok || string(id) != "m" || len(refs) != 3 || string(refs[0]) != "r1" || len(refs[1]) != 0 || string(refs[2]) != "r2" {
		t.Fatalf("threadIDs = %q, %q, %v", id, refs, ok)
	}
	if _, _, ok := threadIDs(keys[:len(keys)-1], nil); ok {
		t.Fatal("truncated keys taken apart")
	}
	long, _ := proto.Marshal(&metadatapb.SortKeys{References: []string{strings.Repeat("r", maxNumberedID+1)}})
	if _, _, ok := threadIDs(long, nil); ok {
		t.Fatal("an id longer than maxNumberedID numbered")
	}
}

func (h *harness) mustMailboxRecord(mailbox uint64) *metadatapb.MailboxRecord {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	rec := &metadatapb.MailboxRecord{}
	if found, err := getProto(v.r, mailboxKey(mailbox), rec); err != nil || !found {
		h.t.Fatalf("mailbox %d: record found %v, %v", mailbox, found, err)
	}
	return rec
}
