package imap

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/frontend/imap/sortthread"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// dictMetadata is a metadata service holding one mailbox whose column entries are all
// numbered by the Message-ID dictionary (as every message appended since sortfirst20 is);
// it counts the ReadSortColumn calls.
type dictMetadata struct {
	metadatapb.MetadataClient
	keys        map[uint32]*metadatapb.SortKeys
	numbers     map[string]uint32
	columnReads *atomic.Int32
	afterUIDs   []uint32 // of each ReadSortColumn
}

func (m *dictMetadata) number(id string) uint32 {
	if id == "" {
		return 0
	}
	if _, ok := m.numbers[id]; !ok {
		m.numbers[id] = uint32(len(m.numbers) + 1)
	}
	return m.numbers[id]
}

// add appends a message with uid (numbered at "append", as the FSM does).
func (m *dictMetadata) add(uid uint32, id string, refs ...string) {
	m.keys[uid] = &metadatapb.SortKeys{Subject: "s", MessageId: id, References: refs}
	m.number(id)
	for _, r := range refs {
		m.number(r)
	}
}

func (m *dictMetadata) ReadSortColumn(_ context.Context, req *metadatapb.ReadSortColumnRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[metadatapb.SortColumnChunk], error) {
	m.columnReads.Add(1)
	m.afterUIDs = append(m.afterUIDs, req.GetAfterUid())
	var recs []byte
	for uid := req.GetAfterUid() + 1; ; uid++ {
		k, ok := m.keys[uid]
		if !ok {
			break
		}
		e := &metadatapb.SortColumnEntry{InternalDateUnix: int64(uid), Size: 1, Keys: k, MessageNumber: proto.Uint32(m.number(k.GetMessageId()))}
		for _, r := range k.GetReferences() {
			e.ReferenceNumbers = append(e.ReferenceNumbers, m.number(r))
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		if err != nil {
			return nil, err
		}
		recs = protowire.AppendBytes(protowire.AppendVarint(recs, uint64(uid)), b)
	}
	var chunks []*metadatapb.SortColumnChunk
	if len(recs) > 0 {
		chunks = append(chunks, &metadatapb.SortColumnChunk{Records: recs})
	}
	return &sliceStream[metadatapb.SortColumnChunk]{items: chunks}, nil
}

func (m *dictMetadata) FetchMessages(_ context.Context, req *metadatapb.FetchMessagesRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[metadatapb.MessageRecord], error) {
	var recs []*metadatapb.MessageRecord
	for _, r := range req.GetUids() {
		for uid := r.GetFirst(); uid <= r.GetLast(); uid++ {
			if k, ok := m.keys[uid]; ok {
				recs = append(recs, &metadatapb.MessageRecord{Uid: uid, InternalDateUnix: int64(uid), Size: 1,
					Structure: &metadatapb.MessageStructure{SortKeys: k}})
			}
		}
	}
	return &sliceStream[metadatapb.MessageRecord]{items: recs}, nil
}

// TestSortNumbersNewMessageKeepsNumbers (review sortfirst20, finding 1): a mailbox whose
// column is wholly numbered is held with numbers; one message appended after the first
// THREAD is read from its record (fewer than columnMinMissing are missing), and that entry
// has no numbers, so put empties the box (restartWithStrings) and the command reads the
// whole column again into a command cache, and the next command reads it once more. Every
// mailbox receiving mail pays two full column reads per SORT or THREAD after an append,
// where before the branch it read one record.
func TestSortNumbersNewMessageKeepsNumbers(t *testing.T) {
	const n = 600 // above fetchBatch: the first command reads the column
	reads := &atomic.Int32{}
	md := &dictMetadata{keys: map[uint32]*metadatapb.SortKeys{}, numbers: map[string]uint32{}, columnReads: reads}
	for uid := uint32(1); uid <= n; uid++ {
		md.add(uid, fmt.Sprintf("%d@x", uid), fmt.Sprintf("%d@x", uid/2))
	}
	srv := NewServer(Config{Metadata: md, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	owner := "demo@example.com"
	c := &conn{srv: srv, ctx: t.Context(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), bw: newConnWriter(io.Discard),
		account: &metadatapb.Account{Email: owner},
		sel:     &selected{owner: owner, mailboxID: 9, name: "INBOX", uidValidity: 1}}
	uids := func(upTo uint32) []uint32 {
		var out []uint32
		for u := uint32(1); u <= upTo; u++ {
			out = append(out, u)
		}
		return out
	}
	thread := func(upTo uint32) string {
		t.Helper()
		c.sel.msgs = msgListOf(uids(upTo)...)
		keys, rows, err := c.sortKeysOf(uids(upTo), allFields, subjectIDs, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		u := uids(upTo)
		return string(sortthread.AppendThreads(nil, keys.columns(rows, 0).Thread(sortthread.References), func(p int32) uint32 { return u[p] }))
	}
	thread(n)
	if got := reads.Load(); got != 1 {
		t.Fatalf("first THREAD read the column %d times", got)
	}
	md.add(n+1, fmt.Sprintf("%d@x", n+1), "7@x") // an APPEND, numbered by the FSM
	thread(n + 1)
	thread(n + 1)
	// The new message's record has no numbers: its keys come from the column after the
	// UID it was read up to (one read from n), never from the start again.
	if fmt.Sprint(md.afterUIDs) != fmt.Sprint([]uint32{0, n}) {
		t.Errorf("after one APPEND, two THREADs read the column after UIDs %v, want [0 %d]", md.afterUIDs, n)
	}
	keys, _ := srv.sortKeys.snapshot(sortBoxKey{owner: owner, mailboxID: 9, uidValidity: 1}, nil)
	if keys.idMode != threadIDsNumbers {
		t.Errorf("the shared cache holds the mailbox in mode %d, want numbers (%d)", keys.idMode, threadIDsNumbers)
	}
}

// TestSortNumbersThreadCostFollowsDictionary (review sortfirst20, finding 2): in numbers
// mode a snapshot's id bound is the largest dictionary number present plus one, and the
// dictionary numbers every id the mailbox ever had (an expunge keeps them, up to 65 per
// APPEND). THREAD REFERENCES allocates four arrays of that length, so a mailbox of two
// messages in a long-lived INBOX (here 5,000,000 ids given before) costs ~65 MB per THREAD,
// and a user can raise it at will by APPEND and EXPUNGE of messages with 64 fresh
// references; the string path costs what the messages present hold.
func TestSortNumbersThreadCostFollowsDictionary(t *testing.T) {
	const given = 5_000_000
	box := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}
	entries := []sortEntry{
		{numbered: true, messageNumber: given + 1, msg: sortthread.Message{Date: 1, MessageID: "a@x"}},
		{numbered: true, messageNumber: given + 2, refNumbers: []uint32{given + 1}, msg: sortthread.Message{Date: 2, MessageID: "b@x", References: []string{"a@x"}}},
	}
	c := newSortKeyCache(1 << 20)
	c.put(box, []uint32{1, 2}, entries)
	keys, rows := c.snapshot(box, []uint32{1, 2})
	if keys.ids > 3*(len(keys.messageID)+len(keys.refs)+1) {
		t.Errorf("2 messages with 3 ids: THREAD's id bound is %d", keys.ids)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	roots := keys.columns(rows, 0).Thread(sortthread.References)
	runtime.ReadMemStats(&after)
	if got := sortthread.AppendThreads(nil, roots, func(p int32) uint32 { return uint32(p + 1) }); string(got) != "(1 2)" {
		t.Fatalf("THREAD answered %s", got)
	}
	if b := after.TotalAlloc - before.TotalAlloc; b > 1<<20 {
		t.Errorf("THREAD REFERENCES of 2 messages allocated %d bytes", b)
	}
}

// TestSortNumbersRecordPutStopsAnotherSessionsColumnRead (review sortfirst20, finding 1, with
// two sessions): session A reads a numbered column in chunks; between two chunks session B
// puts the record of a new message (no numbers), which empties the box; A's next chunk gets
// errColumnEvicted, fillFromColumn answers nil, and A reads every message it lacks from the
// records (FetchMessages, fetchBatch at a time: a million-message mailbox in ~4,000 calls).
func TestSortNumbersRecordPutStopsAnotherSessionsColumnRead(t *testing.T) {
	box := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}
	numbered := func(uid uint32) sortEntry {
		return sortEntry{numbered: true, messageNumber: uid, msg: sortthread.Message{Date: int64(uid), MessageID: fmt.Sprint(uid)}}
	}
	chunk := func(from, to uint32) func(add func(uint32, *sortEntry) error) error {
		return func(add func(uint32, *sortEntry) error) error {
			for u := from; u <= to; u++ {
				e := numbered(u)
				if err := add(u, &e); err != nil {
					return err
				}
			}
			return nil
		}
	}
	c := newSortKeyCache(1 << 20)
	filling, err := c.appendColumn(box, nil, 1000, 2001, chunk(1, 1000)) // session A, first chunk
	if err != nil {
		t.Fatal(err)
	}
	// Session B: one new message, fewer than columnMinMissing missing: from its record.
	rec := sortEntryOf(2001, 1, &metadatapb.SortKeys{MessageId: "2001", References: []string{"7"}})
	c.put(box, []uint32{2001}, []sortEntry{rec})
	if _, err := c.appendColumn(box, filling, 2000, 2001, chunk(1001, 2000)); err != nil {
		t.Errorf("session A's column read stopped by session B's record: %v", err)
	}
}

// TestThreadBySparseNumbersMatchesStrings: numbers far above the ids a mailbox holds (a
// long history, the dictionary keeps every id it had) are made dense for THREAD
// (denseNumbers), and the answers are those over the strings; for a view of a few rows too.
func TestThreadBySparseNumbersMatchesStrings(t *testing.T) {
	box := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}
	entries := threadEntries(2000, 2)
	sparse := func(n uint32) uint32 {
		if n == 0 {
			return 0
		}
		return 3_000_000 + 977*n
	}
	for k := range entries {
		entries[k].messageNumber = sparse(entries[k].messageNumber)
		entries[k].refNumbers = slices.Clone(entries[k].refNumbers)
		for r := range entries[k].refNumbers {
			entries[k].refNumbers[r] = sparse(entries[k].refNumbers[r])
		}
	}
	uids := make([]uint32, len(entries))
	for k := range uids {
		uids[k] = uint32(k + 1)
	}
	byNumbers, byStrings := newCommandSortCache(fieldThread, false), newCommandSortCache(fieldThread, true)
	byNumbers.put(box, uids, entries)
	byStrings.put(box, uids, entries)
	if keys, _ := byNumbers.snapshot(box, uids); keys.idMode != threadIDsNumbers || keys.ids > len(keys.messageID)+len(keys.refs)+1 {
		t.Fatalf("mode %d, THREAD's id bound %d for %d rows", keys.idMode, keys.ids, len(keys.messageID))
	}
	for _, view := range [][]uint32{uids, uids[100:140]} {
		for _, alg := range []sortthread.Algorithm{sortthread.References, sortthread.Refs, sortthread.OrderedSubject} {
			if n, s := threadAnswer(byNumbers, box, view, alg), threadAnswer(byStrings, box, view, alg); n != s {
				t.Fatalf("algorithm %d over %d messages: by numbers %.200s, by strings %.200s", alg, len(view), n, s)
			}
		}
	}
}
