package s3

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/storetest"
	"github.com/strata-mail/strata/internal/s3test"
)

var bucketSeq atomic.Int64

// testConfig returns a configuration for a new bucket on srv.
func testConfig(srv *s3test.Server) Config {
	return Config{
		Endpoint:   srv.Endpoint,
		Bucket:     fmt.Sprintf("strata-test-%d-%d", time.Now().UnixNano()%1e9, bucketSeq.Add(1)),
		AccessKey:  srv.AccessKey,
		SecretKey:  srv.SecretKey,
		Insecure:   srv.CAFile == "",
		CAFile:     srv.CAFile,
		Addressing: AddressingPath,
		Timeout:    10 * time.Second,
	}
}

func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	storetest.Run(t, func(t *testing.T) blobstore.Store {
		return newTestStore(t, testConfig(srv))
	})
}
