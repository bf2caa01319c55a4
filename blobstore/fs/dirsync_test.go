package fs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/internal/fsync"
)

// syncLog wraps a store's directory fsync: it lists each directory as an fsync of it starts
// (the entries that fsync makes durable), can hold the first fsync of one directory until
// released, and can fail the fsyncs of one directory.
type syncLog struct {
	mu      sync.Mutex
	covered map[string]map[string]bool // dir -> names listed at the start of a successful fsync
	calls   map[string]int
	hold    string        // dir whose first fsync waits for release
	release chan struct{} // closed to let it go
	failDir string        // dir whose fsyncs after the first fail
}

var errInjected = errors.New("injected fsync failure")

func installSyncLog(s *Store, l *syncLog) {
	l.covered, l.calls = map[string]map[string]bool{}, map[string]int{}
	s.dirSyncs.sync = func(dir string) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.calls[dir]++
		n := l.calls[dir]
		l.mu.Unlock()
		if dir == l.hold && n == 1 {
			<-l.release
		}
		if dir == l.failDir && n > 1 {
			return errInjected
		}
		if err := fsync.Dir(dir); err != nil {
			return err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.covered[dir] == nil {
			l.covered[dir] = map[string]bool{}
		}
		for _, e := range entries {
			l.covered[dir][e.Name()] = true
		}
		return nil
	}
}

// durableEntry reports whether name in dir was listed at the start of an fsync of dir that
// succeeded.
func (l *syncLog) durableEntry(path string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.covered[filepath.Dir(path)][filepath.Base(path)]
}

func (l *syncLog) count(dir string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[dir]
}

func numberedBody(writer, n int) []byte {
	body := bytes.Repeat([]byte("y"), 2048)
	binary.LittleEndian.PutUint64(body, uint64(writer))
	binary.LittleEndian.PutUint64(body[8:], uint64(n))
	return body
}

// TestConcurrentPutsAreDurable runs many Puts at once and checks, for every Put that
// returned, that its object and every directory on its path were in their directory when an
// fsync of that directory started (so the fsync covered them) and that it reads back.
func TestConcurrentPutsAreDurable(t *testing.T) {
	s := newStore(t)
	l := &syncLog{}
	installSyncLog(s, l)
	const writers, each = 32, 8
	keys := make([][]string, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for n := range each {
				body := numberedBody(w, n)
				key := blobstore.Key("acme", sha256.Sum256(body))
				if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				dirs, path, _, _ := s.objectPath(key)
				for _, p := range append(dirs, path) {
					if !l.durableEntry(p) {
						t.Errorf("Put of %s returned before an fsync of %s covered %s", key, filepath.Dir(p), filepath.Base(p))
					}
				}
				keys[w] = append(keys[w], key)
			}
		})
	}
	wg.Wait()
	for w := range writers {
		for n, key := range keys[w] {
			checkStored(t, s, key, numberedBody(w, n))
		}
	}
	total := 0
	for _, c := range l.calls {
		total += c
	}
	t.Logf("%d Puts, %d directory fsyncs", writers*each, total)
}

func checkStored(t *testing.T, s *Store, key string, want []byte) {
	t.Helper()
	rc, err := s.Get(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer rc.Close()
	got := new(bytes.Buffer)
	if _, err := got.ReadFrom(rc); err != nil || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("Get %s: %d bytes, %v; want the %d put", key, got.Len(), err, len(want))
	}
}

