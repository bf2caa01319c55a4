package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

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

func body(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func put(t *testing.T, s *Store, tenant string, b []byte) string {
	t.Helper()
	key := blobstore.Key(tenant, sha256.Sum256(b))
	if err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	return key
}

func readAll(ctx context.Context, s *Store, key string, offset, length int64) ([]byte, error) {
	rc, err := s.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestPutLayoutAndDedup checks where a body lands in the bucket, that the server records its
// SHA-256 checksum, and that a second Put of it is a dedup hit that uploads nothing.
func TestPutLayoutAndDedup(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	cfg := testConfig(srv)
	cfg.Prefix = "strata/"
	s := newTestStore(t, cfg)
	if !s.ConditionalPut() {
		t.Errorf("versitygw %s does not refuse If-None-Match: * over an existing object", s3test.Version)
	}
	t.Logf("conditional PUT: %v, HEAD before PUT: %v", s.ConditionalPut(), s.StatBeforePut())
	b := body(300<<10, 1)
	key := put(t, s, "acme", b)

	onDisk, err := os.ReadFile(srv.ObjectPath(cfg.Bucket, "strata/"+key))
	if err != nil || !bytes.Equal(onDisk, b) {
		t.Fatalf("object file %s: %d bytes, %v; want the %d bytes put", "strata/"+key, len(onDisk), err, len(b))
	}
	sum := sha256.Sum256(b)
	info, err := s.client.StatObject(t.Context(), cfg.Bucket, "strata/"+key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		t.Fatalf("StatObject: %v", err)
	}
	if got, want := info.ChecksumSHA256, base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("stored x-amz-checksum-sha256 = %q, want %q", got, want)
	}

	before := s.Metrics()
	r := bytes.NewReader(b)
	if err := s.Put(t.Context(), key, r, int64(len(b))); err != nil {
		t.Fatalf("dedup Put: %v", err)
	}
	after := s.Metrics()
	if after.DedupHits != before.DedupHits+1 {
		t.Errorf("DedupHits went from %d to %d, want one more", before.DedupHits, after.DedupHits)
	}
	if read := len(b) - r.Len(); read != 0 {
		t.Errorf("dedup Put read %d body bytes, want 0", read)
	}
	if got, err := readAll(t.Context(), s, key, 0, -1); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Get after dedup Put: %d bytes, %v", len(got), err)
	}
}

// TestDedupPaths runs a dedup Put through each way Put can take: HEAD first with and
// without a conditional PUT, and a conditional PUT alone answered 412.
func TestDedupPaths(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	for i, mode := range []struct{ conditional, statFirst bool }{{false, true}, {true, true}, {true, false}} {
		s := newTestStore(t, testConfig(srv))
		s.conditionalPut, s.statBeforePut = mode.conditional, mode.statFirst
		b := body(64<<10, byte(20+i))
		key := put(t, s, "acme", b)
		r := bytes.NewReader(b)
		if err := s.Put(t.Context(), key, r, int64(len(b))); err != nil {
			t.Fatalf("%+v: dedup Put: %v", mode, err)
		}
		if read := len(b) - r.Len(); mode.statFirst && read != 0 {
			t.Errorf("%+v: dedup Put read %d bytes, want 0", mode, read)
		}
		if m := s.Metrics(); m.DedupHits != 1 || m.Put.Errors != 0 {
			t.Errorf("%+v: metrics after a Put and a dedup hit: %+v", mode, m)
		}
		if got, err := readAll(t.Context(), s, key, 0, -1); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%+v: Get after dedup Put: %d bytes, %v", mode, len(got), err)
		}
	}
}

