package fs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"

	"github.com/strata-mail/strata/blobstore"
)

// The index file of a sealed segment, root/seg/<seq>.idx: what a scan of the segment
// would find, so that an open reads a few bytes per record instead of every packed byte
// (package comment, "Packing"). It is
//
//	magic   uint32  indexMagic
//	segSize uint64  the length of the segment it describes
//	count   uint32  the number of entries
//	count entries, each
//	  off     uint64  the record's offset in the segment
//	  keyLen  uint16
//	  bodyLen uint32
//	  bodyCRC uint32  CRC-32C of the body
//	  key     keyLen bytes
//	crc     uint32  CRC-32C of everything above
//
// all integers little-endian. It is written once the segment is sealed and synced whole,
// through a temporary file that is synced and renamed into place. Open uses it only if
// its checksum holds, it describes a segment of the segment file's length, and every
// entry is a valid record place (a valid key, lengths in bounds, records in order without
// overlap inside the segment); else it scans the segment. A record loaded from it is not
// read until a Get or a dedup hit reads it, and both check its body against its key.
const (
	indexMagic      = 0x31494253 // "SBI1"
	indexHeaderSize = 16
	indexEntrySize  = 18
)

// indexEntry is a record of a segment as its index file lists it.
type indexEntry struct {
	off     int64
	key     string
	bodyLen uint32
	bodyCRC uint32
}

func (p *packs) indexPath(seq uint64) string {
	return filepath.Join(p.dir, fmt.Sprintf("%016x.idx", seq))
}

// encodeSegmentIndex returns the index file of a segment of segSize bytes holding entries.
func encodeSegmentIndex(segSize int64, entries []indexEntry) []byte {
	n := indexHeaderSize + 4
	for _, e := range entries {
		n += indexEntrySize + len(e.key)
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint32(b, indexMagic)
	b = binary.LittleEndian.AppendUint64(b, uint64(segSize))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint64(b, uint64(e.off))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(e.key)))
		b = binary.LittleEndian.AppendUint32(b, e.bodyLen)
		b = binary.LittleEndian.AppendUint32(b, e.bodyCRC)
		b = append(b, e.key...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeSegmentIndex decodes an index file of a segment of segSize bytes; ok is false
// unless it is sound (see the format above).
func decodeSegmentIndex(b []byte, segSize int64) (entries []indexEntry, ok bool) {
	if len(b) < indexHeaderSize+4 || binary.LittleEndian.Uint32(b) != indexMagic {
		return nil, false
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum || int64(binary.LittleEndian.Uint64(b[4:])) != segSize || segSize < 0 {
		return nil, false
	}
	count := int(binary.LittleEndian.Uint32(b[12:]))
	rest := body[indexHeaderSize:]
	if count > len(rest)/indexEntrySize {
		return nil, false
	}
	entries = make([]indexEntry, 0, count)
	var end int64
	for range count {
		if len(rest) < indexEntrySize {
			return nil, false
		}
		off := binary.LittleEndian.Uint64(rest)
		keyLen := int(binary.LittleEndian.Uint16(rest[8:]))
		bodyLen := binary.LittleEndian.Uint32(rest[10:])
		bodyCRC := binary.LittleEndian.Uint32(rest[14:])
		rest = rest[indexEntrySize:]
		if keyLen == 0 || keyLen > maxKeyLen || keyLen > len(rest) || bodyLen > PackMax || off > uint64(segSize) {
			return nil, false
		}
		key := string(rest[:keyLen])
		rest = rest[keyLen:]
		recEnd := int64(off) + int64(recordSize(keyLen, int(bodyLen)))
		if int64(off) < end || recEnd > segSize || !blobstore.ValidKey(key) {
			return nil, false
		}
		end = recEnd
		entries = append(entries, indexEntry{off: int64(off), key: key, bodyLen: bodyLen, bodyCRC: bodyCRC})
	}
	if len(rest) != 0 {
		return nil, false
	}
	return entries, true
}

// readSegmentIndex reads the index file at path of a segment of segSize bytes; ok is
// false if it is missing or not sound.
func readSegmentIndex(fsys fileSystem, path string, segSize int64) (entries []indexEntry, ok bool) {
	b, err := fsys.ReadFile(path)
	if err != nil {
		return nil, false
	}
	return decodeSegmentIndex(b, segSize)
}

// writeSegmentIndex writes the index file at path, durably (writeDurably).
func writeSegmentIndex(fsys fileSystem, path string, segSize int64, entries []indexEntry) error {
	if err := writeDurably(fsys, path, encodeSegmentIndex(segSize, entries)); err != nil {
		return fmt.Errorf("write segment index: %w", err)
	}
	return nil
}

// writeIndexes writes the index file of every segment sealed since the last call, once
// the segment is synced whole. A segment whose fsync failed gets none (a compaction
// removes it).
func (p *packs) writeIndexes() error {
	p.indexMu.Lock()
	defer p.indexMu.Unlock()
	p.mu.Lock()
	var todo []*segment
	for _, seg := range p.segments {
		if seg.sealed && !seg.indexed && !seg.removed {
			todo = append(todo, seg)
		}
	}
	p.mu.Unlock()
	var errs []error
	for _, seg := range todo {
		size := seg.size.Load()
		if err := seg.data.syncTo(size); err != nil {
			p.mu.Lock()
			seg.indexed, seg.entries = true, nil
			p.mu.Unlock()
			continue
		}
		p.mu.Lock()
		entries := seg.entries
		pinned := !seg.removed
		if pinned {
			seg.refs++
		}
		p.mu.Unlock()
		if !pinned {
			continue
		}
		// A prepared segment is cut to its records first, so that the index file
		// describes the file's length (prepare.go); if that fails the next open scans it.
		var trimErr error
		if seg.prepared {
			trimErr = p.trimTail(seg, size)
		}
		p.unpin(seg)
		if trimErr != nil {
			p.mu.Lock()
			seg.indexed, seg.entries = true, nil
			p.mu.Unlock()
			errs = append(errs, trimErr)
			continue
		}
		if err := writeSegmentIndex(p.fsys, p.indexPath(seg.seq), size, entries); err != nil {
			errs = append(errs, err)
			continue
		}
		p.mu.Lock()
		seg.indexed, seg.entries = true, nil
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}
