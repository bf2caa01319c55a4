package metadata

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/internal/fsync"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Why Pebble for the state machine store:
//   - A pebble.Batch commits atomically, so the effects of a whole Raft batch and the
//     applied index that covers them land together: after a crash the store is at some
//     applied index exactly, never between two.
//   - Batches are committed with pebble.NoSync. That is safe because the Raft log is
//     the durable record: entries after the store's applied index are replayed at
//     start, and Persist flushes (syncs) the store before a snapshot lets Raft
//     truncate the log it covers. An fsync per batch would cost 2 to 4 times the
//     write throughput (DESIGN.md).
//   - db.NewSnapshot is a cheap consistent point-in-time view: Snapshot() only takes
//     one, Persist streams it while batches keep applying, and every read RPC sees a
//     whole number of batches.
//   - An LSM tree suits mail metadata: appends of new UIDs, journal entries and
//     tombstones are sequential inserts; flag changes are small overwrites.
//   - Indexed batches let a command read what earlier commands of the same Raft batch
//     wrote, so one batch is one storage transaction.

// currentFile names the file holding the name of the live store directory; Restore
// replaces it atomically (write, fsync, rename).
const currentFile = "CURRENT"

// FSM is the replicated metadata state machine (raft.BatchingFSM) and the read side
// of the metadata service.
type FSM struct {
	logger *slog.Logger
	dir    string

	mu  sync.RWMutex // guards gen; held exclusively only to swap in a restored store
	gen *generation

	applied atomic.Uint64
	changes *broadcaster
	closed  bool     // guarded by mu
	metrics *Metrics // nil: none (SetMetrics)

	// stampSeen is the highest Command.feature_level applied since open (featurelevel.go:
	// what a new leader stamps until it has asked the group).
	stampSeen atomic.Uint32
	// preStampBuild, when not 0, makes the FSM apply every command as a build of that level
	// from before Command.feature_level did, ignoring the stamp (featurelevel.go): the
	// tests of a group with a replica not yet upgraded set it.
	preStampBuild atomic.Uint32
	// rewriteAppends, when set, makes the batches write the column chunks that commands
	// only append to by a read, an edit and a set, as before the merges (columnbatch.go):
	// the tests that compare the two set it.
	rewriteAppends atomic.Bool
	// writeEach, when set, makes the batches write every value at once, none left
	// unwritten until the batch ends (txn.defers): the tests that compare the two set it.
	writeEach atomic.Bool
}

// generation is one open Pebble store. Readers hold a reference so that Restore can
// swap in a new store while reads and snapshot streams on the old one finish.
type generation struct {
	db   *pebble.DB
	dir  string
	mu   sync.Mutex
	refs int
	// retired is set when a newer generation replaced this one; the last release
	// closes and removes it.
	retired bool
	logger  *slog.Logger
	// carried is what the last committed batch's cache hands to the next (txn.carry);
	// only ApplyBatch, on Raft's one FSM goroutine, touches it.
	carried *carriedCache
}

// OpenFSM opens (or creates) the state machine store under dir.
func OpenFSM(dir string, logger *slog.Logger) (*FSM, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "metadata-fsm")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create fsm dir: %w", err)
	}
	name, err := readCurrent(dir)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = storeDirName(1)
		if err := writeCurrent(dir, name); err != nil {
			return nil, err
		}
	}
	if err := removeStaleStores(dir, name); err != nil {
		return nil, err
	}
	gen, err := openGeneration(filepath.Join(dir, name), logger)
	if err != nil {
		return nil, err
	}
	f := &FSM{logger: logger, dir: dir, gen: gen, changes: newBroadcaster()}
	applied, err := gen.appliedIndex()
	if err != nil {
		gen.close()
		return nil, err
	}
	f.applied.Store(applied)
	logger.Info("fsm opened", "dir", gen.dir, "applied_index", applied)
	return f, nil
}

func storeDirName(seq uint64) string { return "store-" + strconv.FormatUint(seq, 10) }

func storeSeq(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "store-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func readCurrent(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, currentFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", currentFile, err)
	}
	name := strings.TrimSpace(string(b))
	if _, ok := storeSeq(name); !ok {
		return "", fmt.Errorf("%s names %q, not a store directory", currentFile, name)
	}
	return name, nil
}

// writeCurrent points CURRENT at name atomically and durably.
func writeCurrent(dir, name string) error {
	tmp := filepath.Join(dir, currentFile+".tmp")
	fh, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("write %s: %w", currentFile, err)
	}
	if _, err := fh.WriteString(name + "\n"); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", currentFile, err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("sync %s: %w", currentFile, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("close %s: %w", currentFile, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, currentFile)); err != nil {
		return fmt.Errorf("replace %s: %w", currentFile, err)
	}
	return fsync.Dir(dir)
}

