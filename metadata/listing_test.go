package metadata

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// describeListing renders a ListMessages response as "uid:flag,flag@modseq" per message,
// whichever form its flags take, and checks the form: a flag set per message, or a
// dictionary of distinct sets with an index per message.
func describeListing(t *testing.T, resp *metadatapb.ListMessagesResponse) []string {
	t.Helper()
	n := len(resp.GetUids())
	if len(resp.GetModseqs()) != n {
		t.Fatalf("%d uids, %d modseqs", n, len(resp.GetModseqs()))
	}
	flagsOf := func(i int) []string { return resp.GetFlags()[i].GetFlags() }
	if len(resp.GetFlagSets()) > 0 || len(resp.GetFlagSetIndexes()) > 0 {
		if len(resp.GetFlags()) != 0 || len(resp.GetFlagSetIndexes()) != n {
			t.Fatalf("dictionary listing: %d uids, %d flag sets per message, %d indexes", n, len(resp.GetFlags()), len(resp.GetFlagSetIndexes()))
		}
		seen := map[string]bool{}
		for _, set := range resp.GetFlagSets() {
			key := strings.Join(set.GetFlags(), " ")
			if seen[key] {
				t.Fatalf("flag set (%s) twice in the dictionary %v", key, resp.GetFlagSets())
			}
			seen[key] = true
		}
		flagsOf = func(i int) []string {
			k := resp.GetFlagSetIndexes()[i]
			if int(k) >= len(resp.GetFlagSets()) {
				t.Fatalf("flag set index %d of %d sets", k, len(resp.GetFlagSets()))
			}
			return resp.GetFlagSets()[k].GetFlags()
		}
	} else if len(resp.GetFlags()) != n {
		t.Fatalf("%d uids, %d flag sets", n, len(resp.GetFlags()))
	}
	out := make([]string, n)
	for i, uid := range resp.GetUids() {
		out[i] = fmt.Sprintf("%d:%s@%d", uid, strings.Join(flagsOf(i), ","), resp.GetModseqs()[i])
	}
	return out
}

// TestListMessagesDictionary: a mailbox whose messages have several flag sets lists the
// same with a flag-set dictionary as without, whole and in pages, for its owner and for a
// user with a private \Seen; each dictionary holds each set once, so 60 messages with 5
// sets cost 5 entries.
func TestListMessagesDictionary(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	c := s.client
	box := s.createMailbox(alice, alice, "Many")
	s.setACL(alice, alice, "Many", bob, "lrs")
	must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), User: alice, Account: alice, MailboxId: box.GetId(), Messages: newMessages(60, "many")}))
	store := func(user string, first, last uint32, flags ...string) {
		must(c.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), User: user, Account: alice, MailboxId: box.GetId(),
			Uids: []*metadatapb.UidRange{uidRange(first, last)}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: flags}))
	}
	store(alice, 1, 20, `\Seen`)
	store(alice, 11, 30, `\Flagged`, "$Work")
	store(alice, 41, 45, `\Deleted`)
	store(bob, 15, 50, `\Seen`) // bob's own
	for _, user := range []string{alice, bob} {
		whole := must(c.ListMessages(s.ctx(), &metadatapb.ListMessagesRequest{User: user, Account: alice, MailboxId: box.GetId()}))
		want := describeListing(t, whole)
		dict := must(c.ListMessages(s.ctx(), &metadatapb.ListMessagesRequest{User: user, Account: alice, MailboxId: box.GetId(), FlagSetDictionary: true}))
		if got := describeListing(t, dict); !slices.Equal(got, want) {
			t.Fatalf("%s's dictionary listing:\n%v\nwant\n%v", user, got, want)
		}
		if len(dict.GetFlagSets()) != 5 {
			t.Errorf("%s's dictionary has %d sets, want 5: %v", user, len(dict.GetFlagSets()), dict.GetFlagSets())
		}
		var paged []string
		for after, more := uint32(0), true; more; {
			page := must(c.ListMessages(s.ctx(), &metadatapb.ListMessagesRequest{User: user, Account: alice, MailboxId: box.GetId(), AfterUid: after, Limit: 16, FlagSetDictionary: true}))
			paged = append(paged, describeListing(t, page)...)
			after, more = page.GetUids()[len(page.GetUids())-1], page.GetMore()
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("%s's paged dictionary listing:\n%v\nwant\n%v", user, paged, want)
		}
	}
	// Past the last UID, and in an empty mailbox: no messages, no sets.
	for _, req := range []*metadatapb.ListMessagesRequest{
		{User: alice, Account: alice, MailboxId: box.GetId(), AfterUid: 60, Limit: 16, FlagSetDictionary: true},
		{User: alice, Account: alice, MailboxId: s.createMailbox(alice, alice, "Empty").GetId(), FlagSetDictionary: true},
	} {
		resp := must(c.ListMessages(s.ctx(), req))
		if len(resp.GetUids()) != 0 || len(resp.GetFlagSets()) != 0 || resp.GetMore() {
			t.Errorf("listing %v = %v", req, resp)
		}
	}
}

