package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// The configuration scan: raft.NewRaft reads every entry after the latest snapshot to find
// the configuration entries among them (raft@v1.8.0 api.go, the loop over
// processConfigurationLogEntry), which at a million messages costs as much CPU as the replay
// that follows. The log store keeps a side record of which indexes hold a configuration
// entry, so that during that scan, and only then, it can answer for a plain entry without
// reading it.
//
// Invariants:
//
//   - StoreLogs writes configKey(index) in the same synced batch as every entry of type
//     LogConfiguration, LogAddPeerDeprecated or LogRemovePeerDeprecated (isConfigurationType);
//     DeleteRange deletes the side records of its range in the same batch as the entries. A
//     side record left over at an index now holding a plain entry only costs a real read.
//   - configTrackedFromKey holds the index from which the side records are complete. A store
//     first opened by a build that writes them gets last+1 (trackConfigurations): the entries
//     below were written without records and are read for real. configTrackedThroughKey holds
//     the index and term of the highest entry StoreLogs wrote; when the store's last entry is
//     not that one (a build without side records appended since), the mark moves to last+1.
//     Raft's Log Matching property makes index and term name one entry: the same pair means
//     nothing else was appended.
//   - A stub (Index and Type LogCommand, no Term, Data or Extensions) is returned only while
//     Open runs raft.NewRaft (beginConfigScan .. endConfigScan, and ends at the scan's read of
//     the last index or at any write), for a stored index at or above the mark, below the store's
//     last index, at or below the state machine's applied index, without a side record. The
//     scan reads Type, Index and, for configuration entries, Data; NewRaft reads the last
//     entry (its Term) for real. Raft's goroutines start at the end of NewRaft, after the
//     scan's last read; a stub reaching the state machine would be skipped as applied, and
//     none can reach a follower (no leader is elected within NewRaft).

var (
	// configKeyPrefix followed by the big-endian index: a configuration entry is stored there.
	configKeyPrefix = []byte("c")
	// configTrackedFromKey holds the big-endian index from which side records are complete.
	configTrackedFromKey = []byte("m/config-tracked-from")
	// configTrackedThroughKey holds the big-endian index and term of the highest entry
	// StoreLogs wrote.
	configTrackedThroughKey = []byte("m/config-tracked-through")
)

func configKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(configKeyPrefix)+8), configKeyPrefix...), index)
}

// isConfigurationType reports whether raft's configuration scan reads the entry's Data
// (processConfigurationLogEntry).
func isConfigurationType(t raft.LogType) bool {
	return t == raft.LogConfiguration || t == raft.LogAddPeerDeprecated || t == raft.LogRemovePeerDeprecated
}

// configScan is the state of the configuration scan (logStore.scan).
type configScan struct {
	active atomic.Bool // read without mu on every GetLog

	mu          sync.Mutex
	trackedFrom uint64              // side records are complete from here (0: not tracked)
	first       uint64              // the store's first index when the scan began
	below       uint64              // the store's last index when the scan began
	applied     uint64              // the state machine's applied index when the scan began
	configs     map[uint64]struct{} // indexes with a side record
	lastReads   int                 // reads of below so far
	stubbed     uint64              // entries answered without a read
}

// trackConfigurations reads or sets the mark from which side records are complete; Open
// calls it once, after any migration of an older store.
func (s *logStore) trackConfigurations() error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	last, err := s.LastIndex()
	if err != nil {
		return err
	}
	var lastTerm uint64
	if last > 0 {
		var l raft.Log
		if err := s.getLog(last, &l); err != nil {
			return err
		}
		lastTerm = l.Term
	}
	from, fromOK, err := s.getMeta(configTrackedFromKey)
	if err != nil {
		return err
	}
	through, throughOK, err := s.getMeta(configTrackedThroughKey)
	if err != nil {
		return err
	}
	want := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, last), lastTerm)
	if fromOK && len(from) == 8 && (last == 0 || throughOK && string(through) == string(want)) {
		s.scan.mu.Lock()
		s.scan.trackedFrom = binary.BigEndian.Uint64(from)
		s.scan.mu.Unlock()
		return nil
	}
	// Untracked, or appended to by a build without side records: complete from here on.
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	err = b.Set(configTrackedFromKey, binary.BigEndian.AppendUint64(nil, last+1), nil)
	if err == nil {
		err = b.Set(configTrackedThroughKey, want, nil)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("raft log store: mark configuration tracking: %w", err)
	}
	s.scan.mu.Lock()
	s.scan.trackedFrom = last + 1
	s.scan.mu.Unlock()
	return nil
}

func (s *logStore) getMeta(key []byte) ([]byte, bool, error) {
	value, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("raft log store: read %s: %w", key, err)
	}
	defer func() { _ = closer.Close() }()
	return append([]byte(nil), value...), true, nil
}

// beginConfigScan lets GetLog answer stubs for raft.NewRaft's configuration scan; applied is
// the state machine's applied index. endConfigScan ends it.
func (s *logStore) beginConfigScan(applied uint64) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: configKey(0), UpperBound: prefixUpperBound(configKeyPrefix)})
	if err != nil {
		return fmt.Errorf("raft log store: %w", err)
	}
	configs := map[uint64]struct{}{}
	for ok := it.First(); ok; ok = it.Next() {
		configs[binary.BigEndian.Uint64(it.Key()[len(configKeyPrefix):])] = struct{}{}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("raft log store: read configuration records: %w", err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	sc := &s.scan
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.trackedFrom == 0 || first == 0 {
		return nil // trackConfigurations not run: read everything
	}
	sc.first, sc.below, sc.applied, sc.configs, sc.lastReads, sc.stubbed = first, last, applied, configs, 0, 0
	sc.active.Store(true)
	return nil
}

// endConfigScan ends the scan and returns how many entries it answered without a read.
func (s *logStore) endConfigScan() uint64 {
	sc := &s.scan
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.active.Store(false)
	sc.configs = nil
	return sc.stubbed
}

// scanStub fills log with a stub for index when the scan is on and may skip the read.
func (s *logStore) scanStub(index uint64, log *raft.Log) bool {
	sc := &s.scan
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.active.Load() {
		return false
	}
	if index == sc.below {
		// NewRaft reads the last entry first, and again as the scan's last read.
		if sc.lastReads++; sc.lastReads >= 2 {
			sc.active.Store(false)
			sc.configs = nil
		}
		return false
	}
	if index < max(sc.trackedFrom, sc.first) || index > sc.below || index > sc.applied {
		return false
	}
	if _, ok := sc.configs[index]; ok {
		return false
	}
	*log = raft.Log{Index: index, Type: raft.LogCommand}
	sc.stubbed++
	return true
}