// removeStaleStores deletes store directories other than the live one: leftovers of
// a restore that failed or of a retired store that a crash kept from being removed.
func removeStaleStores(dir, live string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list fsm dir: %w", err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".tmp")
		if _, ok := storeSeq(name); !ok || e.Name() == live {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove stale store %s: %w", e.Name(), err)
		}
	}
	return nil
}

// pebbleOptions: bloom filters on every level, because commands look up many
// absent keys (domains, names, blob refs of new content), and a block cache large
// enough for the hot index blocks of a group.
//
// Compactions are paced for Appends spread over many accounts: every memtable
// flush holds keys from all over the key space, so every L0 compaction rewrites
// all of the base level it overlaps (the whole store while it is smaller than
// LBaseMaxBytes). With Pebble's defaults (4 MiB memtables, a compaction at 4 L0
// sublevels) that was a write amplification of 13 to 22 and a quarter of
// `strata serve`'s CPU under 64 appending clients; a compaction at 16 sublevels
// gathers 4 times the flushed data per compaction (docs/benchmarks.md "Pebble
// compactions of the FSM store"). The memtable is 16 MiB: each flush is one L0
// sublevel whatever its size, so at the same threshold a compaction of the base
// level takes twice the data of 8 MiB memtables, and a store past LBaseMaxBytes
// (every real one: the base level then stays at up to 64 MiB, rewritten by each
// L0 compaction) writes half as much. BenchmarkFSMStoreCompaction at 600,000
// Appends: 2,538 bytes compacted per Append against 4,690 with 8 MiB, write amp
// 6.7 against 11.2 (docs/benchmarks.md "append25"). Point reads look through as
// many L0 sublevels as before. The cost is memory of a busy group only: Pebble
// starts a memtable small and grows it with the writes, up to two (the one being
// flushed) of 16 MiB. The stop threshold stays 3 times the compaction threshold,
// as in Pebble's defaults (12 and 4). Durability does not depend on these:
// batches commit without sync and Persist flushes before Raft truncates its log
// (above).
func pebbleOptions(logger *slog.Logger) *pebble.Options {
	opts := &pebble.Options{
		Logger:                pebbleLogger{logger},
		FormatMajorVersion:    pebble.FormatNewest,
		CacheSize:             64 << 20,
		MemTableSize:          16 << 20,
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 48,
		// The default merger's name and results, at a cost linear in a key's operands
		// (concatmerger.go): the column chunks' appends (columnbatch.go).
		Merger: concatMerger,
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return opts
}

func openGeneration(dir string, logger *slog.Logger) (*generation, error) {
	db, err := pebble.Open(dir, pebbleOptions(logger))
	if err != nil {
		return nil, fmt.Errorf("open pebble store %s: %w", dir, err)
	}
	return &generation{db: db, dir: dir, logger: logger}, nil
}

func (g *generation) appliedIndex() (uint64, error) {
	v, ok, err := getRaw(g.db, keyAppliedIndex)
	if err != nil || !ok {
		return 0, err
	}
	return decodeUint64(v), nil
}

func (g *generation) close() {
	if err := g.db.Close(); err != nil {
		g.logger.Error("close pebble store", "dir", g.dir, "err", err)
	}
}

// acquire returns the live generation with a reference the caller must release.
func (f *FSM) acquire() *generation {
	f.mu.RLock()
	g := f.gen
	g.mu.Lock()
	g.refs++
	g.mu.Unlock()
	f.mu.RUnlock()
	return g
}

func (g *generation) release() {
	g.mu.Lock()
	g.refs--
	last := g.retired && g.refs == 0
	g.mu.Unlock()
	if last {
		g.destroy()
	}
}

// retire marks g replaced; it is closed and removed once no reader holds it.
func (g *generation) retire() {
	g.mu.Lock()
	g.retired = true
	last := g.refs == 0
	g.mu.Unlock()
	if last {
		g.destroy()
	}
}

func (g *generation) destroy() {
	g.close()
	if err := os.RemoveAll(g.dir); err != nil {
		g.logger.Error("remove retired store", "dir", g.dir, "err", err)
	}
}

// Close closes the store; later calls do nothing. The Raft node and the gRPC
// server must be stopped first.
func (f *FSM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.changes.closeAll()
	if err := f.gen.db.Close(); err != nil {
		return fmt.Errorf("close fsm store: %w", err)
	}
	return nil
}

// AppliedIndex is the index of the last Raft log entry reflected in the store.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Apply applies one log entry; Raft uses ApplyBatch, this is for the FSM interface.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed log entries in one Pebble batch that also records the
// applied index. Entries at or below the applied index (replayed after a restart)
// are skipped. The response of a command entry is its *metadatapb.CommandResult.
//
// A storage failure panics: the node cannot continue with a store that may lack a
// committed entry, and a restart replays the log from the store's applied index.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	responses := make([]any, len(logs))
	applied := f.applied.Load()
	g := f.acquire()
	defer g.release()
	b := g.db.NewIndexedBatch()
	defer b.Close()
	// Taken, so that a batch that does not commit hands nothing on.
	carried := g.carried
	g.carried = nil
	tx := newTxn(b, carried)
	tx.rewriteAppends = f.rewriteAppends.Load()
	tx.writeEach = f.writeEach.Load()
	defer tx.close()
	var events []ChangeEvent
	last := applied
	for i, l := range logs {
		if l.Index <= applied {
			continue
		}
		last = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		var cmd metadatapb.Command
		data, structures, taken := takeStructures(l.Data)
		if !taken {
			data = l.Data
		}
		if err := proto.Unmarshal(data, &cmd); err != nil {
			responses[i] = errorResult(errInvalid("decode command at index %d: %v", l.Index, err))
			continue
		}
		cmdStart := time.Now()
		res, evs := f.applyCommand(tx, l.Index, &cmd, structures)
		f.metrics.observeApply(&cmd, time.Since(cmdStart))
		responses[i] = res
		events = append(events, evs...)
	}
	if last == applied {
		return responses
	}
	if err := tx.writePending(nil, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: write the column chunks of the batch up to index %d: %v", last, err))
	}
	tx.mustSet(keyAppliedIndex, encodeUint64(last))
	tx.writeUnwritten(nil, nil)
	tx.close()
	if err := b.Commit(pebble.NoSync); err != nil {
		panic(fmt.Sprintf("metadata fsm: commit batch up to index %d: %v", last, err))
	}
	g.carried = tx.carry()
	f.applied.Store(last)
	f.changes.publish(events)
	f.metrics.observeBatch(time.Since(start))
	return responses
}

