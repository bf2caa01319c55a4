package metadata

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkFSMApplyAppendBatch applies Raft batches of 64 Append commands of one
// message each (with a two-part MessageStructure) to the FSM directly. On the
// shared 2-core development machine (November 2026), `go test -run '^$' -bench
// FSMApply -benchtime 3s -benchmem ./metadata` gave 4.7 to 8.2 ms per batch, 7800 to
// 13700 appends/s, ~780 KB and ~9500 allocs per batch (noisy: other builds ran).
//
// December 2026 (issue 14), same machine at load average 20 to 27, before and after the
// txn read cache, structures taken off the entry and the smaller cuts (run alternately,
// -benchtime 2s, 3 runs each): 15.6k to 16.0k allocs and 1.24 MB per batch before, 8.0k
// to 8.2k and 0.77 to 0.82 MB after (of which ~1.9k are this harness building the
// entries); 13.5 to 26.0 ms per batch before, 15.8 to 17.8 ms after (wall time is noise
// here). Allocations in ApplyBatch alone per appended message, from
// `-benchtime 20x -memprofile m.out -memprofilerate 1` and `go tool pprof
// -sample_index=alloc_objects -top` (ApplyBatch's cum / 1344 messages): 169 before, 83
// after. Branch append14 (the mailbox and quota records decoded once per batch, keys and
// values in a txn arena, the prunes' scans skipped when an earlier command of the batch
// showed them empty; docs/benchmarks.md "FSM apply cost per Append"): 87.7 -> 37.4 per
// message by the same measure over 1280 messages, 8.1k -> 4.6k allocs per batch, and
// ApplyBatch's CPU in a profile of 300 batches 54-61 -> 31-39 µs per message.
func BenchmarkFSMApplyAppendBatch(b *testing.B) {
	benchApplyAppends(b, false, 1)
}

// BenchmarkFSMApplyAppendSortKeys is BenchmarkFSMApplyAppendBatch with messages that
// carry sort keys, so that each Append also edits the sort-key column (sortcolumn.go:
// one message's APPEND edits the last chunk, which the batch writes once,
// columnbatch.go).
//
//	go test ./metadata -run '^$' -bench FSMApplyAppendSortKeys -benchtime 20000x -benchmem
func BenchmarkFSMApplyAppendSortKeys(b *testing.B) {
	benchApplyAppends(b, true, 1)
}

// BenchmarkFSMApplyAppendSpread is BenchmarkFSMApplyAppendSortKeys with the Appends of a
// batch spread over the INBOXes of 16 accounts in turn, as compare-append's 64 clients
// append (bench/loadgen.go: client i is user i % 16): 4 Appends a batch into each INBOX.
//
//	go test ./metadata -run '^$' -bench FSMApplyAppendSpread -benchtime 300x -benchmem
func BenchmarkFSMApplyAppendSpread(b *testing.B) {
	benchApplyAppends(b, true, 16)
}

// benchApplyAppends applies batches of 64 Appends of one message each (with sort keys if
// withKeys) into the INBOXes of accounts accounts, in turn. Beside the time and
// allocations it reports what the store wrote per Append: the batches' bytes in the WAL
// (wal-B/append), the tables its flushes wrote (flush-B/append, the memtables flushed at
// the end) and its compactions wrote (compact-B/append, as far as they ran meanwhile).
func benchApplyAppends(b *testing.B, withKeys bool, accounts int) {
	const perBatch = 64
	h := withAccount(b)
	inboxes := []uint64{h.mustMailbox(alice, "INBOX").GetId()}
	users := []string{alice}
	for i := 1; i < accounts; i++ {
		user := fmt.Sprintf("user%d@example.org", i)
		h.ok(cmdAccount(user))
		inboxes = append(inboxes, h.mustMailbox(user, "INBOX").GetId())
		users = append(users, user)
	}
	h.step = 100 * time.Microsecond // a busy group
	batch := make([]*raft.Log, perBatch)
	n := 0
	db := h.f.gen.db
	before := db.Metrics()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			n++
			batch[i] = h.entry(cmdAppendKeys(users[n%accounts], inboxes[n%accounts], withKeys, fmt.Sprintf("blob-%d", n)))
		}
		for _, r := range h.f.ApplyBatch(batch) {
			if res := r.(*metadatapb.CommandResult); codes.Code(res.GetCode()) != codes.OK {
				b.Fatalf("append: %s", res.GetMessage())
			}
		}
		h.log = h.log[:0]
	}
	b.StopTimer()
	appends := float64(b.N * perBatch)
	b.ReportMetric(appends/b.Elapsed().Seconds(), "appends/s")
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	after := db.Metrics()
	var flushed, compacted uint64
	for i := range after.Levels {
		flushed += after.Levels[i].TableBytesFlushed - before.Levels[i].TableBytesFlushed
		compacted += after.Levels[i].TableBytesCompacted - before.Levels[i].TableBytesCompacted
	}
	b.ReportMetric(float64(after.WAL.BytesIn-before.WAL.BytesIn)/appends, "wal-B/append")
	b.ReportMetric(float64(flushed)/appends, "flush-B/append")
	b.ReportMetric(float64(compacted)/appends, "compact-B/append")
}

