package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/hashicorp/raft"
)

// logStore is raft's LogStore and StableStore on a Pebble instance of its own (never the state
// machine's, which is swapped wholesale on snapshot restore).
//
// Invariants:
//
//   - Every write (StoreLogs, DeleteRange, Set, SetUint64) is one Pebble batch committed with
//     pebble.Sync: when it returns, the batch is in the WAL and the WAL is fsynced, so it
//     survives a crash or power loss. A batch of logs costs one WAL sync however many logs it
//     holds, so raft's batching of concurrent appends amortises the sync.
//   - Log keys are logKeyPrefix followed by the big-endian index, so key order is index order
//     and the first and last logs are the iterator's bounds.
//   - first and last are the lowest and highest stored indexes (both 0 when there is no log).
//     They are read from the store on open and updated under writeMu after each committed
//     write, so they match the store across DeleteRange and restarts.
type logStore struct {
	db        *pebble.DB
	closeOnce sync.Once
	closeErr  error

	// useMu guards every use of db against Close: raft's transport answers a heartbeat
	// (processHeartbeat -> setCurrentTerm -> Set) on its own goroutine, which may still
	// run while a node shuts down, and Pebble panics on any use after Close ("pebble:
	// closed"). Operations hold it shared and fail with errLogStoreClosed once closed.
	useMu  sync.RWMutex
	closed bool

	writeMu sync.Mutex // serialises writes, so first and last follow the order of commits

	indexMu     sync.RWMutex
	first, last uint64

	// growth, when set, counts what StoreLogs stores (loggrowth.go).
	growth *logGrowth

	// scan lets raft.NewRaft's configuration scan skip plain entries (configscan.go).
	scan configScan
}

var (
	logKeyPrefix    = []byte("l")
	stableKeyPrefix = []byte("s")
	// boltMigratedKey is set, in the same synced batch as the last copied entries, when every
	// log and stable key of raft.db has been copied into this store (migrateBoltLogStore).
	boltMigratedKey = []byte("m/bolt-migrated")
)

// errLogStoreClosed is what an operation after Close returns.
var errLogStoreClosed = errors.New("raft log store: closed")

// use holds the store open for one operation; done must be called after it. It fails
// once the store is closed.
func (s *logStore) use() (done func(), err error) {
	s.useMu.RLock()
	if s.closed {
		s.useMu.RUnlock()
		return nil, errLogStoreClosed
	}
	return s.useMu.RUnlock, nil
}

// errStableKeyNotFound is what Get and GetUint64 return for a key never set; raft treats any
// error whose text is "not found" as an unset key (raft.go: "not found" in getLastVote etc.).
var errStableKeyNotFound = errors.New("not found")

// logStoreOptions suit an append-mostly log read back near its tail: a small memtable (logs
// are deleted soon after a snapshot, so little reaches the lower levels), a small cache
// (raft's LogCache holds the hot tail), and no block compression: the log after a snapshot
// is bounded in bytes (loggrowth.go), and every start reads it back, where snappy's
// decoding was a third of the CPU (docs/benchmarks.md, replay25: 2.5 times the disk of the
// log, about 40% less CPU per start). Blocks written compressed by an older build stay
// readable; they go as the log is compacted.
func logStoreOptions(logger *slog.Logger) *pebble.Options {
	o := &pebble.Options{
		Logger:             pebbleLogger{logger},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       8 << 20,
		CacheSize:          8 << 20,
	}
	for i := range o.Levels {
		o.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	return o
}

// openLogStore opens (creating if needed) the log store in dir. Pebble's lock file makes a
// second open of the same dir fail, from this process or another.
func openLogStore(dir string, logger *slog.Logger) (*logStore, error) {
	db, err := pebble.Open(dir, logStoreOptions(logger))
	if err != nil {
		return nil, fmt.Errorf("open raft log store %s: %w", dir, err)
	}
	s := &logStore{db: db}
	if err := s.loadBounds(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store; it is idempotent (Pebble panics on a second Close).
func (s *logStore) Close() error {
	s.closeOnce.Do(func() {
		s.useMu.Lock() // waits for the operations under way
		defer s.useMu.Unlock()
		s.closed = true
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

func logKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(logKeyPrefix)+8), logKeyPrefix...), index)
}

func stableKey(k []byte) []byte {
	return append(append(make([]byte, 0, len(stableKeyPrefix)+len(k)), stableKeyPrefix...), k...)
}

// loadBounds reads the first and last stored indexes.
func (s *logStore) loadBounds() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(0), UpperBound: prefixUpperBound(logKeyPrefix)})
	if err != nil {
		return fmt.Errorf("raft log store: %w", err)
	}
	var first, last uint64
	if it.First() {
		first = binary.BigEndian.Uint64(it.Key()[len(logKeyPrefix):])
		it.Last()
		last = binary.BigEndian.Uint64(it.Key()[len(logKeyPrefix):])
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("raft log store: find first and last index: %w", err)
	}
	s.indexMu.Lock()
	s.first, s.last = first, last
	s.indexMu.Unlock()
	return nil
}

