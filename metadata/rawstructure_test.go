package metadata

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// structureSamples are structures of the shapes ingest makes: multipart, nested
// message/rfc822, empty repeated strings, large offsets.
func structureSamples() []*metadatapb.MessageStructure {
	nested := testStructure("nested")
	nested.Body.Parts = append(nested.Body.Parts, &metadatapb.BodyPart{
		Type: "message", Subtype: "rfc822", Envelope: &metadatapb.Envelope{Subject: "inner"},
		Message:  &metadatapb.BodyPart{Type: "text", Subtype: "plain", Size: 1 << 40, Language: []string{"", "en"}},
		Language: []string{""}, DispositionParams: []*metadatapb.Param{{}},
	})
	return []*metadatapb.MessageStructure{
		testStructure("a"),
		{},
		{Preview: "only a preview"},
		{Body: &metadatapb.BodyPart{}},
		nested,
	}
}

// TestTakeStructures: the structures taken off an Append entry are the bytes mustMarshal
// makes of the decoded structures, and the rest decodes to the command without them.
func TestTakeStructures(t *testing.T) {
	req := &metadatapb.AppendRequest{RequestId: "r", Account: alice, MailboxId: 3, BlobEpoch: 4, User: alice, DedupKey: []byte("k")}
	for i, s := range structureSamples() {
		req.Messages = append(req.Messages, &metadatapb.NewMessage{BlobKey: fmt.Sprintf("blob-%d", i), Size: 10, Flags: []string{`\Seen`}, Structure: s,
			Thread: &metadatapb.ThreadKeys{MessageId: "m@x"}})
	}
	req.Messages = append(req.Messages, &metadatapb.NewMessage{BlobKey: "no-structure"})
	cmd := &metadatapb.Command{RequestId: "r", TimestampUnixNano: 5, Op: &metadatapb.Command_Append{Append: req}}
	entry, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	rest, structures, ok := takeStructures(entry)
	if !ok {
		t.Fatal("takeStructures refused an entry made by proto.Marshal")
	}
	if len(structures) != len(req.Messages) {
		t.Fatalf("%d structures for %d messages", len(structures), len(req.Messages))
	}
	for i, m := range req.Messages {
		var want []byte
		if m.GetStructure() != nil {
			want = mustMarshal(m.GetStructure())
		}
		if !bytes.Equal(structures[i], want) {
			t.Errorf("structure %d: taken %x, marshalled %x", i, structures[i], want)
		}
	}
	var got metadatapb.Command
	if err := proto.Unmarshal(rest, &got); err != nil {
		t.Fatalf("decode the rest: %v", err)
	}
	stripped := proto.Clone(cmd).(*metadatapb.Command)
	for _, m := range stripped.GetAppend().GetMessages() {
		m.Structure = nil
	}
	if !proto.Equal(&got, stripped) {
		t.Errorf("the rest decodes to %v, want %v", &got, stripped)
	}

	other, _ := proto.Marshal(cmdCreateMailbox(alice, "X"))
	if _, _, ok := takeStructures(other); ok {
		t.Error("takeStructures took apart a CreateMailbox entry")
	}
}

// appendEntryWithStructure encodes an Append of one message whose structure field holds
// raw as it is.
func appendEntryWithStructure(raw []byte) []byte {
	msg, _ := proto.Marshal(&metadatapb.NewMessage{BlobKey: "b", Size: 1})
	msg = protowire.AppendTag(msg, newMessageStructField, protowire.BytesType)
	msg = protowire.AppendBytes(msg, raw)
	req, _ := proto.Marshal(&metadatapb.AppendRequest{Account: alice, MailboxId: 1})
	req = protowire.AppendTag(req, appendMessagesField, protowire.BytesType)
	req = protowire.AppendBytes(req, msg)
	cmd, _ := proto.Marshal(&metadatapb.Command{RequestId: "x"})
	cmd = protowire.AppendTag(cmd, commandAppendField, protowire.BytesType)
	return protowire.AppendBytes(cmd, req)
}

// nonCanonicalStructures are encodings that decode to a structure (or fail to decode) but
// are not what marshalling it gives; takeStructures must leave them to the decoder.
func nonCanonicalStructures() map[string][]byte {
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	part := func(fields ...[]byte) []byte { return bytes.Join(fields, nil) }
	varintField := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	sizeField := (&metadatapb.BodyPart{}).ProtoReflect().Descriptor().Fields().ByName("size").Number()
	return map[string][]byte{
		"out of order":    part(field(nil, 4, []byte("preview")), field(nil, 3, []byte("header"))),
		"unknown field":   field(nil, 99, []byte("x")),
		"zero scalar":     field(nil, 2, varintField(sizeField, 0)),
		"long varint":     field(nil, 2, append(protowire.AppendTag(nil, sizeField, protowire.VarintType), 0x81, 0x00)),
		"empty string":    field(nil, 4, nil),
		"bad UTF-8":       field(nil, 4, []byte{0xff, 0xfe}),
		"repeated single": part(field(nil, 4, []byte("a")), field(nil, 4, []byte("b"))),
		"wrong wire type": varintField(4, 1),
		"truncated":       field(nil, 2, []byte{0x0a}),
	}
}

