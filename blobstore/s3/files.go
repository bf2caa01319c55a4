package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// Named files beside the bodies, for what is not content-addressed: a backup's manifest
// and metadata snapshot (backup/). Names are object names under the store's prefix; they
// go through no key check, so callers build them from their own fixed parts.

// PutFile stores size bytes of r as the object prefix+name, replacing it.
func (s *Store) PutFile(ctx context.Context, name string, r io.Reader, size int64) error {
	if _, err := s.client.PutObject(ctx, s.bucket, s.prefix+name, r, size, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("put %s: %w", name, s.classify(ctx, ctx, "PUT", err))
	}
	return nil
}

// GetFile returns the object prefix+name; blobstore.ErrNotFound (wrapped) if absent.
func (s *Store) GetFile(ctx context.Context, name string) (io.ReadCloser, error) {
	if _, err := s.client.StatObject(ctx, s.bucket, s.prefix+name, minio.StatObjectOptions{}); err != nil {
		return nil, fmt.Errorf("get %s: %w", name, s.classify(ctx, ctx, "HEAD", err))
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, s.classify(ctx, ctx, "GET", err))
	}
	return obj, nil
}
