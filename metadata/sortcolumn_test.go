package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdAppendKeys is cmdAppend whose structures carry sort keys (withKeys) or, as those
// stored before the frontend extracted them, none; internal dates and sizes differ per
// message.
func cmdAppendKeys(account string, mailbox uint64, withKeys bool, blobs ...string) *metadatapb.Command {
	cmd := cmdAppend(account, mailbox, blobs...)
	for i, m := range cmd.GetAppend().GetMessages() {
		m.InternalDateUnix += int64(i) * 3600
		m.Size += uint64(i)
		if withKeys {
			m.Structure.SortKeys = &metadatapb.SortKeys{
				SentUnix: proto.Int64(1793530000 - int64(i)), Subject: "subject " + m.GetBlobKey(),
				From: "alice@example.org", DisplayFrom: "alice example", MessageId: m.GetBlobKey() + "@example.org",
				References: []string{"root@example.org", "parent@example.org"}, Reply: i%2 == 1,
			}
		}
	}
	return cmd
}

// wantSortColumn checks the sort-key column against the messages: an entry exactly for
// each message whose structure has sort keys (of at most maxSortColumnKeys bytes), holding its internal date, size and those
// keys, decodable as a SortColumnEntry, numbered unless its mailbox is not yet
// numbers_complete; and the dates and thread-keys projections against the column
// (wantSortDates, wantThreadKeys). It returns the number of entries.
func (h *harness) wantSortColumn() int {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	want := map[string][]byte{}
	err := scan(v.r, []byte{prefixMessage}, []byte{prefixMessage + 1}, func(k, val []byte) (bool, error) {
		idx, err := decodeMessageIndex(k, val)
		if err != nil {
			return false, err
		}
		mailbox, uid := binary.BigEndian.Uint64(k[1:9]), uidFromKey(k)
		structure, _, err := getRaw(v.r, structureKey(mailbox, uid))
		if err != nil {
			return false, err
		}
		if keys, ok := structureSortKeys(structure); ok && len(keys) <= maxSortColumnKeys {
			want[string(sortColumnKey(mailbox, uid))] = sortColumnEntry(idx.GetInternalDateUnix(), idx.GetSize(), keys)
			s := &metadatapb.MessageStructure{}
			if err := proto.Unmarshal(structure, s); err != nil {
				return false, err
			}
			e := &metadatapb.SortColumnEntry{}
			if err := proto.Unmarshal(want[string(sortColumnKey(mailbox, uid))], e); err != nil {
				return false, err
			}
			if e.GetInternalDateUnix() != idx.GetInternalDateUnix() || e.GetSize() != idx.GetSize() || !proto.Equal(e.GetKeys(), s.GetSortKeys()) {
				return false, fmt.Errorf("mailbox %d uid %d: entry %v does not decode to its message's keys %v", mailbox, uid, e, s.GetSortKeys())
			}
		}
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	dict, subjects := h.messageNumbers(v), h.subjectNumbers(v)
	records := map[uint64]*metadatapb.MailboxRecord{}
	record := func(mailbox uint64) *metadatapb.MailboxRecord {
		rec, ok := records[mailbox]
		if !ok {
			rec = &metadatapb.MailboxRecord{}
			if found, err := getProto(v.r, mailboxKey(mailbox), rec); err != nil || !found {
				rec = nil // entries without a mailbox: checked strictly
			}
			records[mailbox] = rec
		}
		return rec
	}
	numbersComplete := func(mailbox uint64) bool {
		rec := record(mailbox)
		return rec == nil || rec.GetNumbersComplete()
	}
	subjectsNumbered := func(mailbox uint64, uid uint32) bool {
		rec := record(mailbox)
		return rec == nil || rec.GetSubjectsComplete() || uid <= rec.GetSubjectsNumberedThroughUid()
	}
	got := 0
	dates := map[uint64]map[uint32][]byte{}
	subjectRecs := map[uint64]map[uint32][]byte{}
	threads := map[uint64]map[uint32][]byte{}
	check := func(mailbox uint64, uid uint32, val []byte) error {
		got++
		if dates[mailbox] == nil {
			dates[mailbox], threads[mailbox] = map[uint32][]byte{}, map[uint32][]byte{}
			subjectRecs[mailbox] = map[uint32][]byte{}
		}
		dates[mailbox][uid], _ = dateRecordOfEntry(nil, uid, val)
		subjectRecs[mailbox][uid] = subjectRecordOfEntry(nil, uid, val)
		threads[mailbox][uid], _ = threadKeysEntry(val)
		k := sortColumnKey(mailbox, uid)
		w, ok := want[string(k)]
		if !ok {
			return fmt.Errorf("column entry %x has no message with sort keys", k)
		}
		if !bytes.HasPrefix(val, w) {
			return fmt.Errorf("column entry %x = %x, want %x and its numbers", k, val, w)
		}
		if err := checkSubjectNumber(val, subjects[mailbox], subjectsNumbered(mailbox, uid)); err != nil {
			return fmt.Errorf("column entry %x: %w", k, err)
		}
		if _, numbered, _ := entryKeys(val); !numbered && !numbersComplete(mailbox) {
			return nil // not numbered yet (numberfill.go)
		}
		return checkEntryNumbers(val, dict[mailbox])
	}
	err = scan(v.r, []byte{prefixSortColumn}, []byte{prefixSortColumn + 1}, func(k, val []byte) (bool, error) {
		return true, check(binary.BigEndian.Uint64(k[1:9]), uidFromKey(k), val)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	err = scan(v.r, []byte{prefixSortChunk}, []byte{prefixSortChunk + 1}, func(k, recs []byte) (bool, error) {
		mailbox, chunk := binary.BigEndian.Uint64(k[1:9]), uidFromKey(k)
		if len(recs) == 0 {
			return false, fmt.Errorf("chunk %x is empty", k)
		}
		prev := uint32(0)
		for len(recs) > 0 {
			uid, rec, rest, ok := nextColumnRecord(recs)
			if !ok || uid/sortChunkUIDs != chunk || uid <= prev {
				return false, fmt.Errorf("chunk %x: record of UID %d (ok %v) after %d", k, uid, ok, prev)
			}
			_, n := binary.Uvarint(rec)
			entry, m := binary.Uvarint(rec[n:])
			if err := check(mailbox, uid, rec[n+m:n+m+int(entry)]); err != nil {
				return false, err
			}
			prev, recs = uid, rest
		}
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if got != len(want) {
		h.t.Fatalf("column has %d entries, messages with sort keys %d", got, len(want))
	}
	h.wantSortDates(v, dates)
	h.wantFixedRecords(v, prefixSubjectRecords, subjectRecordLen, (*metadatapb.MailboxRecord).GetSubjectRecordsComplete, subjectRecs)
	h.wantThreadKeys(v, threads)
	return got
}

// wantThreadKeys checks the thread-keys projection ('t' chunks) against the entries
// derived from the column's (want, by mailbox and UID): every entry of a chunk in UID
// order, of that chunk's run of UIDs, equal to its column entry's projection, which
// decodes as a SortColumnEntry holding no address and, when numbered, no Message-ID
// string; no chunk empty; and for a mailbox with thread_keys_complete, an entry for every
// column entry.
func (h *harness) wantThreadKeys(v *view, want map[uint64]map[uint32][]byte) {
	h.t.Helper()
	got := map[uint64]int{}
	err := scan(v.r, []byte{prefixThreadKeys}, []byte{prefixThreadKeys + 1}, func(k, recs []byte) (bool, error) {
		mailbox, chunk := binary.BigEndian.Uint64(k[1:9]), uidFromKey(k)
		if len(recs) == 0 {
			return false, fmt.Errorf("thread-keys chunk %x is empty", k)
		}
		prev := uint32(0)
		for len(recs) > 0 {
			uid, rec, rest, ok := nextColumnRecord(recs)
			if !ok || uid/sortChunkUIDs != chunk || uid <= prev {
				return false, fmt.Errorf("thread-keys chunk %x: record of UID %d (ok %v) after %d", k, uid, ok, prev)
			}
			_, n := binary.Uvarint(rec)
			size, m := binary.Uvarint(rec[n:])
			entry := rec[n+m : n+m+int(size)]
			if w, ok := want[mailbox][uid]; !ok || !bytes.Equal(w, entry) {
				return false, fmt.Errorf("mailbox %d UID %d: thread keys %x, want %x (column entry %v)", mailbox, uid, entry, w, ok)
			}
			e := &metadatapb.SortColumnEntry{}
			if err := proto.Unmarshal(entry, e); err != nil {
				return false, err
			}
			keys := e.GetKeys()
			if keys.GetFrom() != "" || keys.GetTo() != "" || keys.GetCc() != "" || keys.GetDisplayFrom() != "" || keys.GetDisplayTo() != "" ||
				(e.MessageNumber != nil && (keys.GetMessageId() != "" || len(keys.GetReferences()) > 0)) ||
				(e.SubjectNumber != nil && keys.GetSubject() != "") {
				return false, fmt.Errorf("mailbox %d UID %d: thread keys hold %v", mailbox, uid, e)
			}
			prev, recs = uid, rest
			got[mailbox]++
		}
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	for mailbox, entries := range want {
		rec := &metadatapb.MailboxRecord{}
		if found, err := getProto(v.r, mailboxKey(mailbox), rec); err != nil || !found {
			continue // entries left without a mailbox are checked above
		}
		if rec.GetThreadKeysComplete() && got[mailbox] != len(entries) {
			h.t.Fatalf("mailbox %d is thread_keys_complete with %d entries, %d column entries", mailbox, got[mailbox], len(entries))
		}
	}
}

// wantSortDates checks the dates projection ('F' chunks) against the records derived from
// the column's entries (want, by mailbox and UID): wantFixedRecords.
func (h *harness) wantSortDates(v *view, want map[uint64]map[uint32][]byte) {
	h.t.Helper()
	h.wantFixedRecords(v, prefixSortDates, sortDateRecordLen, (*metadatapb.MailboxRecord).GetDatesComplete, want)
}

// wantFixedRecords checks a projection of fixed-width records (prefix, width: the dates
// or the subject projection) against the records derived from the column's entries
// (want, by mailbox and UID): every record of a chunk in UID order, of that chunk's run
// of UIDs, equal to its column entry's; a mailbox complete in it has a record for every
// entry.
func (h *harness) wantFixedRecords(v *view, prefix byte, width int, complete func(*metadatapb.MailboxRecord) bool, want map[uint64]map[uint32][]byte) {
	h.t.Helper()
	got := map[uint64]int{}
	err := scan(v.r, []byte{prefix}, []byte{prefix + 1}, func(k, recs []byte) (bool, error) {
		mailbox, chunk := binary.BigEndian.Uint64(k[1:9]), uidFromKey(k)
		if len(recs) == 0 || len(recs)%width != 0 {
			return false, fmt.Errorf("chunk %x holds %d bytes", k, len(recs))
		}
		prev := uint32(0)
		for off := 0; off < len(recs); off += width {
			rec := recs[off : off+width]
			uid := dateRecordUID(rec)
			if uid/sortChunkUIDs != chunk || uid <= prev {
				return false, fmt.Errorf("chunk %x: UID %d after %d", k, uid, prev)
			}
			if w, ok := want[mailbox][uid]; !ok || !bytes.Equal(w, rec) {
				return false, fmt.Errorf("%c: mailbox %d UID %d: record %x, want %x (entry %v)", prefix, mailbox, uid, rec, w, ok)
			}
			prev = uid
			got[mailbox]++
		}
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	for mailbox, recs := range want {
		rec := &metadatapb.MailboxRecord{}
		if found, err := getProto(v.r, mailboxKey(mailbox), rec); err != nil || !found {
			continue // records left without a mailbox are checked above
		}
		if complete(rec) && got[mailbox] != len(recs) {
			h.t.Fatalf("%c: mailbox %d is complete with %d records, %d column entries", prefix, mailbox, got[mailbox], len(recs))
		}
	}
}

// messageNumbers returns every mailbox's Message-ID dictionary ('I' keys), checking that
// its numbers are distinct and at most the mailbox's last_message_number.
func (h *harness) messageNumbers(v *view) map[uint64]map[string]uint32 {
	h.t.Helper()
	return h.dictionaries(v, prefixMessageNumber, (*metadatapb.MailboxRecord).GetLastMessageNumber)
}

// subjectNumbers returns every mailbox's subject dictionary ('j' keys), checking it as
// messageNumbers does.
func (h *harness) subjectNumbers(v *view) map[uint64]map[string]uint32 {
	h.t.Helper()
	return h.dictionaries(v, prefixSubjectNumber, (*metadatapb.MailboxRecord).GetLastSubjectNumber)
}

// dictionaries returns every mailbox's dictionary under prefix, checking that its numbers
// are distinct and at most the mailbox's last number given.
func (h *harness) dictionaries(v *view, prefix byte, lastGiven func(*metadatapb.MailboxRecord) uint32) map[uint64]map[string]uint32 {
	h.t.Helper()
	dict := map[uint64]map[string]uint32{}
	seen := map[uint64]map[uint32]string{}
	err := scan(v.r, []byte{prefix}, []byte{prefix + 1}, func(k, val []byte) (bool, error) {
		mailbox, id := binary.BigEndian.Uint64(k[1:9]), string(k[9:])
		if len(val) != 4 {
			return false, fmt.Errorf("dictionary entry %q of mailbox %d: value %x", id, mailbox, val)
		}
		n := binary.BigEndian.Uint32(val)
		if dict[mailbox] == nil {
			dict[mailbox], seen[mailbox] = map[string]uint32{}, map[uint32]string{}
		}
		if other, dup := seen[mailbox][n]; dup || n == 0 || id == "" {
			return false, fmt.Errorf("mailbox %d: number %d of %q (and of %q)", mailbox, n, id, other)
		}
		dict[mailbox][id], seen[mailbox][n] = n, id
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	for mailbox, ids := range dict {
		rec := &metadatapb.MailboxRecord{}
		if found, err := getProto(v.r, mailboxKey(mailbox), rec); err != nil || !found {
			h.t.Fatalf("mailbox %d has a Message-ID dictionary but no record (%v)", mailbox, err)
		}
		for id, n := range ids {
			if n > lastGiven(rec) {
				h.t.Fatalf("mailbox %d: %q has number %d above the last given, %d", mailbox, id, n, lastGiven(rec))
			}
		}
	}
	return dict
}

// checkSubjectNumber checks that a column entry's subject number is its subject's in the
// mailbox's subject dictionary (subjectnumbers.go), and that it has one if numbered (the
// mailbox is complete in them or filled past the entry) and its subject is not too long.
func checkSubjectNumber(entry []byte, dict map[string]uint32, numbered bool) error {
	e := &metadatapb.SortColumnEntry{}
	if err := proto.Unmarshal(entry, e); err != nil {
		return err
	}
	subject := e.GetKeys().GetSubject()
	if e.SubjectNumber == nil {
		if _, in := dict[subject]; numbered && len(subject) <= maxNumberedSubject && (in || uint32(len(dict)) < maxSubjectNumber) {
			return fmt.Errorf("no subject number for %q", subject) // unnumbered only past the bound
		}
		return nil
	}
	want, ok := dict[subject]
	if subject == "" {
		want, ok = 0, true
	}
	if !ok || e.GetSubjectNumber() != want {
		return fmt.Errorf("subject %q has number %d, the dictionary %d (%v)", subject, e.GetSubjectNumber(), want, ok)
	}
	return nil
}

// checkEntryNumbers checks that a column entry's numbers are those of its Message-ID and
// references in the dictionary.
func checkEntryNumbers(entry []byte, dict map[string]uint32) error {
	e := &metadatapb.SortColumnEntry{}
	if err := proto.Unmarshal(entry, e); err != nil {
		return err
	}
	if e.MessageNumber == nil {
		for _, id := range append([]string{e.GetKeys().GetMessageId()}, e.GetKeys().GetReferences()...) {
			if len(id) > maxNumberedID {
				return nil // not numbered (messagenumbers.go)
			}
		}
		return fmt.Errorf("entry %v has no numbers", e)
	}
	number := func(id string) uint32 {
		if id == "" {
			return 0
		}
		n, ok := dict[id]
		if !ok {
			n = ^uint32(0)
		}
		return n
	}
	if got, want := e.GetMessageNumber(), number(e.GetKeys().GetMessageId()); got != want {
		return fmt.Errorf("entry %v: Message-ID number %d, want %d", e, got, want)
	}
	var want []uint32
	for _, r := range e.GetKeys().GetReferences() {
		want = append(want, number(r))
	}
	if !slices.Equal(e.GetReferenceNumbers(), want) {
		return fmt.Errorf("entry %v: reference numbers %v, want %v", e, e.GetReferenceNumbers(), want)
	}
	return nil
}

// TestSortColumnFollowsEveryPath walks every path that adds or removes a message (APPEND
// with and without sort keys, import, COPY, MOVE, EXPUNGE, RENAME of a mailbox and of
// INBOX, DELETE, snapshot restore, account and tenant deletion) and checks the column
// against the messages after each.
func TestSortColumnFollowsEveryPath(t *testing.T) {
	h := withAccount(t)
	inbox, archive := h.mustMailbox(alice, "INBOX"), h.mustMailbox(alice, "Archive")
	step := func(name string, want int) {
		t.Helper()
		if got := h.wantSortColumn(); got != want {
			t.Fatalf("after %s: %d column entries, want %d", name, got, want)
		}
	}
	h.ok(cmdAppendKeys(alice, inbox.GetId(), true, "k1", "k2", "k3"))
	h.ok(cmdAppendKeys(alice, inbox.GetId(), false, "old1")) // stored without sort keys
	step("append", 3)
	imp := cmdImport(alice, archive.GetId(), 77, []uint32{10, 11}, "i1", "i2")
	withKeys := cmdAppendKeys(alice, archive.GetId(), true, "i1", "i2").GetAppend().GetMessages()
	imp.GetImportMessages().Messages = withKeys
	h.ok(imp)
	step("import", 5)
	h.ok(cmdCopy(alice, inbox.GetId(), archive.GetId(), false, uidRange(1, 4)))
	step("copy", 8)
	h.ok(cmdCreateMailbox(alice, "Work"))
	work := h.mustMailbox(alice, "Work")
	h.ok(cmdCopy(alice, archive.GetId(), work.GetId(), true, uidRange(10, 12)))
	step("move", 8)
	h.ok(cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(2, 2), uidRange(4, 4)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox.GetId()))
	step("expunge", 7)
	h.ok(cmdRename(alice, "Work", "Projects"))
	step("rename", 7)
	h.ok(cmdRename(alice, "INBOX", "Old Inbox")) // RFC 9051 6.3.6: INBOX's messages move
	step("rename INBOX", 7)
	if got := len(h.messages(alice, h.mustMailbox(alice, "Old Inbox").GetId()).GetUids()); got != 2 {
		t.Fatalf("renamed INBOX holds %d messages", got)
	}

	// A snapshot carries the column: the restored store has the same entries.
	dst := h.restored()
	if got := dst.wantSortColumn(); got != 7 || !bytes.Equal(dst.digest(), h.digest()) {
		t.Fatalf("restored: %d column entries, digest equal %v", got, bytes.Equal(dst.digest(), h.digest()))
	}

	h.ok(cmdDeleteMailbox(alice, "Projects"))
	step("delete mailbox", 4)
	h.ok(cmdAccount("bob@example.org"))
	bobInbox := h.mustMailbox("bob@example.org", "INBOX")
	h.ok(cmdAppendKeys("bob@example.org", bobInbox.GetId(), true, "b1", "b2"))
	step("append for bob", 6)
	h.ok(cmdDeleteAccount(alice))
	step("delete account", 2)
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: "example", Force: true}}})
	step("delete tenant", 0)
}

// readColumn reads mailbox's column above after as sortColumnRecords does for
// ReadSortColumn, maxBytes a read, and returns its UIDs in order and how many reads it took.
func (h *harness) readColumn(mailbox uint64, after uint32, maxBytes int) ([]uint32, int) {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	var uids []uint32
	reads := 0
	for more := true; more; reads++ {
		recs, last, m, err := v.sortColumnRecords(mailbox, after, maxBytes, after > 0)
		if err != nil {
			h.t.Fatal(err)
		}
		more = m
		chunk := columnEntries(recs)
		if len(chunk.GetUids()) == 0 {
			break
		}
		if last != chunk.Uids[len(chunk.Uids)-1] {
			h.t.Fatalf("last %d, UIDs %v", last, chunk.Uids)
		}
		uids = append(uids, chunk.GetUids()...)
		after = last
	}
	return uids, reads
}

// expect returns first..last without the UIDs of skip.
func expect(first, last uint32, skip ...uint32) []uint32 {
	var uids []uint32
	for uid := first; uid <= last; uid++ {
		if !slices.Contains(skip, uid) {
			uids = append(uids, uid)
		}
	}
	return uids
}

// TestSortColumnChunks: the column of 300 messages is three stored chunks; a read stops
// after about maxBytes and the next goes on after the last UID, so the reads together are
// the column in UID order, from any UID on; an EXPUNGE takes its messages out of their
// chunks.
func TestSortColumnChunks(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	var blobs []string
	for i := range 300 {
		blobs = append(blobs, fmt.Sprintf("m%03d", i))
	}
	h.ok(cmdAppendKeys(alice, inbox.GetId(), true, blobs[:200]...))
	h.ok(cmdAppendKeys(alice, inbox.GetId(), true, blobs[200:]...))
	if n := h.keysWith(prefixSortChunk); n != 3 {
		t.Fatalf("%d chunks stored", n)
	}
	h.wantSortColumn()
	if uids, reads := h.readColumn(inbox.GetId(), 0, 500); !slices.Equal(uids, expect(1, 300)) || reads < 3 {
		t.Fatalf("read %v in %d reads", uids, reads)
	}
	if uids, _ := h.readColumn(inbox.GetId(), 130, 500); !slices.Equal(uids, expect(131, 300)) {
		t.Fatalf("above 130: %v", uids)
	}
	h.ok(cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(5, 5), uidRange(127, 129), uidRange(256, 300)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox.GetId()))
	h.wantSortColumn()
	if uids, _ := h.readColumn(inbox.GetId(), 0, 1<<20); !slices.Equal(uids, expect(1, 255, 5, 127, 128, 129)) {
		t.Fatalf("after the expunge: %v", uids)
	}
	if n := h.keysWith(prefixSortChunk); n != 2 {
		t.Fatalf("%d chunks stored after the expunge of the third's UIDs", n)
	}
}

// TestSortColumnBeforeChunks: entries stored one per message, as before the chunks, are
// read merged with the chunks in UID order (in reads of any size), and removed with their
// message.
func TestSortColumnBeforeChunks(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	var blobs []string
	for i := range 200 {
		blobs = append(blobs, fmt.Sprintf("m%03d", i))
	}
	h.ok(cmdAppendKeys(alice, inbox, true, blobs...))
	// UIDs 1 to 127 (the first chunk) and 150 to 160 as the previous version stored them.
	g := h.f.acquire()
	b := g.db.NewBatch()
	v := h.f.view()
	recs := map[uint32][]byte{}
	err := scan(v.r, mailboxPrefix(prefixSortChunk, inbox), mailboxPrefixEnd(prefixSortChunk, inbox), func(k, val []byte) (bool, error) {
		for len(val) > 0 {
			uid, rec, rest, _ := nextColumnRecord(val)
			recs[uid] = append([]byte(nil), rec...)
			val = rest
		}
		return true, nil
	})
	v.close()
	if err != nil {
		t.Fatal(err)
	}
	var second []byte
	for uid := uint32(128); uid <= 200; uid++ {
		if uid < 150 || uid > 160 {
			second = append(second, recs[uid]...)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.Delete(sortChunkKey(inbox, 0), nil))
	must(b.Set(sortChunkKey(inbox, 1), second, nil))
	for uid := uint32(1); uid <= 160; uid++ {
		if uid < 128 || uid >= 150 {
			_, n := binary.Uvarint(recs[uid])
			entry, m := binary.Uvarint(recs[uid][n:])
			must(b.Set(sortColumnKey(inbox, uid), recs[uid][n+m:n+m+int(entry)], nil))
		}
	}
	must(b.Commit(nil))
	g.carried = nil // written behind the FSM's back: the store as a restart opens it
	g.release()
	h.wantSortColumn()
	for _, maxBytes := range []int{1, 500, 5000, 1 << 20} {
		if uids, _ := h.readColumn(inbox, 0, maxBytes); !slices.Equal(uids, expect(1, 200)) {
			t.Fatalf("read by %d bytes: %v", maxBytes, uids)
		}
		if uids, _ := h.readColumn(inbox, 140, maxBytes); !slices.Equal(uids, expect(141, 200)) {
			t.Fatalf("above 140 by %d bytes: %v", maxBytes, uids)
		}
	}
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1), uidRange(155, 170)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	h.wantSortColumn()
	h.ok(cmdAppendKeys(alice, inbox, true, "n1"))
	if uids, _ := h.readColumn(inbox, 0, 500); !slices.Equal(uids, expect(2, 201, expect(155, 170)...)) {
		t.Fatalf("after the expunge: %v", uids)
	}
}

// TestServiceReadSortColumn reads the column over gRPC: every entry in UID order, decoding
// to the keys appended; only the UIDs above after_uid; a user without r on the mailbox is
// answered as for a missing mailbox (RFC 4314 4).
func TestServiceReadSortColumn(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	inbox := s.mailbox("INBOX")
	msgs := cmdAppendKeys(alice, inbox.GetId(), true, "a", "b", "c").GetAppend().GetMessages()
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Messages: msgs}))
	read := func(user string, after uint32) ([]uint32, []*metadatapb.SortColumnEntry, error) {
		stream, err := s.client.ReadSortColumn(s.ctx(), &metadatapb.ReadSortColumnRequest{User: user, Account: alice, MailboxId: inbox.GetId(), AfterUid: after})
		if err != nil {
			return nil, nil, err
		}
		var uids []uint32
		var entries []*metadatapb.SortColumnEntry
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return uids, entries, nil
			}
			if err != nil {
				return nil, nil, err
			}
			uids = append(uids, chunk.GetUids()...)
			b := chunk.GetEntries()
			for range chunk.GetUids() {
				n, l := binary.Uvarint(b)
				e := &metadatapb.SortColumnEntry{}
				if err := proto.Unmarshal(b[l:l+int(n)], e); err != nil {
					t.Fatal(err)
				}
				entries = append(entries, e)
				b = b[l+int(n):]
			}
			if len(b) != 0 {
				t.Fatalf("%d bytes beyond the entries", len(b))
			}
		}
	}
	uids, entries, err := read(alice, 0)
	if err != nil || len(uids) != 3 {
		t.Fatalf("read = %v, %v", uids, err)
	}
	for i, e := range entries {
		if uids[i] != uint32(i+1) || e.GetInternalDateUnix() != msgs[i].GetInternalDateUnix() || e.GetSize() != msgs[i].GetSize() ||
			!proto.Equal(e.GetKeys(), msgs[i].GetStructure().GetSortKeys()) {
			t.Fatalf("entry %d (UID %d) = %v", i, uids[i], e)
		}
	}
	if uids, _, err := read(alice, 2); err != nil || len(uids) != 1 || uids[0] != 3 {
		t.Fatalf("after UID 2: %v, %v", uids, err)
	}
	must(s.client.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: s.reqID(), Email: "bob@example.org", Password: "correct horse"}))
	_, _, err = read("bob@example.org", 0)
	wantCode(t, err, codes.NotFound)
}