func TestTakeStructuresLeavesOthersToTheDecoder(t *testing.T) {
	for name, raw := range nonCanonicalStructures() {
		if _, _, ok := takeStructures(appendEntryWithStructure(raw)); ok {
			t.Errorf("%s: takeStructures took %x", name, raw)
		}
	}
	canonical := mustMarshal(testStructure("c"))
	if _, structures, ok := takeStructures(appendEntryWithStructure(canonical)); !ok || !bytes.Equal(structures[0], canonical) {
		t.Errorf("canonical structure: ok %v, %x", ok, structures)
	}
	// A second structure field in the message: decoding merges the two.
	msgTwice, _ := proto.Marshal(&metadatapb.NewMessage{BlobKey: "b"})
	for range 2 {
		msgTwice = protowire.AppendBytes(protowire.AppendTag(msgTwice, newMessageStructField, protowire.BytesType), canonical)
	}
	req := protowire.AppendBytes(protowire.AppendTag(nil, appendMessagesField, protowire.BytesType), msgTwice)
	twice := protowire.AppendBytes(protowire.AppendTag(nil, commandAppendField, protowire.BytesType), req)
	if _, _, ok := takeStructures(twice); ok {
		t.Error("takeStructures took a message with two structure fields")
	}
}

// TestStructuresStoredAsBefore applies the same appends to two stores, one with entries
// made by proto.Marshal (their structures are taken as they are) and one whose structures
// carry an explicit empty field first, which decodes to the same structure but is not canonical
// (decoded and marshalled again, as every structure was before): the stores are identical.
func TestStructuresStoredAsBefore(t *testing.T) {
	taken, decoded := withAccount(t), withAccount(t)
	if !bytes.Equal(taken.digest(), decoded.digest()) {
		t.Fatal("the two stores differ before the appends")
	}
	inboxT, inboxD := taken.mustMailbox(alice, "INBOX"), decoded.mustMailbox(alice, "INBOX")
	for i, s := range structureSamples() {
		blob := fmt.Sprintf("blob-%d", i)
		taken.ok(&metadatapb.Command{Op: &metadatapb.Command_Append{Append: &metadatapb.AppendRequest{Account: alice, MailboxId: inboxT.GetId(),
			Messages: []*metadatapb.NewMessage{{BlobKey: blob, Size: 100, Structure: s}}}}})

		// An empty preview written out before the structure's own fields: decoding
		// gives the same structure (a later preview wins), marshalling drops it.
		raw := append(protowire.AppendBytes(protowire.AppendTag(nil, 4, protowire.BytesType), nil), mustMarshal(s)...)
		check := &metadatapb.MessageStructure{}
		if err := proto.Unmarshal(raw, check); err != nil || !proto.Equal(check, s) {
			t.Fatalf("test setup: the re-encoded structure decodes to %v, %v; want %v", check, err, s)
		}
		l := decoded.entry(&metadatapb.Command{Op: &metadatapb.Command_Append{Append: &metadatapb.AppendRequest{}}})
		var stamp metadatapb.Command
		if err := proto.Unmarshal(l.Data, &stamp); err != nil {
			t.Fatal(err)
		}
		msg, _ := proto.Marshal(&metadatapb.NewMessage{BlobKey: blob, Size: 100})
		msg = protowire.AppendBytes(protowire.AppendTag(msg, newMessageStructField, protowire.BytesType), raw)
		req, _ := proto.Marshal(&metadatapb.AppendRequest{Account: alice, MailboxId: inboxD.GetId()})
		req = protowire.AppendBytes(protowire.AppendTag(req, appendMessagesField, protowire.BytesType), msg)
		data, _ := proto.Marshal(&metadatapb.Command{RequestId: stamp.GetRequestId(), TimestampUnixNano: stamp.GetTimestampUnixNano()})
		l.Data = protowire.AppendBytes(protowire.AppendTag(data, commandAppendField, protowire.BytesType), req)
		if _, _, ok := takeStructures(l.Data); ok {
			t.Fatalf("test setup: takeStructures took the non-canonical structure of sample %d", i)
		}
		res := decoded.f.ApplyBatch([]*raft.Log{l})[0].(*metadatapb.CommandResult)
		if res.GetCode() != 0 {
			t.Fatalf("append: %s", res.GetMessage())
		}
	}
	if !bytes.Equal(taken.digest(), decoded.digest()) {
		t.Error("structures taken off the entries are stored differently from decoded ones")
	}
}
