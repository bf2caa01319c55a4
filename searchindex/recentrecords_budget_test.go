package searchindex

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestHandedRecordsWithinBudget (review of idxshare21): the records KeepAppended holds
// were bounded by count only (maxRecentRecords), not by the byte budget the bodies keep
// to. A structure carries the whole top-level header (up to message.MaxHeaderBytes,
// 256 KiB) and up to message.MaxParts parts, so 16384 records could pin GiBs while the
// indexer lags. Here 64 appends of a message with a 200 KiB header (each a structure of
// its own, as IMAP and LMTP hand them) must stay within a hand-off of a 1 MiB budget.
func TestHandedRecordsWithinBudget(t *testing.T) {
	const budget = 1 << 20
	r := NewRecentBodies(budget, 1<<16)
	var hdr strings.Builder
	for hdr.Len() < 200<<10 {
		fmt.Fprintf(&hdr, "Received: from relay%d.example.net by mx.example.com; Sun, 6 Dec 2026 19:00:00 +0000\r\n", hdr.Len())
	}
	for i := range 64 {
		raw := fmt.Appendf(nil, "%sFrom: a@example.com\r\nSubject: s%d\r\n\r\nbody\r\n", hdr.String(), i)
		st, err := message.Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		msgs := []*metadatapb.NewMessage{{BlobKey: fmt.Sprint("k", i), Size: uint64(len(raw)), Structure: st}}
		r.KeepAppended("a@example.com", 7, &metadatapb.AppendResponse{UidValidity: 1, Uids: []uint32{uint32(i + 1)}}, msgs)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	held := 0
	for _, box := range r.records.byMailbox {
		for _, rec := range box {
			held += proto.Size(rec.structure)
		}
	}
	if held > budget {
		t.Errorf("handed records hold %d bytes of structures (%d records) beside a budget of %d bytes", held, r.records.count, budget)
	}
}
