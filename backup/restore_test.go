package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreRefusesKeptState: restore builds a new data directory; a metadata store, a
// raft log or a search index left in it would outlive the restored state (a search index of
// a later state misses the messages that take its UIDs again), so each is refused by name.
func TestRestoreRefusesKeptState(t *testing.T) {
	for _, sub := range []string{"fsm", filepath.Join("raft", "raft"), "searchindex"} {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub, "000001.log"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Restore(t.Context(), RestoreConfig{DataDir: dir, Layout: ForServe})
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, sub)+" is not empty") {
			t.Errorf("restore into a directory holding %s: %v, want it refused by name", sub, err)
		}
	}
}