func prefixUpperBound(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	end[len(end)-1]++ // the prefixes are single letters, never 0xff
	return end
}

// FirstIndex is the lowest stored index, 0 when the log is empty.
func (s *logStore) FirstIndex() (uint64, error) {
	s.indexMu.RLock()
	defer s.indexMu.RUnlock()
	return s.first, nil
}

// LastIndex is the highest stored index, 0 when the log is empty.
func (s *logStore) LastIndex() (uint64, error) { return s.lastIndex(), nil }

func (s *logStore) lastIndex() uint64 {
	s.indexMu.RLock()
	defer s.indexMu.RUnlock()
	return s.last
}

// GetLog reads the entry at index into log, or returns raft.ErrLogNotFound.
func (s *logStore) GetLog(index uint64, log *raft.Log) error {
	if s.scan.active.Load() && s.scanStub(index, log) {
		return nil
	}
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	return s.getLog(index, log)
}

// getLog is GetLog without the stub or the hold on the store.
func (s *logStore) getLog(index uint64, log *raft.Log) error {
	value, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raft log store: read log %d: %w", index, err)
	}
	defer func() { _ = closer.Close() }()
	if err := decodeLog(value, log); err != nil {
		return fmt.Errorf("raft log store: log %d: %w", index, err)
	}
	log.Index = index
	return nil
}

// StoreLog stores one entry durably.
func (s *logStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs stores entries in one synced batch: all or none of them survive a crash. The
// batch also holds the side record of each configuration entry and the index and term of the
// highest entry (configscan.go).
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	if s.scan.active.Load() {
		s.endConfigScan()
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	var buf []byte
	var bytes uint64
	top := logs[0]
	low, high := logs[0].Index, logs[0].Index
	for _, l := range logs {
		buf = encodeLog(buf[:0], l)
		bytes += uint64(len(buf))
		if err := b.Set(logKey(l.Index), buf, nil); err != nil {
			return fmt.Errorf("raft log store: store log %d: %w", l.Index, err)
		}
		if isConfigurationType(l.Type) {
			if err := b.Set(configKey(l.Index), nil, nil); err != nil {
				return fmt.Errorf("raft log store: store configuration record %d: %w", l.Index, err)
			}
		}
		low, high = min(low, l.Index), max(high, l.Index)
		if l.Index == high {
			top = l
		}
	}
	if high >= s.lastIndex() {
		through := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), top.Index), top.Term)
		if err := b.Set(configTrackedThroughKey, through, nil); err != nil {
			return fmt.Errorf("raft log store: store log %d: %w", top.Index, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raft log store: commit logs %d-%d: %w", low, high, err)
	}
	s.indexMu.Lock()
	if s.first == 0 || low < s.first {
		s.first = low
	}
	s.last = max(s.last, high)
	s.indexMu.Unlock()
	if s.growth != nil {
		s.growth.stored(high, bytes, uint64(len(logs)))
	}
	return nil
}

// estimateBytes estimates the bytes the entries from lo to hi take as StoreLogs counts them
// (encoded, before compression), without reading them all: the larger of Pebble's
// estimate of their size on disk (compressed, and the memtable's not counted) and their
// count times the mean size of estimateSamples of them spread over the range.
func (s *logStore) estimateBytes(lo, hi uint64) (uint64, error) {
	done, err := s.use()
	if err != nil {
		return 0, err
	}
	defer done()
	onDisk, err := s.db.EstimateDiskUsage(logKey(lo), logKey(hi+1))
	if err != nil {
		return 0, fmt.Errorf("raft log store: size of logs %d-%d: %w", lo, hi, err)
	}
	count := hi - lo + 1
	samples := min(count, estimateSamples)
	var sampled uint64
	for i := range samples {
		index := lo + i*count/samples
		value, closer, err := s.db.Get(logKey(index))
		if err != nil {
			return 0, fmt.Errorf("raft log store: read log %d: %w", index, err)
		}
		sampled += uint64(len(value))
		_ = closer.Close()
	}
	return max(onDisk, sampled*count/samples), nil
}

