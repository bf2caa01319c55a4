// Package fsync holds the durability steps Strata's on-disk stores and key files repeat:
// making a directory's entries (files created, renamed or removed in it) durable, and
// replacing a small file whole.
package fsync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Dir fsyncs the directory dir, so that the entries created, renamed or removed in it
// survive a crash of the machine.
func Dir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// WriteFile replaces path with data, readable as mode says, through a temporary file in the
// same directory, synced and renamed over it: a reader (a SIGHUP reload) sees the old file or
// the new one, never half of one, and a key file is never readable by others, not even
// while it is written.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Dir(dir)
}

// filesystemSyncs counts the calls of Filesystem.
var filesystemSyncs atomic.Int64

// FilesystemSyncs returns how many times this process has synced a whole file system
// (Filesystem): a sync of the whole file system is costly on a shared disk, and tests
// tell by it whether a start needed one.
func FilesystemSyncs() int64 { return filesystemSyncs.Load() }
