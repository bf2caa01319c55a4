package metadatapb

// Helpers on the generated types that both sides of the API use. Hand-written; protoc
// leaves this file alone.

// RangesOf compresses ascending UIDs into UidRanges.
func RangesOf(uids []uint32) []*UidRange {
	var ranges []*UidRange
	for _, uid := range uids {
		if n := len(ranges); n > 0 && ranges[n-1].Last+1 == uid {
			ranges[n-1].Last = uid
			continue
		}
		ranges = append(ranges, &UidRange{First: uid, Last: uid})
	}
	return ranges
}
