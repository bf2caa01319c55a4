package fsync

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Filesystem makes durable everything written to the file system that holds path, by
// anyone (syncfs(2)): the way to make durable what a killed process wrote and never synced.
func Filesystem(path string) error {
	filesystemSyncs.Add(1)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync file system: %w", err)
	}
	serr := unix.Syncfs(int(f.Fd()))
	if err := errors.Join(serr, f.Close()); err != nil {
		return fmt.Errorf("sync file system of %s: %w", path, err)
	}
	return nil
}