// TestIndexModseqFlags: the listing's reading of a stored MessageIndex agrees with
// proto.Unmarshal on encodings a marshaller may produce (fields in any order, a field
// repeated, unknown fields), and fails on a broken one.
func TestIndexModseqFlags(t *testing.T) {
	field := func(num protowire.Number, typ protowire.Type, value func([]byte) []byte) []byte {
		return value(protowire.AppendTag(nil, num, typ))
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return field(num, protowire.VarintType, func(b []byte) []byte { return protowire.AppendVarint(b, v) })
	}
	str := func(num protowire.Number, v string) []byte {
		return field(num, protowire.BytesType, func(b []byte) []byte { return protowire.AppendString(b, v) })
	}
	marshalled, err := proto.Marshal(&metadatapb.MessageIndex{Modseq: 42, Flags: []string{`\Seen`, "$Work"}, BlobKey: "k", Size: 9, ThreadId: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		enc  []byte
	}{
		{"marshalled", marshalled},
		{"empty", nil},
		{"reordered", slices.Concat(str(5, "blob"), str(2, `\Flagged`), varint(4, 10), varint(1, 7), str(2, "$A"))},
		{"repeated modseq", slices.Concat(varint(1, 3), str(2, "x"), varint(1, 9))},
		{"unknown fields", slices.Concat(varint(99, 1), str(98, "y"), varint(1, 5), field(97, protowire.Fixed32Type, func(b []byte) []byte { return protowire.AppendFixed32(b, 1) }))},
	} {
		want := &metadatapb.MessageIndex{}
		if err := proto.Unmarshal(tc.enc, want); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		modseq, raw, err := indexModseqFlags(tc.enc, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var d flagSetDict
		set, err := d.lookup(raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := d.sets[set].GetFlags(); modseq != want.GetModseq() || !slices.Equal(got, want.GetFlags()) {
			t.Errorf("%s: modseq %d flags %q, want %d %q", tc.name, modseq, got, want.GetModseq(), want.GetFlags())
		}
		if again, _ := d.lookup(raw); again != set || len(d.sets) != 1 {
			t.Errorf("%s: the same flags again are set %d of %d", tc.name, again, len(d.sets))
		}
	}
	for _, bad := range [][]byte{
		{0x08},                 // modseq without its value
		{0x12, 0x05, 'a'},      // a flag longer than what is left
		{0x00},                 // field number 0
		str(2, "\xff\xfe")[:3], // cut inside the value
	} {
		if _, _, err := indexModseqFlags(bad, nil); err == nil {
			t.Errorf("indexModseqFlags(%x) succeeded", bad)
		}
	}
	var d flagSetDict
	if _, raw, err := indexModseqFlags(str(2, "\xff"), nil); err != nil {
		t.Fatal(err)
	} else if _, err := d.lookup(raw); err == nil {
		t.Error("a flag that is not UTF-8 was accepted")
	}
}

// FuzzIndexModseqFlags: on any bytes, the listing's reading of a MessageIndex never panics
// and, where proto.Unmarshal accepts them, agrees with it.
func FuzzIndexModseqFlags(f *testing.F) {
	for _, idx := range []*metadatapb.MessageIndex{
		{Modseq: 1},
		{Modseq: 1 << 40, Flags: []string{`\Seen`, `\Flagged`, "$Label1"}, BlobKey: "abc", InternalDateUnix: -5, SavedUnix: 9, ThreadId: 1},
	} {
		b, err := proto.Marshal(idx)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		modseq, raw, err := indexModseqFlags(b, nil)
		var flags []string
		if err == nil {
			var d flagSetDict
			var set uint32
			if set, err = d.lookup(raw); err == nil {
				flags = d.sets[set].GetFlags()
			}
		}
		want := &metadatapb.MessageIndex{}
		if proto.Unmarshal(b, want) != nil {
			return
		}
		if err != nil {
			t.Fatalf("%x: proto.Unmarshal accepts it, the listing fails: %v", b, err)
		}
		if modseq != want.GetModseq() || !slices.Equal(flags, want.GetFlags()) {
			t.Fatalf("%x: modseq %d flags %q, want %d %q", b, modseq, flags, want.GetModseq(), want.GetFlags())
		}
	})
}

// BenchmarkIndexModseqFlags measures the listing's read of one stored MessageIndex (a
// typical one: two flags, a 64-character blob key, dates, size, thread) and the lookup of
// its flag set, against proto.Unmarshal of the whole record, which the listing did before.
//
//	go test ./metadata -run '^$' -bench BenchmarkIndexModseqFlags -benchmem
func BenchmarkIndexModseqFlags(b *testing.B) {
	enc, err := proto.Marshal(&metadatapb.MessageIndex{
		Modseq: 123456, Flags: []string{`\Seen`, "$Work"}, InternalDateUnix: 1793534400, Size: 4400,
		BlobKey: strings.Repeat("ab", 32), SavedUnix: 1793534401, ThreadId: 1 << 60,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Listing", func(b *testing.B) {
		var d flagSetDict
		var raw []byte
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if _, raw, err = indexModseqFlags(enc, raw[:0]); err != nil {
				b.Fatal(err)
			}
			if _, err := d.lookup(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeMessageIndex(nil, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// listBothWays lists box (q) from its records and, when its record keeps the listing
// column, from the column too, fails t unless both answer the same, and returns the
// listing.
func listBothWays(t testing.TB, v *view, box *metadatapb.Mailbox, q listingQuery) *metadatapb.ListMessagesResponse {
	t.Helper()
	q.column = false
	fromRecords, err := v.messageList(box, q)
	if err != nil {
		t.Fatalf("list messages from records: %v", err)
	}
	rec := &metadatapb.MailboxRecord{}
	if _, err := getProto(v.r, mailboxKey(box.GetId()), rec); err != nil {
		t.Fatal(err)
	}
	if !rec.GetListingColumn() {
		return fromRecords
	}
	q.column = true
	fromColumn, err := v.messageList(box, q)
	if err != nil {
		t.Fatalf("list messages from the listing column: %v", err)
	}
	if !proto.Equal(fromRecords, fromColumn) {
		t.Fatalf("listing column differs from the records:\ncolumn:  %v\nrecords: %v", fromColumn, fromRecords)
	}
	return fromColumn
}
