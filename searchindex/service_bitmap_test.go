package searchindex

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestBitmapFromContainers checks the uid_bitmap written from the roaring containers
// (uidBits.bitmap) against the one built from the list of UIDs (uidBitmap), for sets whose
// containers are arrays, bitmaps and runs, across container boundaries.
func TestBitmapFromContainers(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 3))
	for _, tc := range []struct {
		name    string
		n       uint32
		density float64
		runs    bool
	}{
		{"sparse", 300_000, 0.01, false},
		{"dense", 300_000, 0.94, false},
		{"runs", 200_000, 0.999, true},
		{"one", 70_000, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var set uidBits
			var uids []uint32
			for uid := uint32(1); uid <= tc.n; uid++ {
				if rng.Float64() < tc.density || uid == 65_536 || uid == tc.n {
					uids = append(uids, uid)
				}
			}
			for start := 0; start < len(uids); start += 1000 {
				set.addMany(uids[start:min(start+1000, len(uids))])
			}
			if tc.runs {
				set.b.RunOptimize()
			}
			if set.cardinality() != len(uids) {
				t.Fatalf("cardinality %d, want %d", set.cardinality(), len(uids))
			}
			want := make([]byte, uids[len(uids)-1]/8+1)
			for _, uid := range uids {
				want[uid/8] |= 1 << (uid % 8)
			}
			if got := set.bitmap(); !bytes.Equal(got, want) {
				t.Fatalf("bitmap of %d UIDs: %d bytes, want %d, or different bits", len(uids), len(got), len(want))
			}
			if list := uidBitmap(uids); list != nil && !bytes.Equal(list, want) {
				t.Fatal("uidBitmap differs")
			}
			if tc.density > 0.5 != bitmapSmaller(len(uids), uids[len(uids)-1]) {
				t.Fatalf("bitmapSmaller(%d, %d) = %v", len(uids), uids[len(uids)-1], !(tc.density > 0.5))
			}
		})
	}
	var empty uidBits
	if empty.bitmap() != nil || empty.cardinality() != 0 {
		t.Fatal("an empty set has a bitmap")
	}
}
