package workload

import (
	"testing"

	"github.com/strata-mail/strata/jepsen/history"
)

// TestSolicitedOutSelect: a SELECT's count is the first EXISTS of its reply; what the server
// sent after it before the tagged OK (an EXPUNGE, a later EXISTS) stays, in order, as
// updates the checker applies to that count (seed 67 of make jepsen).
func TestSolicitedOutSelect(t *testing.T) {
	op := &history.Op{Kind: history.KindSelect, Exists: 157, HasExists: true} // imapclient's last EXISTS
	updates := []history.Update{
		{Kind: history.UpdateExists, Count: 156},
		{Kind: history.UpdateExpunge, Seq: 76},
		{Kind: history.UpdateExists, Count: 157},
	}
	got := solicitedOut(op, updates)
	if op.Exists != 156 || !op.HasExists {
		t.Errorf("Exists = %d (has %v), want the reply's own 156", op.Exists, op.HasExists)
	}
	if len(got) != 2 || got[0].Kind != history.UpdateExpunge || got[1].Kind != history.UpdateExists || got[1].Count != 157 {
		t.Errorf("updates = %+v, want the EXPUNGE then EXISTS 157", got)
	}
	fetch := &history.Op{Kind: history.KindFetch, Messages: []history.Message{{Seq: 1, UID: 5}}}
	got = solicitedOut(fetch, []history.Update{
		{Kind: history.UpdateFetch, Message: &history.Message{Seq: 1, UID: 5}},
		{Kind: history.UpdateFetch, Message: &history.Message{Seq: 2, UID: 6}},
		{Kind: history.UpdateExists, Count: 2},
	})
	if len(got) != 2 || got[0].Message.UID != 6 {
		t.Errorf("FETCH updates = %+v, want the unsolicited FETCH of UID 6 and the EXISTS", got)
	}
}