// Digest hashes every key and value of the store in key order. Two replicas that
// applied the same log prefix have the same digest.
func (f *FSM) Digest() ([]byte, error) {
	d, _, err := f.DigestAt()
	return d, err
}

// DigestAt is Digest with the applied index of the state it hashed: read from the same
// view, so a batch applied while the digest is taken cannot pair one index with another
// index's state (a status that read the index first and hashed a later state would call
// agreeing replicas diverged).
func (f *FSM) DigestAt() ([]byte, uint64, error) {
	v := f.view()
	defer v.close()
	applied, _, err := getRaw(v.r, keyAppliedIndex)
	if err != nil {
		return nil, 0, fmt.Errorf("digest: %w", err)
	}
	h := sha256.New()
	var lenBuf [binary.MaxVarintLen64]byte
	err = scan(v.r, nil, nil, func(k, val []byte) (bool, error) {
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(k)))])
		h.Write(k)
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(val)))])
		h.Write(val)
		return true, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("digest: %w", err)
	}
	return h.Sum(nil), decodeUint64(applied), nil
}

// Subscribe registers for change events of one mailbox (0: of every mailbox). The
// subscription must be closed.
func (f *FSM) Subscribe(mailboxID uint64) *Subscription {
	return f.changes.subscribe(mailboxID)
}

// SubscribeAccount registers for every change event of account: its mailboxes' and its
// subscription list's. The subscription must be closed.
func (f *FSM) SubscribeAccount(account string) *Subscription {
	return f.changes.subscribeAccount(account)
}

// reader is what both a Pebble snapshot and an indexed batch offer.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// getRaw returns a copy of the value at key.
func getRaw(r reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %q: %w", key, err)
	}
	out := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("get %q: %w", key, err)
	}
	return out, true, nil
}

// getProto decodes the value at key into m.
func getProto(r reader, key []byte, m proto.Message) (bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %q: %w", key, err)
	}
	defer closer.Close()
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

// scan calls fn for each key in [lower, upper) in order until fn returns false. The
// key and value are only valid during the call.
func scan(r reader, lower, upper []byte, fn func(k, v []byte) (bool, error)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("new iterator: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("read %q: %w", it.Key(), err)
		}
		more, err := fn(it.Key(), v)
		if err != nil {
			it.Close()
			return err
		}
		if !more {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("iterate: %w", err)
	}
	return nil
}

var marshalOpts = proto.MarshalOptions{Deterministic: true}

func mustMarshal(m proto.Message) []byte {
	b, err := marshalOpts.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("metadata fsm: marshal %T: %v", m, err))
	}
	return b
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
	panic("pebble: " + msg)
}
