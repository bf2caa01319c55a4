package metadata

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-mail/strata/replication"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"github.com/strata-mail/strata/internal/fsync"
	"github.com/strata-mail/strata/internal/mutation"
	"github.com/strata-mail/strata/proto/metadatapb"
	"google.golang.org/protobuf/proto"
)

// Snapshot stream format:
//
//	header:  "STRFSM01" (8 bytes), applied index (uint64 big-endian)
//	records: uvarint key length (> 0), key, uvarint value length, value; in key order
//	end:     uvarint 0
//	trailer: SHA-256 of everything before the trailer (32 bytes)
var snapshotMagic = []byte("STRFSM01")

// restoreBatchBytes is how much a restore writes per Pebble batch.
const restoreBatchBytes = 4 << 20

// fsmSnapshot is a Pebble snapshot handle of one generation.
type fsmSnapshot struct {
	metrics *Metrics
	g       *generation
	snap    *pebble.Snapshot
	applied uint64
}

// Snapshot captures a point-in-time handle; Persist does the I/O.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	g := f.acquire()
	return &fsmSnapshot{metrics: f.metrics, g: g, snap: g.db.NewSnapshot(), applied: f.applied.Load()}, nil
}

// Persist syncs the store, so that everything the snapshot covers is durable before
// Raft truncates its log, and streams the snapshot to the sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) (err error) {
	start := time.Now()
	defer func() { s.metrics.observeSnapshot(time.Since(start), err) }()
	if err := s.persist(sink); err != nil {
		if cerr := sink.Cancel(); cerr != nil {
			return errors.Join(err, fmt.Errorf("cancel snapshot sink: %w", cerr))
		}
		return err
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("close snapshot sink: %w", err)
	}
	return nil
}

func (s *fsmSnapshot) persist(w io.Writer) error {
	if err := s.g.db.Flush(); err != nil {
		return fmt.Errorf("flush fsm store: %w", err)
	}
	return writeSnapshot(w, s.snap, s.applied)
}

func (s *fsmSnapshot) Release() {
	if err := s.snap.Close(); err != nil {
		s.g.logger.Error("release fsm snapshot", "err", err)
	}
	s.g.release()
}

func writeSnapshot(w io.Writer, r reader, applied uint64) error {
	return writeSnapshotVisit(w, r, applied, nil)
}

// writeSnapshotVisit is writeSnapshot calling visit, when set, with every record written.
func writeSnapshotVisit(w io.Writer, r reader, applied uint64, visit func(k, v []byte) error) error {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<20)
	var buf [binary.MaxVarintLen64]byte
	bw.Write(snapshotMagic)
	bw.Write(binary.BigEndian.AppendUint64(nil, applied))
	err := scan(r, nil, nil, func(k, v []byte) (bool, error) {
		if visit != nil {
			if err := visit(k, v); err != nil {
				return false, err
			}
		}
		bw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(k)))])
		bw.Write(k)
		bw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(v)))])
		_, err := bw.Write(v)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	bw.Write(buf[:binary.PutUvarint(buf[:], 0)])
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := w.Write(h.Sum(nil)); err != nil {
		return fmt.Errorf("write snapshot trailer: %w", err)
	}
	return nil
}

var _ replication.SnapshotApplied = (*FSM)(nil)

// SnapshotAppliedIndex reads the applied index a snapshot was taken at from its header
// (replication.SnapshotApplied), without reading the rest.
func (f *FSM) SnapshotAppliedIndex(r io.Reader) (uint64, error) { return readSnapshotHeader(r) }

// readSnapshotHeader reads a snapshot's magic and the applied index that follows it.
func readSnapshotHeader(r io.Reader) (uint64, error) {
	header := make([]byte, len(snapshotMagic)+8)
	if _, err := io.ReadFull(r, header); err != nil {
		return 0, fmt.Errorf("read header: %w", err)
	}
	if !bytes.Equal(header[:len(snapshotMagic)], snapshotMagic) {
		return 0, fmt.Errorf("not a metadata fsm snapshot (magic %q)", header[:len(snapshotMagic)])
	}
	return binary.BigEndian.Uint64(header[len(snapshotMagic):]), nil
}

