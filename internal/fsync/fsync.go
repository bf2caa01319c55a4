// Package fsync holds the one durability step every on-disk store of Strata repeats: making
// a directory's entries (files created, renamed or removed in it) durable.
package fsync

import (
	"errors"
	"fmt"
	"os"
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
