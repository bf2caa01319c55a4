package replication

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// kvFSM is the test StateMachine: a key/value map kept in memory and in a bbolt file, with the
// applied index written in the same transaction as each batch. Commands are "key=value"; the
// response is the key's previous value, or an error for a malformed command.
type kvFSM struct {
	db        *bbolt.DB
	closeOnce sync.Once

	mu sync.Mutex
	kv map[string]string

	applied  atomic.Uint64
	applies  atomic.Int64 // entries applied
	skips    atomic.Int64 // entries handed over again and skipped as already applied
	restores atomic.Int64
}

var (
	bucketKV   = []byte("kv")
	bucketMeta = []byte("meta")
	keyApplied = []byte("applied")
)

func openKVFSM(t testing.TB, path string, noSync bool) *kvFSM {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: noSync})
	if err != nil {
		t.Fatalf("open fsm: %v", err)
	}
	f := &kvFSM{db: db, kv: map[string]string{}}
	t.Cleanup(f.close)
	err = db.Update(func(tx *bbolt.Tx) error {
		kv, err := tx.CreateBucketIfNotExists(bucketKV)
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyApplied); v != nil {
			f.applied.Store(binary.BigEndian.Uint64(v))
		}
		return kv.ForEach(func(k, v []byte) error {
			f.kv[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("load fsm: %v", err)
	}
	return f
}

func (f *kvFSM) close() { f.closeOnce.Do(func() { _ = f.db.Close() }) }

func (f *kvFSM) get(key string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.kv[key]
	return v, ok
}

func (f *kvFSM) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.kv)
}

func (f *kvFSM) AppliedIndex() uint64 { return f.applied.Load() }

func (f *kvFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f *kvFSM) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	applied := f.applied.Load()
	writes := map[string]string{}
	var last uint64
	err := f.db.Update(func(tx *bbolt.Tx) error {
		kv := tx.Bucket(bucketKV)
		for i, l := range logs {
			if l.Index <= applied {
				f.skips.Add(1)
				continue
			}
			last = l.Index
			if l.Type != raft.LogCommand {
				continue
			}
			key, value, ok := strings.Cut(string(l.Data), "=")
			if !ok {
				resp[i] = fmt.Errorf("malformed command %q", l.Data)
				continue
			}
			resp[i] = string(kv.Get([]byte(key)))
			if err := kv.Put([]byte(key), []byte(value)); err != nil {
				return err
			}
			writes[key] = value
			f.applies.Add(1)
		}
		if last == 0 {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(keyApplied, binary.BigEndian.AppendUint64(nil, last))
	})
	if err != nil {
		panic(fmt.Sprintf("kvFSM apply batch: %v", err))
	}
	f.mu.Lock()
	maps.Copy(f.kv, writes)
	f.mu.Unlock()
	if last > 0 {
		f.applied.Store(last)
	}
	return resp
}

type kvState struct {
	Applied uint64            `json:"applied"`
	KV      map[string]string `json:"kv"`
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &kvSnapshot{state: kvState{Applied: f.applied.Load(), KV: maps.Clone(f.kv)}}, nil
}

// SnapshotAppliedIndex reads the applied index of a snapshot (replication.SnapshotApplied).
func (f *kvFSM) SnapshotAppliedIndex(snapshot io.Reader) (uint64, error) {
	var state kvState
	if err := json.NewDecoder(snapshot).Decode(&state); err != nil {
		return 0, fmt.Errorf("decode kv snapshot: %w", err)
	}
	return state.Applied, nil
}

func (f *kvFSM) Restore(snapshot io.ReadCloser) error {
	var state kvState
	if err := json.NewDecoder(snapshot).Decode(&state); err != nil {
		return fmt.Errorf("decode kv snapshot: %w", err)
	}
	err := f.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketKV); err != nil {
			return err
		}
		kv, err := tx.CreateBucket(bucketKV)
		if err != nil {
			return err
		}
		for k, v := range state.KV {
			if err := kv.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyApplied, binary.BigEndian.AppendUint64(nil, state.Applied))
	})
	if err != nil {
		return fmt.Errorf("write kv snapshot: %w", err)
	}
	f.mu.Lock()
	f.kv = state.KV
	f.mu.Unlock()
	f.applied.Store(state.Applied)
	f.restores.Add(1)
	return nil
}

type kvSnapshot struct{ state kvState }

func (s *kvSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.state); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("encode kv snapshot: %w", err)
	}
	return sink.Close()
}

func (s *kvSnapshot) Release() {}
