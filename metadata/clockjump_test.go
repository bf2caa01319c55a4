package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestRetryAfterClockJump: a leader whose clock is ahead moves log time forward at once (issue
// 13); the commands applied just before are still retried, and their retries find what the
// commands left: a request ID's result, an LMTP dedup key, a delivery mark. Once the retry
// horizon has passed them too, they go.
func TestRetryAfterClockJump(t *testing.T) {
	for _, jump := range []time.Duration{20 * time.Minute, 2 * time.Hour} {
		t.Run(jump.String(), func(t *testing.T) {
			h := withAccount(t)
			inbox := h.mustMailbox(alice, "INBOX").GetId()
			archive := h.mustMailbox(alice, "Archive").GetId()
			caller := h.now // the frontends' clocks, which did not jump

			appendCmd := func() *metadatapb.Command {
				cmd := cmdAppend(alice, inbox, "blob-1")
				cmd.RequestId = "reply-lost"
				return cmd
			}
			first := h.ok(appendCmd())
			// An LMTP delivery with a window shorter than the jump, and delivery marks the
			// caller keeps for less than the jump.
			delivered := h.ok(cmdDedupAppend(alice, archive, "mta-retry", 600, "blob-2")).GetAppend()
			h.ok(cmdSetMarks(alice, mark("vacation", caller, caller.Add(10*time.Minute))))

			h.now = h.now.Add(jump)
			jumped := h.now
			h.ok(cmdCreateMailbox(alice, "After the jump"))

			if retry := h.ok(appendCmd()); !proto.Equal(retry, first) {
				t.Fatalf("retry after the jump: %v, want the first result %v", retry, first)
			}
			dup := h.ok(cmdDedupAppend(alice, archive, "mta-retry", 600, "blob-2")).GetAppend()
			if !dup.GetDuplicate() || dup.GetUids()[0] != delivered.GetUids()[0] {
				t.Fatalf("MTA retry after the jump: %v, want the duplicate of %v", dup, delivered)
			}
			for _, name := range []string{"INBOX", "Archive"} {
				if n := h.mustMailbox(alice, name).GetMessages(); n != 1 {
					t.Fatalf("%s holds %d messages after the retries, want 1", name, n)
				}
			}
			if got := h.checkMarks(alice, caller.Add(time.Minute), "vacation"); !got[0].GetPresent() {
				t.Fatalf("mark set a minute before the jump is gone for its caller: %v", got)
			}
			// A mark set after the jump, in the caller's time, is kept although log time is
			// past its expiry.
			h.ok(cmdSetMarks(alice, mark("duplicate", caller.Add(time.Minute), caller.Add(15*time.Minute))))
			if got := h.checkMarks(alice, caller.Add(2*time.Minute), "duplicate"); !got[0].GetPresent() {
				t.Fatalf("mark set after the jump: %v", got)
			}

			// Once the horizon passes them, the records from before the jump go.
			h.horizonNow()
			h.ok(cmdCreateMailbox(alice, "Later"))
			if n := h.keysWith(prefixRequest); n != h.keysWith(prefixRequestAge) {
				t.Fatalf("%d request IDs, %d by age", n, h.keysWith(prefixRequestAge))
			}
			v := h.f.view()
			err := scan(v.r, []byte{prefixRequestAge}, []byte{prefixRequestAge + 1}, func(k, _ []byte) (bool, error) {
				if ts := int64(binary.BigEndian.Uint64(k[1:9])); ts < jumped.UnixNano() {
					return false, fmt.Errorf("request ID %q from before the jump kept", k[9:])
				}
				return true, nil
			})
			v.close()
			if err != nil {
				t.Fatal(err)
			}
			if n := h.keysWith(prefixDedup) + h.keysWith(prefixDedupAge); n != 0 {
				t.Fatalf("%d dedup keys left", n)
			}
			h.wantMarkTables(alice, 0)
			if again := h.ok(appendCmd()); proto.Equal(again, first) {
				t.Fatalf("pruned request ID still answered %v", again)
			}

			replay := newHarness(t)
			replay.f.ApplyBatch(h.log)
			if !bytes.Equal(replay.digest(), h.digest()) {
				t.Fatal("replayed log has another digest")
			}
		})
	}
}

// TestRetryHorizonLag: the retry horizon is the log time of an entry between retryEntries
// and 2*retryEntries entries back, whatever the gaps between the entries the state machine
// sees; before that many entries (a new store, or one from before the horizon) it is 0.
func TestRetryHorizonLag(t *testing.T) {
	h := newHarness(t)
	tx := h.batchTxn()
	base := h.now.UnixNano()
	logTime := func(index uint64) int64 { return base + int64(index)*int64(time.Second) }
	const step = 997
	for index := uint64(1); index < 6*retryEntries; index += step {
		horizon, err := retryHorizon(tx, index, logTime(index))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case index < 1+retryEntries:
			if horizon != 0 {
				t.Fatalf("index %d: horizon %d, want 0", index, horizon)
			}
		case horizon > logTime(index-retryEntries) || horizon <= logTime(index)-int64(2*retryEntries+step)*int64(time.Second):
			t.Fatalf("index %d: horizon at index %d", index, (horizon-base)/int64(time.Second))
		}
	}
}
