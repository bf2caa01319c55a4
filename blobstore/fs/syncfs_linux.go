package fs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFilesystem makes everything written to the filesystem that holds dir durable:
// syncfs(2), which reports writeback errors since Linux 5.8.
func syncFilesystem(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}
