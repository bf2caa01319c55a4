package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
// each message whose structure has sort keys, holding its internal date, size and those
// keys, decodable as a SortColumnEntry. It returns the number of entries.
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
		if keys, ok := structureSortKeys(structure); ok {
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
	got := 0
	err = scan(v.r, []byte{prefixSortColumn}, []byte{prefixSortColumn + 1}, func(k, val []byte) (bool, error) {
		got++
		w, ok := want[string(k)]
		if !ok {
			return false, fmt.Errorf("column entry %x has no message with sort keys", k)
		}
		if !bytes.Equal(w, val) {
			return false, fmt.Errorf("column entry %x = %x, want %x", k, val, w)
		}
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if got != len(want) {
		h.t.Fatalf("column has %d entries, messages with sort keys %d", got, len(want))
	}
	return got
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

// TestSortColumnChunks: a read of the column stops after about maxBytes of entries and the
// next one goes on after the last UID, so the chunks together are the column in UID order.
func TestSortColumnChunks(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	var blobs []string
	for i := range 40 {
		blobs = append(blobs, fmt.Sprintf("m%02d", i))
	}
	h.ok(cmdAppendKeys(alice, inbox.GetId(), true, blobs...))
	h.ok(cmdExpunge(alice, inbox.GetId())) // nothing \Deleted: a later MODSEQ only
	v := h.f.view()
	defer v.close()
	var uids []uint32
	chunks := 0
	for after, more := uint32(0), true; more; chunks++ {
		chunk, m, err := v.sortColumn(inbox.GetId(), after, 500, after > 0)
		if err != nil {
			t.Fatal(err)
		}
		more = m
		if len(chunk.GetUids()) == 0 {
			break
		}
		uids = append(uids, chunk.GetUids()...)
		after = chunk.Uids[len(chunk.Uids)-1]
	}
	if len(uids) != 40 || chunks < 4 {
		t.Fatalf("read %d UIDs in %d chunks", len(uids), chunks)
	}
	for i, uid := range uids {
		if uid != uint32(i+1) {
			t.Fatalf("UID %d at %d", uid, i)
		}
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