// Restore replaces the state with a snapshot stream. It builds a new store in a new
// directory, and only once the stream is complete and its checksum verified points
// CURRENT at it (an atomic rename) and swaps it in; a failed restore leaves the old
// state in place. Raft does not call Restore concurrently with ApplyBatch.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.RLock()
	old := f.gen
	f.mu.RUnlock()
	seq, _ := storeSeq(filepath.Base(old.dir))
	name := storeDirName(seq + 1)
	final := filepath.Join(f.dir, name)
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("restore: clear %s: %w", tmp, err)
	}
	applied, err := buildStore(tmp, rc, f.logger)
	if err != nil {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			f.logger.Error("remove failed restore", "dir", tmp, "err", rerr)
		}
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("restore: rename store: %w", err)
	}
	if err := writeCurrent(f.dir, name); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	gen, err := openGeneration(final, f.logger)
	if err != nil {
		return fmt.Errorf("restore: reopen: %w", err)
	}
	f.mu.Lock()
	f.gen = gen
	f.applied.Store(applied)
	f.mu.Unlock()
	old.retire()
	f.changes.signalAll()
	f.logger.Info("fsm restored from snapshot", "dir", final, "applied_index", applied)
	return nil
}

// buildStore writes a snapshot stream into a new Pebble store at dir, syncs and
// closes it, and returns the snapshot's applied index.
func buildStore(dir string, r io.Reader, logger *slog.Logger) (uint64, error) {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 1<<20)
	hr := &hashingReader{r: br, h: h}
	applied, err := readSnapshotHeader(hr)
	if err != nil {
		return 0, err
	}
	opts := pebbleOptions(logger)
	opts.ErrorIfExists = true
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return 0, fmt.Errorf("create store: %w", err)
	}
	err = loadRecords(db, hr)
	if err == nil {
		sum := make([]byte, sha256.Size)
		if _, rerr := io.ReadFull(br, sum); rerr != nil {
			err = fmt.Errorf("read trailer: %w", rerr)
		} else if !bytes.Equal(sum, h.Sum(nil)) {
			err = errors.New("snapshot checksum mismatch")
		}
	}
	if err == nil {
		err = db.Flush()
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	if err != nil {
		return 0, err
	}
	if err := fsync.Dir(dir); err != nil {
		return 0, err
	}
	return applied, nil
}

func loadRecords(db *pebble.DB, r *hashingReader) error {
	b := db.NewBatch()
	defer func() { b.Close() }()
	for n := 0; ; n++ {
		klen, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		if klen == 0 {
			break
		}
		key, err := readN(r, klen)
		if err != nil {
			return fmt.Errorf("record %d key: %w", n, err)
		}
		vlen, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		val, err := readN(r, vlen)
		if err != nil {
			return fmt.Errorf("record %d value: %w", n, err)
		}
		if mutation.UIDNextBack && len(key) == 9 && key[0] == prefixMailbox {
			val = uidNextBack(val) // the broken build of the consistency checker's tests
		}
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		if b.Len() >= restoreBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return fmt.Errorf("write records: %w", err)
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("write records: %w", err)
	}
	return nil
}

// maxSnapshotField bounds one key or value of a snapshot record.
const maxSnapshotField = 256 << 20

func readN(r io.Reader, n uint64) ([]byte, error) {
	if n > maxSnapshotField {
		return nil, fmt.Errorf("field of %d bytes exceeds %d", n, maxSnapshotField)
	}
	buf := make([]byte, n)
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// hashingReader hashes every byte read through it.
type hashingReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	return n, err
}

func (hr *hashingReader) ReadByte() (byte, error) {
	c, err := hr.r.ReadByte()
	if err == nil {
		hr.h.Write([]byte{c})
	}
	return c, err
}

// uidNextBack is the jepsen_mutation_uidnextback build's restore of a mailbox record: its
// UIDNEXT one lower, so the next append reuses the last UID.
func uidNextBack(val []byte) []byte {
	rec := &metadatapb.MailboxRecord{}
	if proto.Unmarshal(val, rec) != nil || rec.GetMailbox().GetUidNext() <= 1 {
		return val
	}
	rec.Mailbox.UidNext--
	out, err := proto.Marshal(rec)
	if err != nil {
		return val
	}
	return out
}