// restored returns a new harness restored from a snapshot of h's state.
func (h *harness) restored() *harness {
	h.t.Helper()
	snap, err := h.f.Snapshot()
	if err != nil {
		h.t.Fatal(err)
	}
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil {
		h.t.Fatal(err)
	}
	snap.Release()
	dst := newHarness(h.t)
	if err := dst.f.Restore(readCloser(sink.Bytes())); err != nil {
		h.t.Fatal(err)
	}
	return dst
}

// setBehind writes key=val into h's store behind the FSM's back (as a previous version or
// a bug could have left it), dropping the carried cache.
func (h *harness) setBehind(key, val []byte) {
	h.t.Helper()
	g := h.f.acquire()
	b := g.db.NewBatch()
	if err := b.Set(key, val, nil); err != nil {
		h.t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		h.t.Fatal(err)
	}
	g.carried = nil
	g.release()
}

// TestMalformedChunkDoesNotBlockCommands: a chunk that does not take apart (derived data)
// neither fails the commands that edit it (EXPUNGE, APPEND, DELETE of the mailbox and of
// the account) nor the column's read: its records up to the bad one are kept and read,
// the frontend reads the other messages' keys from their records. (Review sortcol19 F1.)
func TestMalformedChunkDoesNotBlockCommands(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdCreateMailbox(alice, "RevBox"))
	box := h.mustMailbox(alice, "RevBox").GetId()
	h.ok(cmdAppendKeys(alice, box, true, "x1", "x2", "x3"))
	entry := sortColumnEntry(1, 2, []byte("k"))
	bad := appendColumnRecord(appendColumnRecord(nil, 1, entry), 2, entry)
	h.setBehind(sortChunkKey(box, 0), append(bad, 0xff))
	if got, _ := h.readColumn(box, 0, 1<<20); !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("column read over a malformed chunk: %v, want [1 2]", got)
	}
	h.ok(cmdStore(alice, box, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\Deleted`))
	h.ok(cmdExpunge(alice, box))
	h.ok(cmdAppendKeys(alice, box, true, "x4"))
	if got, _ := h.readColumn(box, 0, 1<<20); !slices.Equal(got, []uint32{2, 4}) {
		t.Fatalf("column after the edits: %v, want [2 4]", got)
	}
	h.setBehind(sortChunkKey(box, 0), []byte{0xff})
	if got, _ := h.readColumn(box, 0, 1<<20); len(got) != 0 {
		t.Fatalf("column read of an undecodable chunk: %v, want none", got)
	}
	h.deleteLeavesNoColumn("RevBox")
}

// deleteLeavesNoColumn deletes alice's mailbox and then her account, which must leave no
// key of the sort column.
func (h *harness) deleteLeavesNoColumn(mailbox string) {
	h.t.Helper()
	h.ok(cmdDeleteMailbox(alice, mailbox))
	h.ok(cmdDeleteAccount(alice))
	if n := h.keysWith(prefixSortChunk) + h.keysWith(prefixSortColumn) + h.keysWith(prefixSortDates) + h.keysWith(prefixThreadKeys); n != 0 {
		h.t.Fatalf("%d sort-column keys left after DELETE of the mailbox and the account", n)
	}
}

// TestOrphanColumnRecordsGoWithDelete: DELETE of a mailbox removes its whole column, also
// records and old per-message entries without a message (a replica of the previous
// version that expunged a message it had from a new replica's snapshot, or any bug).
// (Review sortcol19 F2.)
func TestOrphanColumnRecordsGoWithDelete(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdCreateMailbox(alice, "RevBox"))
	box := h.mustMailbox(alice, "RevBox").GetId()
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppendKeys(alice, box, true, "x1", "x2"))
	h.ok(cmdAppendKeys(alice, inbox, true, "y1"))
	v := h.f.view()
	old, _, err := getRaw(v.r, sortChunkKey(box, 0))
	v.close()
	if err != nil {
		t.Fatal(err)
	}
	withOrphan := appendColumnRecord(append([]byte(nil), old...), 50, sortColumnEntry(1, 2, nil))
	h.setBehind(sortChunkKey(box, 0), withOrphan)
	h.setBehind(sortChunkKey(box, 3), appendColumnRecord(nil, 400, sortColumnEntry(1, 2, nil)))
	h.setBehind(sortColumnKey(box, 77), sortColumnEntry(1, 2, nil))
	h.ok(cmdDeleteMailbox(alice, "RevBox"))
	if n := h.keysWith(prefixSortChunk); n != 1 {
		t.Errorf("%d 'c' keys after DELETE of the mailbox, want INBOX's 1", n)
	}
	if n := h.keysWith(prefixSortColumn); n != 0 {
		t.Errorf("%d 'C' keys left after DELETE of the mailbox", n)
	}
	h.wantSortColumn()
}

func TestEditColumnChunk(t *testing.T) {
	rec := func(uid uint32, tag byte) []byte { return appendColumnRecord(nil, uid, []byte{tag}) }
	cat := func(rs ...[]byte) []byte { return bytes.Join(rs, nil) }
	old := cat(rec(1, 'a'), rec(2, 'a'), rec(3, 'a'))
	cases := []struct {
		old, adds []byte
		removes   []uint32
		want      []byte
	}{
		{old, rec(3, 'b'), nil, cat(rec(1, 'a'), rec(2, 'a'), rec(3, 'b'))},
		{old, cat(rec(2, 'b'), rec(5, 'b')), []uint32{2}, cat(rec(1, 'a'), rec(3, 'a'), rec(5, 'b'))},
		{old, cat(rec(0, 'b'), rec(4, 'b')), []uint32{1, 3}, cat(rec(0, 'b'), rec(2, 'a'), rec(4, 'b'))},
		{old, nil, []uint32{1, 2, 3}, nil},
		// A malformed chunk: its records up to the bad one.
		{cat(rec(1, 'a'), rec(2, 'a'), []byte{0xff}), rec(5, 'b'), []uint32{1}, cat(rec(2, 'a'), rec(5, 'b'))},
		{[]byte{0x05, 0x09}, rec(5, 'b'), nil, rec(5, 'b')},
	}
	for i, c := range cases {
		if got := editColumnChunk(c.old, c.adds, c.removes); !bytes.Equal(got, c.want) {
			t.Errorf("case %d: %x, want %x", i, got, c.want)
		}
	}
}

// TestSortColumnKeysBounded: a message whose sort keys exceed maxSortColumnKeys gets no
// column entry (the frontend reads its keys from its record), so a chunk stays bounded
// whatever a client sends. (Review sortcol19 F3.)
func TestSortColumnKeysBounded(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	cmd := cmdAppendKeys(alice, inbox, true, "big", "small")
	cmd.GetAppend().GetMessages()[0].GetStructure().GetSortKeys().Subject = strings.Repeat("s", maxSortColumnKeys)
	h.ok(cmd)
	if got, _ := h.readColumn(inbox, 0, 1<<20); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("column %v, want only the message with small keys [2]", got)
	}
	h.wantSortColumn()
}