// heldPuts starts puts Puts of distinct new bodies while the first fsync of the store's
// root (which every Put into a new store fsyncs: it creates t/) is held, waits until all but
// the first wait on the next round of it, releases the held fsync and returns each Put's
// error.
func heldPuts(t *testing.T, s *Store, l *syncLog, puts int) []error {
	t.Helper()
	l.hold, l.release = s.root, make(chan struct{})
	errs := make([]error, puts)
	var wg sync.WaitGroup
	for i := range puts {
		wg.Go(func() {
			body := numberedBody(1000, i)
			errs[i] = s.Put(t.Context(), blobstore.Key("acme", sha256.Sum256(body)), bytes.NewReader(body), int64(len(body)))
		})
	}
	// The first Put to reach the root's fsync holds it; each of the others joins the next
	// round once it has renamed its object.
	for l.count(s.root) == 0 || s.dirSyncs.waiting(s.root) < puts-1 {
		runtime.Gosched()
	}
	close(l.release)
	wg.Wait()
	return errs
}

// TestPutsShareDirectoryFsync: Puts that need a directory synced while an fsync of it is in
// flight share the next one.
func TestPutsShareDirectoryFsync(t *testing.T) {
	s := newStore(t)
	l := &syncLog{}
	installSyncLog(s, l)
	const puts = 16
	for i, err := range heldPuts(t, s, l, puts) {
		if err != nil {
			t.Errorf("Put #%d: %v", i, err)
		}
	}
	if got := l.count(s.root); got != 2 {
		t.Errorf("%d Puts fsynced the root %d times, want 2 (the held one and one shared by the rest)", puts, got)
	}
	for i := range puts {
		body := numberedBody(1000, i)
		checkStored(t, s, blobstore.Key("acme", sha256.Sum256(body)), body)
	}
}

// TestFailedFsyncFailsEveryWaiter: when the fsync that Puts share fails, every one of them
// fails, and a later Put of the same body stores it durably.
func TestFailedFsyncFailsEveryWaiter(t *testing.T) {
	s := newStore(t)
	l := &syncLog{failDir: s.root}
	installSyncLog(s, l)
	const puts = 8
	errs := heldPuts(t, s, l, puts)
	failed := 0
	for _, err := range errs {
		if errors.Is(err, errInjected) {
			failed++
		} else if err != nil {
			t.Errorf("Put: %v, want nil or the injected failure", err)
		}
	}
	if failed != puts-1 {
		t.Fatalf("%d of %d Puts failed; want all %d that waited on the failed fsync", failed, puts, puts-1)
	}
	l.mu.Lock()
	l.failDir = ""
	l.mu.Unlock()
	for i := range puts {
		body := numberedBody(1000, i)
		key := blobstore.Key("acme", sha256.Sum256(body))
		if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatalf("Put again after the failed fsync: %v", err)
		}
		dirs, path, _, _ := s.objectPath(key)
		for _, p := range append(dirs, path) {
			if !l.durableEntry(p) {
				t.Errorf("Put again of body %d returned before an fsync covered %s", i, p)
			}
		}
		checkStored(t, s, key, body)
	}
}

func TestDirSyncerRounds(t *testing.T) {
	d := newDirSyncer()
	var mu sync.Mutex
	calls := 0
	gate := make(chan struct{})
	d.sync = func(dir string) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			<-gate
		}
		return fmt.Errorf("fsync #%d", n)
	}
	first := d.begin([]string{"/x"})
	var waits []func() error
	for range 5 {
		waits = append(waits, d.begin([]string{"/x"}))
	}
	close(gate)
	if err := first(); err == nil || err.Error() != "fsync #1" {
		t.Errorf("first caller got %v, want fsync #1", err)
	}
	for _, wait := range waits {
		if err := wait(); err == nil || err.Error() != "fsync #2" {
			t.Errorf("a caller that joined during fsync #1 got %v, want fsync #2", err)
		}
	}
	if err := d.begin([]string{"/x"})(); err == nil || err.Error() != "fsync #3" {
		t.Errorf("a caller after both got %v, want fsync #3", err)
	}
	// The last round's goroutine forgets the directory after its waiters are released.
	for {
		d.mu.Lock()
		left := len(d.dirs)
		d.mu.Unlock()
		if left == 0 {
			break
		}
		runtime.Gosched()
	}
}