// corrupt rewrites the object file of key on srv with content.
func corrupt(t *testing.T, srv *s3test.Server, s *Store, key string, content []byte) {
	t.Helper()
	f, err := os.OpenFile(srv.ObjectPath(s.Bucket(), s.ObjectName(key)), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptBodyIsReported(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	s := newTestStore(t, testConfig(srv))
	b := body(200<<10, 3)
	key := put(t, s, "acme", b)
	flipped := bytes.Clone(b)
	flipped[150<<10] ^= 0x01
	corrupt(t, srv, s, key, flipped)
	for _, r := range []struct{ offset, length int64 }{{0, -1}, {0, int64(len(b))}, {0, int64(len(b)) + 100}} {
		got, err := readAll(t.Context(), s, key, r.offset, r.length)
		if !errors.Is(err, blobstore.ErrCorrupt) {
			t.Errorf("Get(%d, %d) of a flipped body: %d bytes, %v; want ErrCorrupt", r.offset, r.length, len(got), err)
		}
	}
	// A part of the body cannot be checked against the key; it is served as stored.
	if got, err := readAll(t.Context(), s, key, 0, 4096); err != nil || !bytes.Equal(got, b[:4096]) {
		t.Errorf("Get(0, 4096): %d bytes, %v", len(got), err)
	}
	corrupt(t, srv, s, key, b[:len(b)-10])
	if got, err := readAll(t.Context(), s, key, 0, -1); !errors.Is(err, blobstore.ErrCorrupt) {
		t.Errorf("Get of a truncated body: %d bytes, %v; want ErrCorrupt", len(got), err)
	}
	if m := s.Metrics(); m.Corrupt != 4 {
		t.Errorf("Metrics().Corrupt = %d, want 4", m.Corrupt)
	}
}

// checkUnavailable runs op and checks that it fails with ErrUnavailable and does not hang.
func checkUnavailable(t *testing.T, name string, timeout time.Duration, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	err := op(ctx)
	elapsed := time.Since(start)
	if !errors.Is(err, blobstore.ErrUnavailable) {
		t.Errorf("%s = %v, want ErrUnavailable", name, err)
	}
	if ctx.Err() != nil || elapsed > 3*timeout {
		t.Errorf("%s took %v with a timeout of %v", name, elapsed, timeout)
	}
}

// checkWorks puts a new body and reads it and an older one back.
func checkWorks(t *testing.T, s *Store, oldKey string, old []byte, seed byte) {
	t.Helper()
	b := body(100<<10, seed)
	key := put(t, s, "acme", b)
	for k, want := range map[string][]byte{key: b, oldKey: old} {
		if got, err := readAll(t.Context(), s, k, 0, -1); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get(%s): %d bytes, %v", k, len(got), err)
		}
	}
}

func unavailableOps(t *testing.T, s *Store, key string, seed byte) map[string]func(ctx context.Context) error {
	fresh := body(1<<20, seed)
	return map[string]func(ctx context.Context) error{
		"Put": func(ctx context.Context) error {
			return s.Put(ctx, blobstore.Key("acme", sha256.Sum256(fresh)), bytes.NewReader(fresh), int64(len(fresh)))
		},
		"Get": func(ctx context.Context) error {
			_, err := readAll(ctx, s, key, 0, -1)
			return err
		},
		"Stat": func(ctx context.Context) error {
			_, err := s.Stat(ctx, key)
			return err
		},
		"Delete": func(ctx context.Context) error {
			return s.Delete(ctx, blobstore.Key("acme", sha256.Sum256([]byte("absent"))))
		},
	}
}

// TestServerStopped stops the S3 server under a store, checks that every call fails with
// ErrUnavailable, starts the server again and checks that the same store works.
func TestServerStopped(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	cfg := testConfig(srv)
	cfg.Timeout, cfg.Retries = 2*time.Second, 2
	s := newTestStore(t, cfg)
	b := body(100<<10, 4)
	key := put(t, s, "acme", b)

	srv.Stop()
	for name, op := range unavailableOps(t, s, key, 5) {
		checkUnavailable(t, name+" with the server stopped", cfg.Timeout, op)
	}
	srv.Start()
	checkWorks(t, s, key, b, 6)
}

// TestServerHangs puts a proxy between the store and S3 that stops forwarding anything,
// during calls and in the middle of a GET's body, and checks that the calls fail with
// ErrUnavailable once the timeout passes without progress.
func TestServerHangs(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	proxy := s3test.NewProxy(t, srv.Endpoint)
	cfg := testConfig(srv)
	cfg.Endpoint = proxy.Addr
	cfg.Timeout, cfg.Retries = 2*time.Second, 1
	s := newTestStore(t, cfg)
	b := body(8<<20, 7)
	key := put(t, s, "acme", b)

	rc, err := s.Get(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 4096)); err != nil {
		t.Fatalf("reading the start of the body: %v", err)
	}
	proxy.Stall()
	checkUnavailable(t, "reading a body once the server hangs", cfg.Timeout, func(context.Context) error {
		_, err := io.Copy(io.Discard, rc)
		return err
	})
	rc.Close()
	for name, op := range unavailableOps(t, s, key, 8) {
		checkUnavailable(t, name+" with the server hanging", cfg.Timeout, op)
	}
	proxy.Resume()
	checkWorks(t, s, key, b, 9)
}

func TestTLSWithCustomCA(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{TLS: true})
	cfg := testConfig(srv)
	s := newTestStore(t, cfg)
	b := body(10<<10, 10)
	key := put(t, s, "acme", b)
	if got, err := readAll(t.Context(), s, key, 0, -1); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Get over TLS: %d bytes, %v", len(got), err)
	}

	cfg.CAFile = ""
	cfg.Retries = -1
	if _, err := New(t.Context(), cfg); err == nil {
		t.Fatal("New trusted a certificate from an unknown CA")
	}
}