// DeleteRange deletes the entries from lo to hi inclusive, and their configuration records,
// with range deletions in one synced batch.
func (s *logStore) DeleteRange(lo, hi uint64) error {
	if lo > hi {
		return nil
	}
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	if s.scan.active.Load() {
		s.endConfigScan()
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	end, configEnd := prefixUpperBound(logKeyPrefix), prefixUpperBound(configKeyPrefix)
	if hi < ^uint64(0) {
		end, configEnd = logKey(hi+1), configKey(hi+1)
	}
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	err = b.DeleteRange(logKey(lo), end, nil)
	if err == nil {
		err = b.DeleteRange(configKey(lo), configEnd, nil)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("raft log store: delete logs %d-%d: %w", lo, hi, err)
	}
	s.indexMu.RLock()
	first, last := s.first, s.last
	s.indexMu.RUnlock()
	switch {
	case hi < first || lo > last:
		return nil // nothing stored was in the range
	case lo <= first && hi >= last:
		s.setBounds(0, 0)
		return nil
	}
	// Raft deletes a compacted head or a conflicting tail; the rest is contiguous in practice,
	// but look rather than assume hi+1 or lo-1 is stored.
	return s.loadBounds()
}

func (s *logStore) setBounds(first, last uint64) {
	s.indexMu.Lock()
	s.first, s.last = first, last
	s.indexMu.Unlock()
}

// Set stores a stable key durably.
func (s *logStore) Set(k, v []byte) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.db.Set(stableKey(k), v, pebble.Sync); err != nil {
		return fmt.Errorf("raft stable store: set %q: %w", k, err)
	}
	return nil
}

// Get reads a stable key; a key never set gives an empty value and an error "not found", as
// raft expects.
func (s *logStore) Get(k []byte) ([]byte, error) {
	done, err := s.use()
	if err != nil {
		return nil, err
	}
	defer done()
	value, closer, err := s.db.Get(stableKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errStableKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raft stable store: get %q: %w", k, err)
	}
	defer func() { _ = closer.Close() }()
	return append([]byte(nil), value...), nil
}

// SetUint64 stores a stable integer durably, big-endian as raft-boltdb did.
func (s *logStore) SetUint64(k []byte, v uint64) error {
	return s.Set(k, binary.BigEndian.AppendUint64(nil, v))
}

// GetUint64 reads a stable integer; a key never set gives 0 and an error "not found".
func (s *logStore) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft stable store: %q holds %d bytes, not a uint64", k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// estimateSamples is how many entries estimateBytes reads.
const estimateSamples = 16

// logEncodingVersion leads every stored entry, so that a later layout can be told apart.
const logEncodingVersion = 1

// encodeLog appends the entry's fields except Index (which is in the key): version, term,
// type, data, extensions, and AppendedAt in time.MarshalBinary form.
func encodeLog(buf []byte, l *raft.Log) []byte {
	buf = append(buf, logEncodingVersion)
	buf = binary.AppendUvarint(buf, l.Term)
	buf = append(buf, byte(l.Type))
	buf = binary.AppendUvarint(buf, uint64(len(l.Data)))
	buf = append(buf, l.Data...)
	buf = binary.AppendUvarint(buf, uint64(len(l.Extensions)))
	buf = append(buf, l.Extensions...)
	appended, err := l.AppendedAt.MarshalBinary()
	if err != nil {
		// Only a zone offset that is not a whole minute fails; store the instant in UTC.
		appended, _ = l.AppendedAt.UTC().MarshalBinary()
	}
	return append(buf, appended...)
}

var errCorruptLog = errors.New("corrupt log entry")

// decodeLog reverses encodeLog. Data and Extensions are copied: raft keeps them past the read.
func decodeLog(buf []byte, l *raft.Log) error {
	if len(buf) < 1 || buf[0] != logEncodingVersion {
		return fmt.Errorf("%w: unknown encoding", errCorruptLog)
	}
	buf = buf[1:]
	term, n := binary.Uvarint(buf)
	if n <= 0 || len(buf) < n+1 {
		return fmt.Errorf("%w: term", errCorruptLog)
	}
	typ := raft.LogType(buf[n])
	buf = buf[n+1:]
	data, buf, ok := readBytes(buf)
	if !ok {
		return fmt.Errorf("%w: data", errCorruptLog)
	}
	extensions, buf, ok := readBytes(buf)
	if !ok {
		return fmt.Errorf("%w: extensions", errCorruptLog)
	}
	var appended time.Time
	if err := appended.UnmarshalBinary(buf); err != nil {
		return fmt.Errorf("%w: appended time: %w", errCorruptLog, err)
	}
	*l = raft.Log{Term: term, Type: typ, Data: data, Extensions: extensions, AppendedAt: appended}
	return nil
}

// readBytes reads a uvarint length and that many bytes, copied; nil when the length is 0.
func readBytes(buf []byte) (field, rest []byte, ok bool) {
	size, n := binary.Uvarint(buf)
	if n <= 0 || uint64(len(buf)-n) < size {
		return nil, nil, false
	}
	buf = buf[n:]
	if size > 0 {
		field = append([]byte(nil), buf[:size]...)
	}
	return field, buf[size:], true
}

// pebbleLogger sends Pebble's log lines to slog.
type pebbleLogger struct{ logger *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.logger.Debug(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.logger.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.logger.Error(msg, "source", "pebble")
	panic(msg)
}
