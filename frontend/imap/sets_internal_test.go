package imap

import (
	"testing"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
)

func TestStarBounds(t *testing.T) {
	for _, tc := range []struct{ start, stop, last, lo, hi uint32 }{
		{1, 5, 9, 1, 5},
		{5, 1, 9, 1, 5},
		{0, 3, 9, 3, 9}, // "*:3" (RFC 9051 9)
		{3, 0, 9, 3, 9},
		{0, 0, 9, 9, 9},
		{12, 0, 9, 9, 12}, // past the last number: the caller decides
	} {
		if lo, hi := starBounds(tc.start, tc.stop, tc.last); lo != tc.lo || hi != tc.hi {
			t.Errorf("starBounds(%d, %d, %d) = %d, %d, want %d, %d", tc.start, tc.stop, tc.last, lo, hi, tc.lo, tc.hi)
		}
	}
}

// TestMayMatchPastView: which search criteria can match a message above the view's highest
// UID (5 here), and so wait for the session's own new messages (sync.go).
func TestMayMatchPastView(t *testing.T) {
	const top = 5
	for _, tc := range []struct {
		criteria string
		want     bool
	}{
		{"ALL", true},
		{"UNSEEN", true},
		{"UID 1:5", false},
		{"UID 2,5 UNSEEN", false},
		{"UID 6", true},
		{"UID 3:*", true}, // "*" is the highest UID in use, which the view may lack
		{"UID $", true},
		{"1:*", false}, // sequence numbers name only the messages the client was told of
		{"NOT UID 1:5", true},
		{"OR UID 1 UID 7", true},
		{"OR UID 1 2", false},
		{"OR UID 1 UID 7 UID 2", false},
		{"NOT 1 UID 4:*", true},
	} {
		cmd, err := imapwire.ParseCommand([]byte("a UID SEARCH " + tc.criteria))
		if err != nil {
			t.Fatalf("%s: %v", tc.criteria, err)
		}
		crit := &cmd.Args.(*imapwire.SearchArgs).Criteria
		if got := mayMatchPastView(crit, top); got != tc.want {
			t.Errorf("mayMatchPastView(%s) = %v, want %v", tc.criteria, got, tc.want)
		}
	}
}