func TestCredentials(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	home := t.TempDir()
	for _, v := range []string{EnvAccessKey, EnvSecretKey, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(v, "")
	}
	t.Setenv("HOME", home)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "absent"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "absent"))

	base := testConfig(srv)
	base.AccessKey, base.SecretKey = "", ""
	if _, err := New(t.Context(), base); err == nil || !strings.Contains(err.Error(), "no S3 credentials") {
		t.Fatalf("New without credentials = %v, want a missing-credentials error", err)
	}

	wrong := testConfig(srv)
	wrong.SecretKey = "not-the-secret"
	if _, err := New(t.Context(), wrong); err == nil || errors.Is(err, blobstore.ErrUnavailable) {
		t.Fatalf("New with a wrong secret = %v, want a refusal that is not ErrUnavailable", err)
	}

	file := filepath.Join(home, "credentials")
	ini := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", srv.AccessKey, srv.SecretKey)
	if err := os.WriteFile(file, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := base
	fromFile.CredentialsFile = file
	newTestStore(t, fromFile)

	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	newTestStore(t, testConfigNoKeys(srv))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")

	t.Setenv(EnvAccessKey, srv.AccessKey)
	if _, err := New(t.Context(), testConfigNoKeys(srv)); err == nil {
		t.Fatalf("New with only %s set succeeded", EnvAccessKey)
	}
	t.Setenv(EnvSecretKey, srv.SecretKey)
	s := newTestStore(t, testConfigNoKeys(srv))
	put(t, s, "acme", body(100, 11))
}

func testConfigNoKeys(srv *s3test.Server) Config {
	cfg := testConfig(srv)
	cfg.AccessKey, cfg.SecretKey = "", ""
	return cfg
}

func TestConfigValidation(t *testing.T) {
	good := Config{Endpoint: "127.0.0.1:9000", Bucket: "b", AccessKey: "a", SecretKey: "s"}
	for name, mutate := range map[string]func(*Config){
		"no endpoint":     func(c *Config) { c.Endpoint = "" },
		"endpoint scheme": func(c *Config) { c.Endpoint = "http://127.0.0.1:9000" },
		"no bucket":       func(c *Config) { c.Bucket = "" },
		"half keys":       func(c *Config) { c.SecretKey = "" },
		"negative time":   func(c *Config) { c.Timeout = -time.Second },
		"absolute prefix": func(c *Config) { c.Prefix = "/x/" },
		"CA without TLS":  func(c *Config) { c.Insecure, c.CAFile = true, "ca.pem" },
		"missing CA file": func(c *Config) { c.CAFile = filepath.Join(t.TempDir(), "absent.pem") },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := New(t.Context(), cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	for a, want := range map[Addressing]minio.BucketLookupType{
		AddressingAuto: minio.BucketLookupAuto, AddressingPath: minio.BucketLookupPath, AddressingVirtualHost: minio.BucketLookupDNS,
	} {
		if got := a.bucketLookup(); got != want {
			t.Errorf("Addressing %d looks buckets up as %v, want %v", a, got, want)
		}
	}
}

func TestBucketCreatedOnce(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	cfg := testConfig(srv)
	first := newTestStore(t, cfg)
	if info, err := os.Stat(filepath.Join(srv.Dir, cfg.Bucket)); err != nil || !info.IsDir() {
		t.Fatalf("bucket directory after New: %v", err)
	}
	b := body(1000, 12)
	key := put(t, first, "acme", b)
	second := newTestStore(t, cfg)
	if got, err := readAll(t.Context(), second, key, 0, -1); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Get through a second store on the bucket: %d bytes, %v", len(got), err)
	}
	var names []string
	for obj := range second.client.ListObjects(t.Context(), cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("ListObjects: %v", obj.Err)
		}
		names = append(names, obj.Key)
	}
	if len(names) != 1 || names[0] != key {
		t.Errorf("bucket holds %q, want only %s: the probe objects must be gone", names, key)
	}
}

func TestMetrics(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	s := newTestStore(t, testConfig(srv))
	b := body(50<<10, 13)
	key := put(t, s, "acme", b)
	if _, err := readAll(t.Context(), s, key, 0, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t.Context(), s, key, 10, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(t.Context(), blobstore.Key("acme", sha256.Sum256(nil))); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat(missing) = %v", err)
	}
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	m := s.Metrics()
	if m.Put.Calls != 1 || m.Put.Bytes != int64(len(b)) || m.Put.Errors != 0 {
		t.Errorf("Put stats %+v", m.Put)
	}
	if m.Get.Calls != 2 || m.Get.Bytes != int64(len(b))+100 || m.Get.Latency <= 0 {
		t.Errorf("Get stats %+v", m.Get)
	}
	wantStats := int64(1)
	if s.StatBeforePut() {
		wantStats++
	}
	if m.Stat.Calls != wantStats || m.Stat.Errors != 0 || m.Delete.Calls != 1 {
		t.Errorf("Stat %+v, Delete %+v", m.Stat, m.Delete)
	}
}
