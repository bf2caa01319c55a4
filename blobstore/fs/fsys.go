package fs

import (
	"io"
	"os"

	"github.com/strata-mail/strata/internal/fsync"
)

// fileSystem is every file operation of the store: the operating system's (osFS) and, in
// tests, a model of what a power loss keeps (crashfs_test.go), which sees every write,
// fsync, create, rename and removal.
type fileSystem interface {
	OpenFile(name string, flag int, perm os.FileMode) (file, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	Mkdir(name string, perm os.FileMode) error
	MkdirAll(name string, perm os.FileMode) error
	Lstat(name string) (os.FileInfo, error)
	Stat(name string) (os.FileInfo, error)
	ReadDir(name string) ([]os.DirEntry, error)
	ReadFile(name string) ([]byte, error)
	Truncate(name string, size int64) error
	// SyncDir fsyncs a directory (fsync.Dir).
	SyncDir(dir string) error
	// SyncAll makes durable everything written to the file system that holds path
	// (fsync.Filesystem, syncfs(2)).
	SyncAll(path string) error
}

// file is an open file of a fileSystem; *os.File is one.
type file interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	Sync() error
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
	Name() string
}

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil interface
	}
	return f, nil
}
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Mkdir(name string, perm os.FileMode) error    { return os.Mkdir(name, perm) }
func (osFS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }
func (osFS) Lstat(name string) (os.FileInfo, error)       { return os.Lstat(name) }
func (osFS) Stat(name string) (os.FileInfo, error)        { return os.Stat(name) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) ReadFile(name string) ([]byte, error)         { return os.ReadFile(name) }
func (osFS) Truncate(name string, size int64) error       { return os.Truncate(name, size) }
func (osFS) SyncDir(dir string) error                     { return fsync.Dir(dir) }
func (osFS) SyncAll(path string) error                    { return fsync.Filesystem(path) }
func open(fsys fileSystem, name string) (file, error)     { return fsys.OpenFile(name, os.O_RDONLY, 0) }
