package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
)

// crashFS is a fileSystem that models what a power loss keeps: it passes every
// operation to the operating system under root and records, per file, its bytes as of
// its last fsync and, per directory, its entries as of its last fsync. crash writes what
// would survive a power loss at that moment to another directory: each directory with
// the entries it had at its last fsync, each file with the bytes it had at its last
// fsync (none if it never had one). Nothing else survives: no write without an fsync, no
// create, rename or removal without an fsync of its directory. (A real machine may keep
// more; a test that passes on this keeps no less than POSIX promises.)
type crashFS struct {
	osFS
	root string

	mu     sync.Mutex
	byPath map[string]*crashNode // the live tree, by path
}

// crashNode is a file or a directory of a crashFS.
type crashNode struct {
	dir     bool
	path    string // where it is now ("" once removed)
	durable []byte // a file's bytes at its last fsync
	live    map[string]*crashNode
	synced  map[string]*crashNode // a directory's entries at its last fsync
}

// newCrashFS models the tree under root, which it takes as durable as it is.
func newCrashFS(t *testing.T, root string) *crashFS {
	c := &crashFS{root: root, byPath: map[string]*crashNode{}}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n := &crashNode{dir: d.IsDir(), path: path}
		if n.dir {
			n.live = map[string]*crashNode{}
		} else if n.durable, err = os.ReadFile(path); err != nil {
			return err
		}
		c.byPath[path] = n
		if path != root {
			c.byPath[filepath.Dir(path)].live[d.Name()] = n
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.byPath {
		if n.dir {
			n.synced = maps.Clone(n.live)
		}
	}
	return c
}

// link puts n in the live tree at path. The caller holds c.mu.
func (c *crashFS) link(path string, n *crashNode) {
	if old := c.byPath[path]; old != nil {
		old.path = ""
	}
	n.path = path
	c.byPath[path] = n
	if parent := c.byPath[filepath.Dir(path)]; parent != nil {
		parent.live[filepath.Base(path)] = n
	}
}

// unlink takes path out of the live tree. The caller holds c.mu.
func (c *crashFS) unlink(path string) *crashNode {
	n := c.byPath[path]
	delete(c.byPath, path)
	if parent := c.byPath[filepath.Dir(path)]; parent != nil {
		delete(parent.live, filepath.Base(path))
	}
	return n
}

func (c *crashFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	n := c.byPath[name]
	if n == nil {
		n = &crashNode{}
		c.link(name, n)
	}
	return &crashFile{File: f, c: c, n: n}, nil
}

func (c *crashFS) Rename(oldpath, newpath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	if n := c.unlink(oldpath); n != nil {
		c.link(newpath, n)
	}
	return nil
}

func (c *crashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.Remove(name); err != nil {
		return err
	}
	if n := c.unlink(name); n != nil {
		n.path = ""
	}
	return nil
}

func (c *crashFS) Mkdir(name string, perm os.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.Mkdir(name, perm); err != nil {
		return err
	}
	c.link(name, &crashNode{dir: true, live: map[string]*crashNode{}, synced: map[string]*crashNode{}})
	return nil
}

func (c *crashFS) MkdirAll(name string, perm os.FileMode) error {
	if _, err := os.Stat(name); err == nil {
		return nil
	}
	if err := c.MkdirAll(filepath.Dir(name), perm); err != nil {
		return err
	}
	if err := c.Mkdir(name, perm); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

func (c *crashFS) SyncDir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.byPath[dir]; n != nil && n.dir {
		n.synced = maps.Clone(n.live)
	}
	return nil
}

// SyncAll is syncfs(2): every file and directory durable as it is.
func (c *crashFS) SyncAll(string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for path, n := range c.byPath {
		if n.dir {
			n.synced = maps.Clone(n.live)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n.durable = data
	}
	return nil
}

// crash writes what a power loss now would leave of the tree to dst. It calls atCut
// first, at the instant of the power loss: no fsync runs meanwhile.
func (c *crashFS) crash(t *testing.T, dst string, atCut func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	atCut()
	var write func(n *crashNode, path string)
	write = func(n *crashNode, path string) {
		if !n.dir {
			if err := os.WriteFile(path, n.durable, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.MkdirAll(path, 0o750); err != nil {
			t.Fatal(err)
		}
		for name, child := range n.synced {
			write(child, filepath.Join(path, name))
		}
	}
	write(c.byPath[c.root], dst)
}

// crashFile is a file of a crashFS: its Sync records its bytes as durable.
type crashFile struct {
	*os.File
	c *crashFS
	n *crashNode
}

func (f *crashFile) Sync() error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	info, err := f.File.Stat()
	if err != nil {
		return err
	}
	data := make([]byte, info.Size())
	if _, err := f.File.ReadAt(data, 0); err != nil {
		return err
	}
	f.n.durable = data
	return nil
}

// TestPowerLossKeepsAcknowledged: the store runs on a crashFS while writers put (packed
// and as files), stage and SyncStaged, and delete bodies; at a point in the middle the
// power is cut (crash), and a store opened on what survives has every body acknowledged
// before the cut (Put returned nil, or Stage and then Sync or SyncStaged did) and none
// whose deletion was acknowledged. Unlike the SIGKILL test, this fails if an fsync on the
// acknowledged path is left out.
func TestPowerLossKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("writes thousands of bodies")
	}
	root := filepath.Join(t.TempDir(), "r0")
	if err := os.Mkdir(root, 0o750); err != nil {
		t.Fatal(err)
	}
	type acked struct {
		seed uint64
		size int
	}
	live := map[string]acked{}
	deleted := map[string]bool{}
	for round := range 3 {
		cfs := newCrashFS(t, root)
		s, err := Open(root, Options{Own: true, PackSmall: true, SegmentSize: 64 << 10, fsys: cfs})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		acks := 0
		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				var mine []string
				type stagedBody struct {
					key string
					acked
				}
				var staged []stagedBody
				for i := uint64(0); ctx.Err() == nil; i++ {
					seed := uint64(round)<<48 + uint64(w)<<32 + i
					size := 1 + int(seed*2654435761%8192)
					if i%20 == 19 {
						size = PackMax + 1 + int(seed%1000) // a file of its own
					}
					body := seededBody(seed, size)
					key := blobstore.Key("acme", sha256.Sum256(body))
					st, err := s.Stage(ctx, key, bytes.NewReader(body), int64(size))
					if err != nil {
						return
					}
					if w == 0 {
						// Acknowledged by SyncStaged, as before a raft snapshot.
						staged = append(staged, stagedBody{key, acked{seed, size}})
						if len(staged) < 8 {
							continue
						}
						if s.SyncStaged(ctx) != nil {
							return
						}
						mu.Lock()
						for _, b := range staged {
							live[b.key] = b.acked
						}
						mu.Unlock()
						staged = staged[:0]
						continue
					}
					if st.Sync() != nil {
						return
					}
					mu.Lock()
					live[key] = acked{seed, size}
					acks++
					mu.Unlock()
					mine = append(mine, key)
					if i%3 != 0 && len(mine) > 1 {
						victim := mine[0]
						mine = mine[1:]
						mu.Lock()
						delete(live, victim) // either way until the Delete returns
						mu.Unlock()
						if s.Delete(ctx, victim) != nil {
							return
						}
						mu.Lock()
						deleted[victim] = true
						mu.Unlock()
					}
				}
			})
		}
		for {
			mu.Lock()
			n := acks
			mu.Unlock()
			if n >= 600 {
				break
			}
			if err := ctx.Err(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		// What was acknowledged when the power went: a body whose Delete had begun may be
		// there or not (it left live before its Delete began).
		var wantLive map[string]acked
		var wantDeleted map[string]bool
		next := filepath.Join(filepath.Dir(root), fmt.Sprintf("r%d", round+1))
		cfs.crash(t, next, func() {
			mu.Lock()
			wantLive, wantDeleted = maps.Clone(live), maps.Clone(deleted)
			mu.Unlock()
		})
		stop()
		wg.Wait()
		s.Close()
		root = next
		s, err = Open(root, Options{Own: true, PackSmall: true, SegmentSize: 64 << 10})
		if err != nil {
			t.Fatalf("round %d: open after the power loss: %v", round, err)
		}
		for key, a := range wantLive {
			if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, seededBody(a.seed, a.size)) {
				t.Fatalf("round %d: acknowledged body %s (%d bytes) after the power loss: %d bytes, %v", round, key, a.size, len(got), err)
			}
		}
		for key := range wantDeleted {
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, blobstore.ErrNotFound) {
				t.Fatalf("round %d: acknowledged deletion of %s undone by the power loss: Stat gave %v", round, key, err)
			}
		}
		s.Close() // first: an open store reclaims segments in the background
		n, size := segmentBytes(t, root)
		t.Logf("round %d: %d bodies acknowledged, %d deletions, %d segments of %d bytes", round, len(wantLive), len(wantDeleted), n, size)
		mu.Lock()
		live, deleted = wantLive, wantDeleted
		mu.Unlock()
	}
}
