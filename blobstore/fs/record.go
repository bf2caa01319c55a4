package fs

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"

	"github.com/strata-mail/strata/blobstore"
)

// The records of a segment file (pack.go). A body record is
//
//	magic    uint32  recordMagic
//	keyLen   uint16  length of the key
//	reserved uint16  zero
//	bodyLen  uint32  length of the body, at most PackMax
//	bodyCRC  uint32  CRC-32C of the body
//	headCRC  uint32  CRC-32C of the 16 bytes above and the key
//	key      keyLen bytes, a valid blobstore key
//	body     bodyLen bytes
//
// all integers little-endian. A tombstone (in the segment's ".del" file) is the offset of
// the body record it removes, uint64, and the CRC-32C of those 8 bytes, uint32.
const (
	recordMagic    = 0x31524253 // "SBR1"
	headerSize     = 20
	maxKeyLen      = 256
	tombstoneSize  = 12
	maxRecordBytes = headerSize + maxKeyLen + PackMax
)

// PackMax is the largest body the store packs into a segment file; larger ones keep a file
// of their own.
const PackMax = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSize is the length of the record of a body of bodyLen bytes under key.
func recordSize(keyLen, bodyLen int) int { return headerSize + keyLen + bodyLen }

// putHeader writes the header of the record of key and body into rec, which holds
// recordSize(len(key), len(body)) bytes with key and body already in place after the
// header.
func putHeader(rec []byte, key string, bodyLen int) {
	body := rec[headerSize+len(key) : headerSize+len(key)+bodyLen]
	binary.LittleEndian.PutUint32(rec[0:], recordMagic)
	binary.LittleEndian.PutUint16(rec[4:], uint16(len(key)))
	binary.LittleEndian.PutUint16(rec[6:], 0)
	binary.LittleEndian.PutUint32(rec[8:], uint32(bodyLen))
	binary.LittleEndian.PutUint32(rec[12:], crc32.Checksum(body, castagnoli))
	head := crc32.Update(crc32.Checksum(rec[:16], castagnoli), castagnoli, rec[headerSize:headerSize+len(key)])
	binary.LittleEndian.PutUint32(rec[16:], head)
}

// encodeRecord returns the record of key and body.
func encodeRecord(key string, body []byte) []byte {
	rec := make([]byte, recordSize(len(key), len(body)))
	copy(rec[headerSize:], key)
	copy(rec[headerSize+len(key):], body)
	putHeader(rec, key, len(body))
	return rec
}

// decodedRecord is a record read back: the key, the body's place and checksum.
type decodedRecord struct {
	key     string
	keyLen  int
	bodyLen int
	bodyCRC uint32
}

// size is the length of the whole record.
func (r decodedRecord) size() int { return recordSize(r.keyLen, r.bodyLen) }

// decodeHeader decodes the header and key at the start of b. ok is false unless b begins
// with a header whose checksum matches, a valid key and a body length within PackMax; the
// body itself is not read (b may end before it).
func decodeHeader(b []byte) (rec decodedRecord, ok bool) {
	if len(b) < headerSize || binary.LittleEndian.Uint32(b) != recordMagic || binary.LittleEndian.Uint16(b[6:]) != 0 {
		return rec, false
	}
	keyLen := int(binary.LittleEndian.Uint16(b[4:]))
	bodyLen := int(binary.LittleEndian.Uint32(b[8:]))
	if keyLen == 0 || keyLen > maxKeyLen || bodyLen > PackMax || len(b) < headerSize+keyLen {
		return rec, false
	}
	key := b[headerSize : headerSize+keyLen]
	head := crc32.Update(crc32.Checksum(b[:16], castagnoli), castagnoli, key)
	if head != binary.LittleEndian.Uint32(b[16:]) || !blobstore.ValidKey(string(key)) {
		return rec, false
	}
	return decodedRecord{key: string(key), keyLen: keyLen, bodyLen: bodyLen, bodyCRC: binary.LittleEndian.Uint32(b[12:])}, true
}

// decodeRecord decodes the whole record at the start of b: its header (decodeHeader) and
// a body that is all there and matches its checksum and its key's SHA-256. The digest
// check keeps a record that is not one (bytes inside a body that the scan resynchronised
// into, a torn tail) out of the index: such bytes pass the CRC-32C by design, not the
// digest.
func decodeRecord(b []byte) (rec decodedRecord, body []byte, ok bool) {
	rec, ok = decodeHeader(b)
	if !ok || len(b) < rec.size() {
		return rec, nil, false
	}
	body = b[headerSize+rec.keyLen : rec.size()]
	if crc32.Checksum(body, castagnoli) != rec.bodyCRC {
		return rec, nil, false
	}
	if _, sum, ok := blobstore.ParseKey(rec.key); !ok || sha256.Sum256(body) != sum {
		return rec, nil, false
	}
	return rec, body, true
}

// encodeTombstone returns the tombstone of the record at off.
func encodeTombstone(off int64) []byte {
	var t [tombstoneSize]byte
	binary.LittleEndian.PutUint64(t[:], uint64(off))
	binary.LittleEndian.PutUint32(t[8:], crc32.Checksum(t[:8], castagnoli))
	return t[:]
}

// decodeTombstones returns the offsets named by the whole, intact tombstones in b; a torn
// last one (a crash during its write) is left out.
func decodeTombstones(b []byte) []int64 {
	var offs []int64
	for ; len(b) >= tombstoneSize; b = b[tombstoneSize:] {
		if crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
			continue
		}
		offs = append(offs, int64(binary.LittleEndian.Uint64(b)))
	}
	return offs
}
