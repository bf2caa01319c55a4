package metadata

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkFSMApplyAppendSingle applies Raft batches of one Append each, what a single
// IMAP client's APPEND costs the FSM: every batch's first command runs the prunes
// (dedup.go pruneDedup), whose scan the batch's memo cannot skip.
//
//	go test ./metadata -run '^$' -bench FSMApplyAppendSingle -benchtime 20000x -benchmem
func BenchmarkFSMApplyAppendSingle(b *testing.B) {
	h := withAccount(b)
	inbox := h.mustMailbox(alice, "INBOX")
	h.step = time.Millisecond
	batch := make([]*raft.Log, 1)
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n++
		batch[0] = h.entry(cmdAppend(alice, inbox.GetId(), fmt.Sprintf("blob-%d", n)))
		for _, r := range h.f.ApplyBatch(batch) {
			if res := r.(*metadatapb.CommandResult); codes.Code(res.GetCode()) != codes.OK {
				b.Fatalf("append: %s", res.GetMessage())
			}
		}
		h.log = h.log[:0]
	}
}
