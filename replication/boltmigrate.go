package replication

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/strata-mail/strata/internal/fsync"
)

const (
	// boltLogFile is the raft-boltdb log and stable store that data directories written before
	// the Pebble log store hold; boltMigratedFile is its name once copied.
	boltLogFile      = "raft.db"
	boltMigratedFile = "raft.db.migrated"
	// boltMigrateBatch is how many logs go into one Pebble batch while copying.
	boltMigrateBatch = 1024
)

// boltStableBucket is raft-boltdb's bucket of stable keys (term, vote).
var boltStableBucket = []byte("conf")

// migrateBoltLogStore copies raftDir/raft.db (raft-boltdb) into the Pebble log store in logDir
// and renames raft.db to raft.db.migrated. It does nothing when there is no raft.db.
//
// It is safe to interrupt at any point: raft.db is renamed only after the copy, ending with
// boltMigratedKey, is committed with a WAL sync. A run that finds raft.db and no
// boltMigratedKey discards whatever a previous run copied and starts over; one that finds the
// key only finishes the rename. Raft never runs on the Pebble store while raft.db is there.
func migrateBoltLogStore(raftDir, logDir string, logger *slog.Logger) error {
	boltPath := filepath.Join(raftDir, boltLogFile)
	if _, err := os.Stat(boltPath); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("migrate raft log store: %w", err)
	}
	done, err := boltMigrationComplete(logDir, logger)
	if err != nil {
		return err
	}
	if !done {
		if err := os.RemoveAll(logDir); err != nil {
			return fmt.Errorf("migrate raft log store: discard a partial copy: %w", err)
		}
		copied, err := copyBoltLogStore(boltPath, logDir, logger)
		if err != nil {
			return err
		}
		logger.Info("copied the bolt raft log store into pebble", "logs", copied, "from", boltPath, "to", logDir)
	}
	// The copy's directory entry must be durable before raft.db's rename can be.
	if err := fsync.Dir(raftDir); err != nil {
		return fmt.Errorf("migrate raft log store: %w", err)
	}
	if err := os.Rename(boltPath, filepath.Join(raftDir, boltMigratedFile)); err != nil {
		return fmt.Errorf("migrate raft log store: set %s aside: %w", boltPath, err)
	}
	if err := fsync.Dir(raftDir); err != nil {
		return fmt.Errorf("migrate raft log store: %w", err)
	}
	return nil
}

// boltMigrationComplete reports whether logDir holds a finished copy of raft.db.
func boltMigrationComplete(logDir string, logger *slog.Logger) (bool, error) {
	if _, err := os.Stat(logDir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	store, err := openLogStore(logDir, logger)
	if err != nil {
		return false, err
	}
	defer func() { _ = store.Close() }()
	_, closer, err := store.db.Get(boltMigratedKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("migrate raft log store: %w", err)
	}
	_ = closer.Close()
	return true, nil
}

// copyBoltLogStore copies every log and stable key of the bolt store at boltPath into a new
// Pebble log store in logDir, the last batch carrying boltMigratedKey and committed with a
// sync. It returns how many logs it copied.
func copyBoltLogStore(boltPath, logDir string, logger *slog.Logger) (int, error) {
	stable, err := readBoltStable(boltPath)
	if err != nil {
		return 0, err
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        boltPath,
		BoltOptions: &bbolt.Options{Timeout: storeOpenTimeout, ReadOnly: true},
	})
	if err != nil {
		return 0, fmt.Errorf("migrate raft log store: open %s: %w", boltPath, err)
	}
	defer func() { _ = bolt.Close() }()
	first, err := bolt.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("migrate raft log store: %w", err)
	}
	last, err := bolt.LastIndex()
	if err != nil {
		return 0, fmt.Errorf("migrate raft log store: %w", err)
	}

	store, err := openLogStore(logDir, logger)
	if err != nil {
		return 0, err
	}
	defer func() { _ = store.Close() }()
	b := store.db.NewBatch()
	defer func() { _ = b.Close() }()
	var (
		buf    []byte
		copied int
	)
	for index := first; first > 0 && index <= last; index++ {
		var entry raft.Log
		err := bolt.GetLog(index, &entry)
		if errors.Is(err, raft.ErrLogNotFound) {
			continue // bolt allows gaps; copy what is there
		}
		if err != nil {
			return copied, fmt.Errorf("migrate raft log store: read log %d: %w", index, err)
		}
		buf = encodeLog(buf[:0], &entry)
		if err := b.Set(logKey(index), buf, nil); err != nil {
			return copied, fmt.Errorf("migrate raft log store: %w", err)
		}
		copied++
		if b.Count() >= boltMigrateBatch {
			// Synced like the last batch, so that the marker can only be durable after
			// everything before it, whatever WAL files the copy spans.
			if err := b.Commit(pebble.Sync); err != nil {
				return copied, fmt.Errorf("migrate raft log store: %w", err)
			}
			b.Reset()
		}
	}
	for k, v := range stable {
		if err := b.Set(stableKey([]byte(k)), v, nil); err != nil {
			return copied, fmt.Errorf("migrate raft log store: %w", err)
		}
	}
	if err := b.Set(boltMigratedKey, nil, nil); err != nil {
		return copied, fmt.Errorf("migrate raft log store: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return copied, fmt.Errorf("migrate raft log store: commit the copy: %w", err)
	}
	return copied, nil
}

// readBoltStable reads every key of raft-boltdb's stable bucket.
func readBoltStable(boltPath string) (map[string][]byte, error) {
	db, err := bbolt.Open(boltPath, 0o600, &bbolt.Options{Timeout: storeOpenTimeout, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("migrate raft log store: open %s: %w", boltPath, err)
	}
	defer func() { _ = db.Close() }()
	stable := map[string][]byte{}
	err = db.View(func(tx *bbolt.Tx) error {
		bucket := tx.Bucket(boltStableBucket)
		if bucket == nil {
			return nil
		}
		return bucket.ForEach(func(k, v []byte) error {
			stable[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("migrate raft log store: read stable keys of %s: %w", boltPath, err)
	}
	return stable, nil
}
