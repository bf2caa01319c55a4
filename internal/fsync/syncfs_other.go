//go:build !linux

package fsync

import (
	"fmt"
	"os"
	"syscall"
)

// Filesystem makes durable everything written to the file system that holds path, by
// anyone. Without syncfs(2) it syncs every file system (sync(2)).
func Filesystem(path string) error {
	filesystemSyncs.Add(1)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("sync file system: %w", err)
	}
	syscall.Sync()
	return nil
}
