package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/internal/fsync"
)

// Target is where backups are kept: a directory or an S3 bucket and prefix.
type Target interface {
	// Blobs is the content-addressed store of the bodies, shared by all backups.
	Blobs() blobstore.Store
	// WriteFile stores size bytes of r under name, replacing it; a reader sees the old
	// file or the whole new one.
	WriteFile(ctx context.Context, name string, r io.Reader, size int64) error
	// ReadFile opens name; blobstore.ErrNotFound (wrapped) if absent.
	ReadFile(ctx context.Context, name string) (io.ReadCloser, error)
	String() string
}

// Location is a parsed target: a directory, or a bucket and prefix on S3.
type Location struct {
	Dir    string
	Bucket string
	Prefix string // "" or ending in "/"
}

// bucketPattern is an S3 bucket name (3 to 63 lower-case letters, digits, dots, hyphens).
var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// maxPrefixLen bounds an S3 prefix (object names are at most 1024 bytes).
const maxPrefixLen = 512

// ParseLocation reads "s3://bucket/prefix" or a directory path.
func ParseLocation(spec string) (Location, error) {
	if spec == "" {
		return Location{}, errors.New("empty backup location")
	}
	rest, isS3 := strings.CutPrefix(spec, "s3://")
	if !isS3 {
		if strings.Contains(spec, "://") {
			return Location{}, fmt.Errorf("backup location %q: want a directory or s3://bucket/prefix", spec)
		}
		return Location{Dir: filepath.Clean(spec)}, nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if !bucketPattern.MatchString(bucket) || strings.Contains(bucket, "..") {
		return Location{}, fmt.Errorf("backup location %q: invalid bucket name %q", spec, bucket)
	}
	if len(prefix) > maxPrefixLen {
		return Location{}, fmt.Errorf("backup location %q: prefix longer than %d bytes", spec, maxPrefixLen)
	}
	for _, seg := range strings.Split(strings.Trim(prefix, "/"), "/") {
		if seg == "." || seg == ".." {
			return Location{}, fmt.Errorf("backup location %q: prefix has a %q segment", spec, seg)
		}
	}
	for _, r := range prefix {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return Location{}, fmt.Errorf("backup location %q: prefix has a control character or backslash", spec)
		}
	}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	return Location{Bucket: bucket, Prefix: prefix}, nil
}

// Open opens the target at loc; an S3 location uses the endpoint, credentials and TLS
// settings of conn (the blob store's --s3-* flags), with loc's bucket and prefix.
func Open(ctx context.Context, loc Location, conn *s3.Config) (Target, error) {
	if loc.Dir != "" {
		blobs, err := fs.New(filepath.Join(loc.Dir, strings.TrimSuffix(blobsDir, "/")))
		if err != nil {
			return nil, fmt.Errorf("open backup directory %s: %w", loc.Dir, err)
		}
		return &dirTarget{dir: loc.Dir, blobs: blobs}, nil
	}
	if conn == nil {
		return nil, fmt.Errorf("backup location s3://%s/%s needs the S3 endpoint (--s3-endpoint and the other --s3-* flags)", loc.Bucket, loc.Prefix)
	}
	files := *conn
	files.Bucket, files.Prefix = loc.Bucket, loc.Prefix
	fileStore, err := s3.New(ctx, files)
	if err != nil {
		return nil, err
	}
	bodies := files
	bodies.Prefix = loc.Prefix + blobsDir
	blobStore, err := s3.New(ctx, bodies)
	if err != nil {
		return nil, err
	}
	return &s3Target{files: fileStore, blobs: blobStore, name: "s3://" + loc.Bucket + "/" + loc.Prefix}, nil
}

type dirTarget struct {
	dir   string
	blobs *fs.Store
}

func (d *dirTarget) Blobs() blobstore.Store { return d.blobs }
func (d *dirTarget) String() string         { return d.dir }

func (d *dirTarget) WriteFile(_ context.Context, name string, r io.Reader, size int64) error {
	path := filepath.Join(d.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing
	n, err := io.Copy(tmp, r)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("wrote %d bytes, want %d", n, size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = fsync.Dir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (d *dirTarget) ReadFile(_ context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(d.dir, filepath.FromSlash(name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s in %s: %w", name, d.dir, blobstore.ErrNotFound)
	}
	return f, err
}

type s3Target struct {
	files, blobs *s3.Store
	name         string
}

func (s *s3Target) Blobs() blobstore.Store { return s.blobs }
func (s *s3Target) String() string         { return s.name }

func (s *s3Target) WriteFile(ctx context.Context, name string, r io.Reader, size int64) error {
	return s.files.PutFile(ctx, name, r, size)
}

func (s *s3Target) ReadFile(ctx context.Context, name string) (io.ReadCloser, error) {
	return s.files.GetFile(ctx, name)
}