// BenchmarkFSMApplyStoreFlags applies Raft batches of one StoreFlags command each, what a
// single IMAP client's STORE costs the FSM: +FLAGS \Flagged on 1 to 5 messages of a
// 200-message INBOX, then -FLAGS on the same ones, as bench-compare's STORE step does
// (bench/loadgen.go), so that every command changes its messages.
//
//	go test ./metadata -run '^$' -bench FSMApplyStoreFlags -benchtime 20000x -benchmem
func BenchmarkFSMApplyStoreFlags(b *testing.B) {
	h := withAccount(b)
	inbox := h.mustMailbox(alice, "INBOX")
	for i := 0; i < 200; i += 50 {
		blobs := make([]string, 50)
		for k := range blobs {
			blobs[k] = fmt.Sprintf("blob-%d", i+k)
		}
		h.ok(cmdAppend(alice, inbox.GetId(), blobs...))
	}
	h.step = 10 * time.Millisecond // one client's pace
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		lo := uint32(1 + (i/2*37)%195)
		op := metadatapb.FlagOp_FLAG_OP_ADD
		if i%2 == 1 {
			op = metadatapb.FlagOp_FLAG_OP_REMOVE
		}
		cmd := cmdStore(alice, inbox.GetId(), op, []*metadatapb.UidRange{{First: lo, Last: lo + uint32(i/2%5)}}, `\Flagged`)
		res := h.f.ApplyBatch([]*raft.Log{h.entry(cmd)})[0].(*metadatapb.CommandResult)
		if codes.Code(res.GetCode()) != codes.OK || len(res.GetStoreFlags().GetUpdated()) == 0 {
			b.Fatalf("store: %v %s", codes.Code(res.GetCode()), res.GetMessage())
		}
		h.log = h.log[:0]
		i++
	}
}

