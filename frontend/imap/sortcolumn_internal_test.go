package imap

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestDecodeColumnEntry: the column's own decoder gives what the decoded SortColumnEntry
// gives through sortEntryOf (the path of records read with FetchMessages), for keys with
// and without a sent date, references, empty strings and unknown fields, and refuses
// truncated entries; the same entries as records (what ReadSortColumn sends when asked)
// decode the same.
func TestDecodeColumnEntry(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string { return []string{"", "a", "hello world", "é", "re: x", "z@x.org"}[rng.IntN(6)] }
	var chunk metadatapb.SortColumnChunk
	var records []byte
	var want []sortEntry
	for i := range 200 {
		keys := &metadatapb.SortKeys{Subject: word(), From: word(), To: word(), Cc: word(), DisplayFrom: word(),
			DisplayTo: word(), MessageId: word(), Reply: rng.IntN(2) == 0}
		if rng.IntN(3) > 0 {
			keys.SentUnix = proto.Int64(rng.Int64N(1<<40) - 1<<39)
		}
		for range rng.IntN(4) {
			keys.References = append(keys.References, fmt.Sprintf("r%d@x", rng.IntN(100)))
		}
		e := &metadatapb.SortColumnEntry{InternalDateUnix: rng.Int64N(1<<33) - 1<<30, Size: rng.Uint64N(1 << 40), Keys: keys}
		entry := sortEntryOf(e.GetInternalDateUnix(), e.GetSize(), keys)
		switch i % 3 {
		case 1: // numbered (metadata/messagenumbers.go)
			e.MessageNumber = proto.Uint32(uint32(i))
			for k := range keys.References {
				e.ReferenceNumbers = append(e.ReferenceNumbers, uint32(1000+k))
			}
			entry.numbered, entry.messageNumber = true, uint32(i)
			if len(e.ReferenceNumbers) > 0 {
				entry.refNumbers = e.ReferenceNumbers
			}
		case 2: // numbers that do not match the references: the strings go
			if i%5 == 0 {
				e.MessageNumber = proto.Uint32(7)
				e.ReferenceNumbers = make([]uint32, len(keys.References)+1)
			}
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 { // a field a later version adds
			b = protowire.AppendTag(b, 99, protowire.BytesType)
			b = protowire.AppendBytes(b, []byte("future"))
		}
		chunk.Uids = append(chunk.Uids, uint32(i+1))
		chunk.Entries = protowire.AppendBytes(chunk.Entries, b)
		records = protowire.AppendVarint(records, uint64(i+1))
		records = protowire.AppendBytes(records, b)
		want = append(want, entry)
	}
	for _, decode := range []func(add func(uint32, *sortEntry) error) error{
		func(add func(uint32, *sortEntry) error) error { return decodeColumnChunk(&chunk, add) },
		func(add func(uint32, *sortEntry) error) error { return decodeColumnRecords(records, false, add) },
	} {
		var uids []uint32
		var got []sortEntry
		err := decode(func(uid uint32, e *sortEntry) error {
			cp := *e
			cp.msg.References = slices.Clone(e.msg.References) // the decoder reuses them
			cp.refNumbers = slices.Clone(e.refNumbers)
			uids, got = append(uids, uid), append(got, cp)
			return nil
		})
		if err != nil || len(uids) != len(want) {
			t.Fatalf("decoded %d entries: %v", len(uids), err)
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) || uids[i] != uint32(i+1) {
				t.Fatalf("entry %d (UID %d): decoded %+v, want %+v", i, uids[i], got[i], want[i])
			}
		}
	}
	if last, ok := chunkLastUID(&metadatapb.SortColumnChunk{Records: records}); !ok || last != 200 {
		t.Errorf("last UID of the records = %d, %v", last, ok)
	}
	for _, cut := range []int{1, 5, len(chunk.Entries) / 2} {
		bad := chunk.Entries[:len(chunk.Entries)-cut]
		if err := decodeColumnChunk(&metadatapb.SortColumnChunk{Uids: chunk.Uids, Entries: bad}, func(uint32, *sortEntry) error { return nil }); err == nil {
			t.Errorf("entries cut by %d decoded", cut)
		}
		if err := decodeColumnRecords(records[:len(records)-cut], false, func(uint32, *sortEntry) error { return nil }); err == nil {
			t.Errorf("records cut by %d decoded", cut)
		}
	}
}
