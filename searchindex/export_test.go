package searchindex

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// DocWords returns d's distinct words (scope byte first) and the scopes with a word
// longer than MaxWord, for the external tests (TestExtractGolden).
func DocWords(d *Doc) ([]string, uint16) {
	words := make([]string, len(d.words))
	for i, w := range d.words {
		words[i] = w.key
	}
	return words, d.long
}

// StoreDigest returns the SHA-256 of every key and value the store holds, in key order
// (TestIndexGolden).
func StoreDigest(x *Index) (string, error) {
	if err := x.db.Flush(); err != nil {
		return "", err
	}
	it, err := x.db.NewIter(nil)
	if err != nil {
		return "", err
	}
	defer it.Close()
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for it.First(); it.Valid(); it.Next() {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(it.Key())))])
		h.Write(it.Key())
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(it.Value())))])
		h.Write(it.Value())
	}
	return hex.EncodeToString(h.Sum(nil)), it.Error()
}