// BenchmarkServiceAppend appends one message per RPC from parallel gRPC clients to
// the service on a single-node Raft group. Same machine, `go test -run '^$' -bench
// ServiceAppend -benchtime 3s -benchmem ./metadata`: 2700 to 3300 appends/s with 64
// clients, 32 KB and 380 allocs per append; the node is mostly idle waiting for the
// Raft log's fsync (raft-boltdb), the FSM takes under a fifth of the CPU.
func BenchmarkServiceAppend(b *testing.B) {
	s := startService(b)
	s.setupAlice()
	inbox := s.mailbox("INBOX")
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := seq.Add(1)
			_, err := s.client.Append(b.Context(), &metadatapb.AppendRequest{
				RequestId: fmt.Sprintf("bench-%d", id),
				Account:   alice,
				MailboxId: inbox.GetId(),
				Messages: []*metadatapb.NewMessage{{
					BlobKey: fmt.Sprintf("blob-%d", id), Size: 4400, InternalDateUnix: 1793534400, Structure: testStructure("bench"),
				}},
			})
			if err != nil {
				b.Errorf("append: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkRightsCheck measures what access control costs a read of a large mailbox:
// alice's mailbox of rightsBenchMessages messages, read by alice (the owner: no ACL to
// evaluate, the shared flags as stored) and by bob, to whom the ACL grants lrs (a tenant
// lookup and an ACL evaluation per call, and his private \Seen, set on every other message,
// merged into each answer; dave, in another domain of the tenant, costs two domain lookups
// more). "access" is the rights check alone (reading and decoding the
// mailbox record, which every read does anyway, and computing the rights); the others
// are whole RPCs over gRPC on loopback: ListMessages (the SELECT view) and FetchMessages of
// every message's record without structure (as FETCH FLAGS or a flag SEARCH reads them).
//
// On the shared 2-core development machine (November 2026, load average 4 to 5 from other
// builds), `go test -run '^$' -bench RightsCheck -benchtime 2s -count 5 -benchmem
// ./metadata`: the check is 1.6 to 3.6 µs for the owner and for bob alike (522 B, 14
// allocs, mostly reading the mailbox record), 4.5 to 6.1 µs for dave (+2 lookups, +8
// allocs). ListMessages of the 10,000 messages: 7.0 to 9.8 ms for alice, 8.0 to 10.1 ms for
// bob (3.9 MB and 40.3k allocs vs 4.5 MB and 55.3k: bob's \Seen merged and decoded by
// the client). Since the listing reads only MODSEQ and flags off each stored record (issue
// 14; 2026-12-05, load average 10 to 14): 3.3 to 4.2 ms and 10.3k allocs for alice (the
// client decoding a FlagSet per message), and with a flag-set dictionary
// (ListMessagesDictionary, what SELECT asks for) 1.8 to 2.4 ms, 0.35 MB and 233 allocs for
// alice, 2.6 to 3.1 ms, 0.7 MB and 275 allocs for bob. FetchMessages of all 10,000 records: 21 to 54 ms either way (wall time is
// noise here; bob's costs 0.5 MB and 15.6k allocs more, and the \Seen merge is ~8% of
// the server's CPU in a profile).
func BenchmarkRightsCheck(b *testing.B) {
	const rightsBenchMessages = 10000
	s := startService(b)
	s.setupTenants()
	box := s.createMailbox("", alice, "Big")
	for first := 0; first < rightsBenchMessages; first += 500 {
		msgs := make([]*metadatapb.NewMessage, 500)
		for i := range msgs {
			msgs[i] = &metadatapb.NewMessage{BlobKey: fmt.Sprintf("big-%d", first+i), Size: 4400, InternalDateUnix: 1793534400}
		}
		must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: box.GetId(), Messages: msgs}))
	}
	s.setACL(alice, alice, "Big", bob, "lrs")
	var odd []*metadatapb.UidRange
	for uid := uint32(1); uid <= rightsBenchMessages; uid += 2 {
		odd = append(odd, uidRange(uid, uid))
	}
	must(s.client.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), User: bob, Account: alice, MailboxId: box.GetId(), Uids: odd, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Seen`}}))
	// dave's address is in another domain of the tenant: two domain lookups per check.
	const dave = "dave@example.net"
	must(s.client.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: s.reqID(), Email: dave}))
	s.setACL(alice, alice, "Big", dave, "lrs")
	b.Run("access/shared-other-domain", func(b *testing.B) {
		v := s.fsm.view()
		defer v.close()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := v.access(dave, alice, box.GetId(), "", rightRead); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, user := range []string{alice, bob} {
		who := "owner"
		if user == bob {
			who = "shared"
		}
		b.Run("access/"+who, func(b *testing.B) {
			v := s.fsm.view()
			defer v.close()
			b.ReportAllocs()
			for b.Loop() {
				_, granted, err := v.access(user, alice, box.GetId(), "", rightRead)
				if err != nil || !granted.has(rightRead) {
					b.Fatalf("access: %v %v", granted, err)
				}
			}
		})
		for _, dictionary := range []bool{false, true} {
			name := "ListMessages/"
			if dictionary {
				name = "ListMessagesDictionary/"
			}
			b.Run(name+who, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					resp, err := s.client.ListMessages(b.Context(), &metadatapb.ListMessagesRequest{User: user, Account: alice, MailboxId: box.GetId(), FlagSetDictionary: dictionary})
					if err != nil || len(resp.GetUids()) != rightsBenchMessages {
						b.Fatalf("list: %d uids, %v", len(resp.GetUids()), err)
					}
				}
			})
		}
		b.Run("FetchMessages/"+who, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				stream, err := s.client.FetchMessages(b.Context(), &metadatapb.FetchMessagesRequest{User: user, Account: alice, MailboxId: box.GetId()})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					if _, err := stream.Recv(); err != nil {
						if errors.Is(err, io.EOF) {
							break
						}
						b.Fatal(err)
					}
					n++
				}
				if n != rightsBenchMessages {
					b.Fatalf("fetched %d records", n)
				}
			}
		})
	}
}

// BenchmarkFSMStoreCompaction measures what the FSM's Pebble store writes for Appends
// spread over 16 accounts, the shape of compare-append (bench/scenario.sh: 16 users,
// 64 clients): batches of 64 one-message Appends with sort keys, round robin over the
// accounts' INBOXes, so that every memtable flush holds keys from all over the key
// space and every L0 compaction rewrites what it overlaps. It reports, per Append,
// the bytes flushed from memtables and the bytes written by compactions (Pebble's
// metrics over the timed loop), and the write amplification of the sstables:
// (flushed + compacted) / flushed. Use enough Appends to fill many memtables:
//
//	go test ./metadata -run '^$' -bench FSMStoreCompaction -benchtime 120000x
//
// December 2026 (branch append20), 120,000 Appends: Pebble's default memtable and L0
// thresholds 9,068 bytes compacted per Append, write amp 22.6; the FSM's options
// (8 MiB memtables, compaction at 16 L0 sublevels) 3,232 and 9.4 (docs/benchmarks.md
// "Pebble compactions of the FSM store"). Branch append25, 600,000 Appends (a store
// past LBaseMaxBytes): 8 MiB memtables 4,690 and 11.2, 16 MiB 2,538 and 6.7.
func BenchmarkFSMStoreCompaction(b *testing.B) {
	const perBatch, accounts = 64, 16
	h := newHarness(b)
	h.ok(cmdTenant("example", "example.org"))
	inboxes := make([]uint64, accounts)
	for i := range inboxes {
		account := fmt.Sprintf("user%d@example.org", i)
		h.ok(cmdAccount(account))
		inboxes[i] = h.mustMailbox(account, "INBOX").GetId()
	}
	h.step = 100 * time.Microsecond
	var batch []*raft.Log
	flush := func() {
		for _, r := range h.f.ApplyBatch(batch) {
			if res := r.(*metadatapb.CommandResult); codes.Code(res.GetCode()) != codes.OK {
				b.Fatalf("append: %s", res.GetMessage())
			}
		}
		batch, h.log = batch[:0], h.log[:0]
	}
	db := h.f.gen.db
	before := db.Metrics()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		n++
		account := n % accounts
		batch = append(batch, h.entry(cmdAppendKeys(fmt.Sprintf("user%d@example.org", account), inboxes[account], true, fmt.Sprintf("blob-%d", n))))
		if len(batch) == perBatch {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	b.StopTimer()
	after := db.Metrics()
	var flushed, compacted uint64
	for i := range after.Levels {
		flushed += after.Levels[i].TableBytesFlushed - before.Levels[i].TableBytesFlushed
		compacted += after.Levels[i].TableBytesCompacted - before.Levels[i].TableBytesCompacted
	}
	b.ReportMetric(float64(flushed)/float64(n), "flushed-B/append")
	b.ReportMetric(float64(compacted)/float64(n), "compacted-B/append")
	b.ReportMetric(float64(after.Compact.Count-before.Compact.Count), "compactions")
	if flushed > 0 {
		b.ReportMetric(float64(flushed+compacted)/float64(flushed), "write-amp")
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkFirstSortReadAfterAppends reads, as the first SORT and THREAD of a mailbox
// do (ReadSortColumn: the column's records, its dates and thread-keys projections), an
// INBOX of 1,000 messages appended one per Raft batch: in the memtable (memtable) or
// flushed (flushed). With the appends written as merge operands (columnbatch.go), each
// chunk in the memtable is up to 128 operands, which every read joins
// (concatmerger.go), and a flush folds them into one; before, one value either way.
//
//	go test ./metadata -run '^$' -bench FirstSortReadAfterAppends -benchtime 200x -benchmem
func BenchmarkFirstSortReadAfterAppends(b *testing.B) {
	for _, flushed := range []bool{false, true} {
		name := "memtable"
		if flushed {
			name = "flushed"
		}
		b.Run(name, func(b *testing.B) {
			h := withAccount(b)
			inbox := h.mustMailbox(alice, "INBOX").GetId()
			for i := range 1000 {
				h.ok(cmdAppendKeys(alice, inbox, true, fmt.Sprintf("blob-%d", i)))
			}
			if flushed {
				if err := h.f.gen.db.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			const all = sortColumnChunkBytes // as ReadSortColumn reads, each time
			var read int
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				v := h.f.view()
				recs, _, _, err := v.sortColumnRecords(inbox, 0, all, false)
				if err != nil {
					b.Fatal(err)
				}
				dates, _, _, err := v.sortDateRecords(inbox, 0, all)
				if err != nil {
					b.Fatal(err)
				}
				threads, _, _, err := v.threadKeysRecords(inbox, 0, all, false)
				if err != nil {
					b.Fatal(err)
				}
				v.close()
				read = len(recs) + len(dates) + len(threads)
			}
			b.ReportMetric(float64(read), "bytes-read")
		})
	}
}
