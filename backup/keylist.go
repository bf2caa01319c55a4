package backup

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/strata-mail/strata/blobstore"
)

// keyList is a backup's list of body keys, spooled to a temporary file as it arrives so
// that a backup or restore of a million messages does not hold ~100 MiB of keys: one key a
// line, in strictly increasing order (the order of the leader's scan, checked, which also
// rules out a key listed twice), with its count and SHA-256 kept as it is written.
type keyList struct {
	f    *os.File
	w    *bufio.Writer
	sum  hash.Hash
	n    uint64
	last string
}

func newKeyList(tempDir string) (*keyList, error) {
	f, err := os.CreateTemp(tempDir, "strata-backup-*.keys")
	if err != nil {
		return nil, fmt.Errorf("spool the blob keys: %w", err)
	}
	l := &keyList{f: f, sum: sha256.New()}
	l.w = bufio.NewWriterSize(io.MultiWriter(f, l.sum), 64<<10)
	return l, nil
}

// add appends key, which must be a valid body key greater than the one before.
func (l *keyList) add(key string) error {
	if !blobstore.ValidKey(key) {
		return fmt.Errorf("invalid blob key %q", key)
	}
	if l.n > 0 && key <= l.last {
		return fmt.Errorf("blob key %q after %q: the list is not in strictly increasing order", key, l.last)
	}
	l.last = key
	l.n++
	l.w.WriteString(key)
	return l.w.WriteByte('\n')
}

// finish flushes the list and rewinds it for reading; it returns its SHA-256 in hex.
func (l *keyList) finish() (string, error) {
	if err := l.w.Flush(); err != nil {
		return "", fmt.Errorf("spool the blob keys: %w", err)
	}
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("rewind the blob keys: %w", err)
	}
	return hex.EncodeToString(l.sum.Sum(nil)), nil
}

// size is the list's length in bytes once finished.
func (l *keyList) size() (int64, error) {
	st, err := l.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// each calls fn with every key of the finished list in order until fn returns false.
func (l *keyList) each(fn func(key string) bool) error {
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind the blob keys: %w", err)
	}
	sc := bufio.NewScanner(l.f)
	sc.Buffer(make([]byte, maxBlobListLine), maxBlobListLine)
	for sc.Scan() {
		if !fn(sc.Text()) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the spooled blob keys: %w", err)
	}
	return nil
}

// close removes the spool file.
func (l *keyList) close() {
	l.f.Close()
	os.Remove(l.f.Name())
}

// spoolKeyList copies a stored list of keys (one a line) into a keyList, checking each.
func spoolKeyList(r io.Reader, tempDir string) (*keyList, error) {
	l, err := newKeyList(tempDir)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, maxBlobListLine), maxBlobListLine)
	for sc.Scan() {
		if err := l.add(sc.Text()); err != nil {
			l.close()
			return nil, fmt.Errorf("line %d: %w", l.n+1, err)
		}
	}
	if err := sc.Err(); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

var errKeysAfterSummary = errors.New("metadata snapshot bytes after its blob keys")
