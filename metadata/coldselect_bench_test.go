package metadata

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkColdSelectListing measures the metadata side of a cold SELECT of a large
// mailbox (issue 14): the whole SELECT listing read as the frontend's view loads it
// (mailview.go load: ListMessages pages of 65,536 messages with the flag-set dictionary),
// each page copied once as the in-process connection hands it over (internal/inproc). The
// mailbox is written straight into the FSM's Pebble store (no Raft, no IMAP): 1,000,000
// messages, or STRATA_COLD_SELECT_MESSAGES, with records as an APPEND stores them (a
// 64-character blob key, dates, size, thread), MODSEQs rising, one message in ten
// \Flagged, one in three \Seen, one in fifty with a keyword, and their listing column
// (listingcolumn.go). Records lists them from the records (how every listing read them
// before the column, and how a mailbox stored before it still is), Column from the column.
//
// It reports cpu-ns/op besides the wall time: the process's CPU time per listing, which a
// loaded machine does not inflate as it does the wall time.
//
//	go test ./metadata -run '^$' -bench BenchmarkColdSelectListing -benchtime 5x -benchmem
func BenchmarkColdSelectListing(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("STRATA_COLD_SELECT_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	h := withAccount(b)
	box := h.mustMailbox(alice, "INBOX")
	fillListingMailbox(b, h.f, box.GetId(), n)
	box.Messages = uint32(n)
	for _, column := range []bool{false, true} {
		name := "Records"
		if column {
			name = "Column"
		}
		b.Run(name, func(b *testing.B) { benchListing(b, h.f, box, n, column) })
	}
}

func benchListing(b *testing.B, f *FSM, box *metadatapb.Mailbox, n int, column bool) {
	const pageSize = 65536
	b.ReportAllocs()
	start := processCPU(b)
	for b.Loop() {
		after, listed := uint32(0), 0
		for more := true; more; {
			v := f.view()
			page, err := v.messageList(box, listingQuery{owner: alice, user: alice, afterUID: after, limit: pageSize, dictionary: true, column: column})
			v.close()
			if err != nil {
				b.Fatal(err)
			}
			page = proto.Clone(page).(*metadatapb.ListMessagesResponse)
			listed += len(page.GetUids())
			if len(page.GetUids()) > 0 {
				after = page.GetUids()[len(page.GetUids())-1]
			}
			more = page.GetMore()
		}
		if listed != n {
			b.Fatalf("listed %d messages, want %d", listed, n)
		}
	}
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// fillListingMailbox writes n message records (UIDs 1 to n) of mailbox and their listing
// column straight into f's store, in batches, and compacts them, as a mailbox that has been
// read for a while is stored.
func fillListingMailbox(b *testing.B, f *FSM, mailbox uint64, n int) {
	b.Helper()
	g := f.acquire()
	defer g.release()
	started := time.Now()
	batch := g.db.NewBatch()
	var chunk []byte
	for uid := uint32(1); uid <= uint32(n); uid++ {
		var flags []string
		if uid%3 == 0 {
			flags = append(flags, `\Seen`)
		}
		if uid%10 == 0 {
			flags = append(flags, `\Flagged`)
		}
		if uid%50 == 0 {
			flags = append(flags, "$Work")
		}
		rec := &metadatapb.MessageIndex{
			Modseq: uint64(uid) + 1, Flags: flags, InternalDateUnix: 1793534400 + int64(uid), Size: 4400 + uint64(uid%4096),
			BlobKey: fmt.Sprintf("%064x", uint64(uid)*0x9e3779b97f4a7c15), SavedUnix: 1793534400 + int64(uid), ThreadId: uint64(uid) * 0x9e3779b97f4a7c15,
		}
		if err := batch.Set(messageKey(mailbox, uid), mustMarshal(rec), nil); err != nil {
			b.Fatal(err)
		}
		chunk = appendColumnRecord(chunk, uid, listingEntry(rec))
		if uid%sortChunkUIDs == sortChunkUIDs-1 || uid == uint32(n) {
			if err := batch.Set(listingChunkKey(mailbox, uid/sortChunkUIDs), chunk, nil); err != nil {
				b.Fatal(err)
			}
			chunk = nil
		}
		if batch.Len() > 16<<20 || uid == uint32(n) {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch = g.db.NewBatch()
		}
	}
	if err := g.db.Flush(); err != nil {
		b.Fatal(err)
	}
	for _, prefix := range []byte{prefixMessage, prefixListingChunk} {
		if err := g.db.Compact(b.Context(), mailboxPrefix(prefix, mailbox), mailboxPrefixEnd(prefix, mailbox), true); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("wrote %d message records in %v", n, time.Since(started).Round(time.Millisecond))
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
