//go:build !linux

package fs

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/strata-mail/strata/internal/fsync"
)

// syncFilesystem makes the files in dir and dir itself durable (syncfs(2) on Linux).
func syncFilesystem(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = errors.Join(f.Sync(), f.Close())
		if err != nil {
			return err
		}
	}
	return fsync.Dir(dir)
}
