package metadata

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestServiceListVanished: ListVanished answers the UIDs expunged after a MODSEQ (RFC 7162
// 3.2.5.1, 3.2.6) within the ranges asked for, from the journal, including MOVE's expunges,
// and needs the r right.
func TestServiceListVanished(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	inbox, archive := s.mailbox("INBOX"), s.mailbox("Archive")
	app := must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Messages: newMessages(10, "m")}))
	expungeUIDs := func(uids ...uint32) uint64 {
		t.Helper()
		var ranges []*metadatapb.UidRange
		for _, u := range uids {
			ranges = append(ranges, uidRange(u, u))
		}
		must(c.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(),
			Uids: ranges, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Deleted`}}))
		ex := must(c.Expunge(s.ctx(), &metadatapb.ExpungeRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Uids: ranges}))
		return ex.GetModseq()
	}
	first := expungeUIDs(2, 3)
	second := expungeUIDs(7)
	must(c.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), Account: alice, SourceMailboxId: inbox.GetId(),
		DestMailboxId: archive.GetId(), Uids: []*metadatapb.UidRange{uidRange(9, 9)}, Move: true}))

	vanished := func(since uint64, ranges ...*metadatapb.UidRange) []uint32 {
		t.Helper()
		resp := must(c.ListVanished(s.ctx(), &metadatapb.ListVanishedRequest{Account: alice, MailboxId: inbox.GetId(), SinceModseq: since, Uids: ranges}))
		var uids []uint32
		for _, r := range resp.GetVanished() {
			for u := r.GetFirst(); u <= r.GetLast(); u++ {
				uids = append(uids, u)
			}
		}
		return uids
	}
	for _, tc := range []struct {
		since  uint64
		ranges []*metadatapb.UidRange
		want   []uint32
	}{
		{app.GetModseq(), nil, []uint32{2, 3, 7, 9}},
		{first - 1, nil, []uint32{2, 3, 7, 9}},
		{first, nil, []uint32{7, 9}},
		{second, nil, []uint32{9}},
		{app.GetModseq(), []*metadatapb.UidRange{uidRange(3, 8)}, []uint32{3, 7}},
		{app.GetModseq(), []*metadatapb.UidRange{uidRange(1, 1), uidRange(9, 0)}, []uint32{9}},
		{second + 1, nil, nil},
	} {
		if got := vanished(tc.since, tc.ranges...); !slices.Equal(got, tc.want) {
			t.Errorf("ListVanished since %d in %v = %v, want %v", tc.since, tc.ranges, got, tc.want)
		}
	}
	_, err := c.ListVanished(s.ctx(), &metadatapb.ListVanishedRequest{Account: alice, MailboxId: inbox.GetId(), User: "bob@example.org", SinceModseq: 1})
	wantCode(t, err, codes.NotFound)
}
