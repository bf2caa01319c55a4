package imap

import (
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestMissingUIDs: when the metadata service no longer keeps every expunge since the
// client's MODSEQ, VANISHED (EARLIER) reports every UID the client may know that the view
// lacks (RFC 7162 3.2.6), narrowed by the message sequence match data (3.2.5.2).
func TestMissingUIDs(t *testing.T) {
	s := &selected{msgs: msgListOf(2, 3, 7, 10), uidNext: 13}
	for _, tc := range []struct {
		ranges []*metadatapb.UidRange
		from   uint32
		want   string
	}{
		{[]*metadatapb.UidRange{{First: 1, Last: 12}}, 1, "1,4:6,8:9,11:12"},
		{[]*metadatapb.UidRange{{First: 1, Last: 4294967295}}, 1, "1,4:6,8:9,11:12"},
		{[]*metadatapb.UidRange{{First: 1, Last: 12}}, 8, "8:9,11:12"},
		{[]*metadatapb.UidRange{{First: 9, Last: 3}}, 1, "4:6,8:9"},
		{[]*metadatapb.UidRange{{First: 2, Last: 3}, {First: 7, Last: 7}}, 1, ""},
		{[]*metadatapb.UidRange{{First: 20, Last: 30}}, 1, ""},
	} {
		got := ""
		if r := s.missingUIDs(tc.ranges, tc.from); len(r) > 0 {
			got = rangesSet(r).String()
		}
		if got != tc.want {
			t.Errorf("missingUIDs(%v, %d) = %q, want %q", tc.ranges, tc.from, got, tc.want)
		}
	}
	// A message with the highest UID, 2^32-1 (RFC 9051 2.3.1.1), ends the walk: nothing
	// above it is missing, and the UIDs below it are not reported again from 0. The
	// UIDNEXT past it, 2^32, is 0 in a uint32.
	top := &selected{msgs: msgListOf(4294967290, 4294967295), uidNext: 0}
	for _, tc := range []struct {
		first, last uint32
		want        string
	}{
		{4294967288, 4294967295, "4294967288:4294967289,4294967291:4294967294"},
		{4294967295, 4294967295, ""},
		{4294967294, 4294967295, "4294967294"},
	} {
		got := ""
		if r := top.missingUIDs([]*metadatapb.UidRange{{First: tc.first, Last: tc.last}}, 1); len(r) > 0 {
			got = rangesSet(r).String()
		}
		if got != tc.want {
			t.Errorf("missingUIDs(%d:%d) with UID 4294967295 = %q, want %q", tc.first, tc.last, got, tc.want)
		}
	}

	for _, tc := range []struct {
		seqs []uint32
		uids []imap.UID
		want uint32
	}{
		{[]uint32{1, 2}, []imap.UID{2, 3}, 4},               // both still at their numbers: nothing below 4 was expunged
		{[]uint32{1, 2, 3}, []imap.UID{2, 3, 5}, 4},         // 5 is gone: the match stops after 3
		{[]uint32{1, 2, 3}, []imap.UID{1, 2, 3}, 1},         // 1 is gone, so 2 moved: no floor
		{[]uint32{1, 2, 3, 4}, []imap.UID{2, 3, 7, 10}, 11}, // all match
		{[]uint32{2, 3}, []imap.UID{3, 7}, 8},               // a client that starts in the middle
		{[]uint32{1, 2}, []imap.UID{2, 7}, 3},               // 7 is not message 2
		{[]uint32{1, 2, 3, 4, 5}, []imap.UID{2, 3, 7, 10, 11}, 11},
	} {
		q := &imapwire.QResyncParams{SeqMatchSeqs: imap.SeqSetNum(tc.seqs...), SeqMatchUIDs: imap.UIDSetNum(tc.uids...)}
		if got := s.seqMatchFloor(q); got != tc.want {
			t.Errorf("seqMatchFloor(%v / %v) = %d, want %d", tc.seqs, tc.uids, got, tc.want)
		}
	}
}
