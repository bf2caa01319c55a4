package fs

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-mail/strata/blobstore"
)

// fillSegments puts bodies until segment 1 is sealed and its index file written; it
// returns the keys and bodies of segment 1's records.
func fillSegments(t *testing.T, s *Store) (keys []string, bodies [][]byte) {
	t.Helper()
	for i := 0; ; i++ {
		body := seededBody(uint64(900+i), 3000)
		key := put(t, s, "acme", body)
		if loc, ok := s.packs.lookup(key); !ok || loc.seg.seq != 1 {
			break
		}
		keys, bodies = append(keys, key), append(bodies, body)
	}
	if err := s.packs.writeIndexes(); err != nil {
		t.Fatal(err)
	}
	return keys, bodies
}

// TestSegmentIndexUsedAtOpen: a sealed segment's index file lists its records, and the
// next open loads them from it without reading the segment: the records are indexed
// unread, and a dedup hit on one reads its body first.
func TestSegmentIndexUsedAtOpen(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 16<<10)
	keys, bodies := fillSegments(t, s)
	idx := filepath.Join(root, packDirName, "0000000000000001.idx")
	if _, err := os.Stat(idx); err != nil {
		t.Fatalf("no index file for the sealed segment: %v", err)
	}
	if err := s.Delete(t.Context(), keys[0]); err != nil {
		t.Fatal(err)
	}
	s = newPackedStore(t, root, 16<<10)
	for i, key := range keys {
		loc, ok := s.packs.lookup(key)
		if i == 0 {
			if ok {
				t.Fatal("a deleted record is live after loading the index file")
			}
			continue
		}
		if !ok || !loc.unverified {
			t.Fatalf("record %d: indexed %v, unverified %v: not loaded from the index file", i, ok, loc.unverified)
		}
		if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, bodies[i]) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	// A dedup hit on a record whose bytes rotted on disk reads it and writes it again.
	seg := filepath.Join(root, packDirName, segmentName(1))
	loc, _ := s.packs.lookup(keys[1])
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^bodies[1][0]}, loc.bodyOff()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	put(t, s, "acme", bodies[1])
	if loc, ok := s.packs.lookup(keys[1]); !ok || loc.seg.seq == 1 {
		t.Fatal("a dedup hit took a record loaded from the index file without reading it")
	}
	if got, err := getAll(t, s, keys[1]); err != nil || !bytes.Equal(got, bodies[1]) {
		t.Fatalf("the body written again: %v", err)
	}
	if _, ok := s.packs.staged(keys[2]); !ok {
		t.Fatal("no dedup hit on a sound record loaded from the index file")
	}
	if loc, _ := s.packs.lookup(keys[2]); loc.unverified {
		t.Fatal("a record read by a dedup hit is still unverified")
	}
}

// TestSegmentIndexFallsBackToScan: an index file that is missing, fails its checksum, or
// describes a segment of another length is not used: the segment is scanned, and every
// record is found and checked.
func TestSegmentIndexFallsBackToScan(t *testing.T) {
	for _, damage := range []string{"missing", "corrupt", "other length", "partial"} {
		t.Run(damage, func(t *testing.T) {
			root := t.TempDir()
			s := newPackedStore(t, root, 16<<10)
			keys, bodies := fillSegments(t, s)
			s.Close()
			dir := filepath.Join(root, packDirName)
			idx := filepath.Join(dir, "0000000000000001.idx")
			data, err := os.ReadFile(idx)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "missing":
				err = os.Remove(idx)
			case "corrupt":
				data[len(data)/2] ^= 1
				err = os.WriteFile(idx, data, 0o600)
			case "other length":
				// A torn tail after the index was written (bytes the index does not know).
				var f *os.File
				if f, err = os.OpenFile(filepath.Join(dir, segmentName(1)), os.O_WRONLY|os.O_APPEND, 0); err == nil {
					_, err = f.Write(encodeRecord(keys[0], bodies[0])[:30])
					f.Close()
				}
			case "partial":
				// An index file a crash cut short, left under its temporary name.
				if err = os.Rename(idx, idx+".tmp"); err == nil {
					err = os.Truncate(idx+".tmp", int64(len(data)/2))
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			s = newPackedStore(t, root, 16<<10)
			for i, key := range keys {
				loc, ok := s.packs.lookup(key)
				if !ok || loc.unverified {
					t.Fatalf("record %d: indexed %v, unverified %v: want scanned", i, ok, loc.unverified)
				}
				if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, bodies[i]) {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			// The scan's result is written as the segment's index file anew.
			if err := s.packs.writeIndexes(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(idx + ".tmp"); !os.IsNotExist(err) {
				t.Fatalf("a partial index file left: %v", err)
			}
			if _, ok := readSegmentIndex(osFS{}, idx, mustSize(t, filepath.Join(dir, segmentName(1)))); !ok {
				t.Fatal("no sound index file written after the scan")
			}
		})
	}
}

func FuzzSegmentIndex(f *testing.F) {
	key := blobstore.Key("acme", sha256.Sum256([]byte("hello")))
	f.Add(encodeSegmentIndex(int64(recordSize(len(key), 5)), []indexEntry{{off: 0, key: key, bodyLen: 5}}), int64(recordSize(len(key), 5)))
	f.Add(encodeSegmentIndex(0, nil), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, segSize int64) {
		entries, ok := decodeSegmentIndex(data, segSize)
		if !ok {
			return
		}
		var end int64
		for _, e := range entries {
			if e.off < end || e.off+int64(recordSize(len(e.key), int(e.bodyLen))) > segSize || !blobstore.ValidKey(e.key) {
				t.Fatalf("entry %+v accepted in a segment of %d bytes", e, segSize)
			}
			end = e.off + int64(recordSize(len(e.key), int(e.bodyLen)))
		}
		if again := encodeSegmentIndex(segSize, entries); !bytes.Equal(again, data) {
			t.Fatal("a sound index file does not encode to its bytes")
		}
	})
}

// TestScannedSegmentGetsIndex (review G3 of 2026-12-06): a segment that an open scanned
// (the active one of the last run, sealed by the open) gets its index file once it is
// durable, so that the open after loads it instead of scanning the segment again.
func TestScannedSegmentGetsIndex(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	var keys []string
	for i := range 5 {
		keys = append(keys, put(t, s, "acme", seededBody(uint64(3000+i), 700)))
	}
	idx := filepath.Join(root, packDirName, "0000000000000001.idx")
	s = newPackedStore(t, root, 0) // scans segment 1, the active one, and seals it
	if err := s.packs.writeIndexes(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(idx); err != nil {
		t.Fatalf("no index file for the segment the open scanned: %v", err)
	}
	s = newPackedStore(t, root, 0)
	for i, key := range keys {
		loc, ok := s.packs.lookup(key)
		if !ok || !loc.unverified {
			t.Fatalf("record %d: indexed %v, unverified %v: not loaded from the index file", i, ok, loc.unverified)
		}
		if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, seededBody(uint64(3000+i), 700)) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

func mustSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}
