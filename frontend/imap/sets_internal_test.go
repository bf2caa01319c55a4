package imap

import "testing"

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
