// Package s3 is the blobstore.Store of clusters: bodies are objects in an S3-compatible
// bucket (AWS S3, MinIO, Ceph RGW, versitygw, ...), reached through minio-go.
//
// Object names are the store's prefix followed by the blobstore key, "t/<tenant>/<sha256>".
//
// Put sends the body in one signed PUT whose x-amz-content-sha256 is the key's digest and
// which carries x-amz-checksum-sha256, so the server itself refuses bytes that do not match
// the key; the store also hashes the bytes as it streams them and aborts the upload before
// its last byte on a mismatch. PUTs carry If-None-Match: * where the server honours it, so an
// existing body answers 412, a dedup hit. New checks the server: where it refuses such a PUT
// before taking the body (Expect: 100-continue, RFC 9110 10.1.1), Put is that one request;
// elsewhere Put asks HEAD first and uploads only when the object is missing, so a dedup hit
// never costs an upload.
//
// Get of a whole body (and of any range that turns out to cover the whole body) hashes the
// bytes as they stream and fails with blobstore.ErrCorrupt at the end if they do not match
// the key, so a corrupt object is never served silently.
//
// Every request runs under a deadline (Config.Timeout; for the streaming Put and Get, a
// deadline on progress) with minio-go's bounded retries. Failures that mean the service is
// unreachable, too slow or failing on its side (5xx, throttling) wrap
// blobstore.ErrUnavailable.
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/strata-mail/strata/blobstore"
)

// Store is a blobstore.Store on an S3 bucket. It is safe for concurrent use.
type Store struct {
	client  *minio.Client
	core    minio.Core
	bucket  string
	prefix  string
	timeout time.Duration
	// conditionalPut is whether the server refuses a PUT with If-None-Match: * over an
	// existing object.
	conditionalPut bool
	// statBeforePut is whether Put asks HEAD before uploading: unless the server refuses a
	// conditional PUT before it takes the body, a dedup hit would cost the upload.
	statBeforePut bool
	metrics       metrics
}

var _ blobstore.Store = (*Store)(nil)

// errTimedOut is the cause of a request's context when the store's own deadline ends it.
var errTimedOut = errors.New("S3 request timed out")

// New connects to the bucket of cfg, creates it if it is missing and checks whether the
// server supports conditional PUTs. ctx bounds the whole setup.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("open S3 store: %w", err)
	}
	creds, _, err := resolveCredentials(cfg)
	if err != nil {
		return nil, fmt.Errorf("open S3 store: %w", err)
	}
	transport, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("open S3 store: %w", err)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        creds,
		Secure:       !cfg.Insecure,
		Transport:    transport,
		Region:       cfg.Region,
		BucketLookup: cfg.Addressing.bucketLookup(),
		MaxRetries:   cfg.Retries + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("open S3 store %s: %w", cfg.Endpoint, err)
	}
	s := &Store{
		client:  client,
		core:    minio.Core{Client: client},
		bucket:  cfg.Bucket,
		prefix:  cfg.Prefix,
		timeout: cfg.Timeout,
	}
	if err := s.ensureBucket(ctx, cfg.Region); err != nil {
		return nil, fmt.Errorf("open S3 store %s/%s: %w", cfg.Endpoint, cfg.Bucket, err)
	}
	if s.conditionalPut, s.statBeforePut, err = s.probeConditionalPut(ctx); err != nil {
		return nil, fmt.Errorf("open S3 store %s/%s: %w", cfg.Endpoint, cfg.Bucket, err)
	}
	return s, nil
}

// ConditionalPut reports whether the server refuses a PUT with If-None-Match: * over an
// existing object, so that Put skips the HEAD before uploading.
func (s *Store) ConditionalPut() bool { return s.conditionalPut }

// StatBeforePut reports whether Put asks HEAD before uploading, because the server does not
// refuse a conditional PUT over an existing object before it receives the body.
func (s *Store) StatBeforePut() bool { return s.statBeforePut }

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// ObjectName returns the name of key's object in the bucket.
func (s *Store) ObjectName(key string) string { return s.prefix + key }

func (s *Store) ensureBucket(ctx context.Context, region string) error {
	opCtx, cancel := s.deadline(ctx)
	defer cancel()
	exists, err := s.client.BucketExists(opCtx, s.bucket)
	if err != nil {
		return s.classify(ctx, opCtx, "check bucket", err)
	}
	if exists {
		return nil
	}
	err = s.client.MakeBucket(opCtx, s.bucket, minio.MakeBucketOptions{Region: region})
	if code := errorResponse(err).Code; code == minio.BucketAlreadyOwnedByYou || code == minio.BucketAlreadyExists {
		// Another process created it between the two calls.
		return nil
	}
	if err != nil {
		return s.classify(ctx, opCtx, "create bucket", err)
	}
	return nil
}

// probeConditionalPut puts a scratch object twice with If-None-Match: * and reports whether
// the second PUT was refused, and whether Put must ask HEAD first because the server took
// the second body before refusing it (or does not refuse at all).
func (s *Store) probeConditionalPut(ctx context.Context) (conditional, statFirst bool, err error) {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return false, true, fmt.Errorf("probe conditional PUT: %w", err)
	}
	name := s.prefix + "probe/if-none-match-" + hex.EncodeToString(nonce[:])
	content := []byte("strata")
	sum := sha256.Sum256(content)
	var bodyRead int64
	put := func() error {
		opCtx, cancel := s.deadline(ctx)
		defer cancel()
		body := newPutReader(ctx, bytes.NewReader(content), int64(len(content)), sum, nil)
		_, err := s.core.PutObject(withExpectContinue(opCtx), s.bucket, name, body, int64(len(content)), "", hex.EncodeToString(sum[:]), s.putOptions(sum, true))
		bodyRead, _ = body.finish()
		switch {
		case err == nil, isNotImplemented(err), isPreconditionFailed(err):
			return err
		default:
			return s.classify(ctx, opCtx, "probe conditional PUT", err)
		}
	}
	defer func() {
		opCtx, cancel := s.deadline(context.WithoutCancel(ctx))
		defer cancel()
		s.client.RemoveObject(opCtx, s.bucket, name, minio.RemoveObjectOptions{})
	}()
	if err := put(); err != nil {
		if isNotImplemented(err) {
			return false, true, nil
		}
		return false, true, err
	}
	err = put()
	switch {
	case err == nil:
		return false, true, nil
	case isPreconditionFailed(err):
		return true, bodyRead > 0, nil
	case isNotImplemented(err):
		return false, true, nil
	default:
		return false, true, err
	}
}

func (s *Store) putOptions(sum [sha256.Size]byte, conditional bool) minio.PutObjectOptions {
	opts := minio.PutObjectOptions{
		ContentType: "message/rfc822",
		// The payload hash goes into x-amz-content-sha256 and the signature instead of
		// minio-go's chunked streaming signature: the digest is known before the first byte.
		DisableContentSha256: true,
		UserMetadata: map[string]string{
			"x-amz-checksum-sha256": base64.StdEncoding.EncodeToString(sum[:]),
		},
	}
	if conditional {
		opts.SetMatchETagExcept("*")
	}
	return opts
}

// deadline returns a context that ends after the store's timeout, with errTimedOut as cause.
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.timeout, errTimedOut)
}

// Put implements blobstore.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	_, sum, ok := blobstore.ParseKey(key)
	if !ok {
		return fmt.Errorf("put %q: %w", key, blobstore.ErrInvalidKey)
	}
	if size < 0 {
		return fmt.Errorf("put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	start := time.Now()
	var sent int64
	defer func() { s.metrics.put.record(start, sent, err) }()
	if size == 0 && sha256.Sum256(nil) != sum {
		return fmt.Errorf("put %s: %w: the empty body", key, blobstore.ErrDigestMismatch)
	}
	if s.statBeforePut {
		info, err := s.Stat(ctx, key)
		if err == nil && info.Size == size {
			s.metrics.dedupHits.Add(1)
			return nil
		}
		if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
			return fmt.Errorf("put: %w", err)
		}
	}
	opCtx, watchdog := newWatchdog(ctx, s.timeout)
	defer watchdog.stop()
	if s.conditionalPut && !s.statBeforePut {
		opCtx = withExpectContinue(opCtx)
	}
	body := newPutReader(ctx, r, size, sum, watchdog)
	_, err = s.core.PutObject(opCtx, s.bucket, s.prefix+key, body, size, "", hex.EncodeToString(sum[:]), s.putOptions(sum, s.conditionalPut))
	var bodyErr error
	sent, bodyErr = body.finish()
	if err == nil {
		return nil
	}
	if s.conditionalPut && isPreconditionFailed(err) {
		s.metrics.dedupHits.Add(1)
		return nil
	}
	if bodyErr != nil {
		// The body, not the server, ended the upload: short, mismatching or unreadable.
		return fmt.Errorf("put %s: %w", key, bodyErr)
	}
	if code := errorResponse(err).Code; code == "XAmzContentSHA256Mismatch" || code == "BadDigest" || code == "InvalidDigest" {
		return fmt.Errorf("put %s: %w: the server says %v", key, blobstore.ErrDigestMismatch, err)
	}
	timedOut := errors.Is(context.Cause(opCtx), errTimedOut)
	err = s.classify(ctx, opCtx, "PUT", err)
	if ctx.Err() == nil && !timedOut {
		// A server may answer a conditional PUT's 412 before it has read the body and close
		// the connection, which the client sees as a failed write. The object is there if
		// another Put stored it: that is a dedup hit, whatever ended this upload.
		if info, statErr := s.Stat(ctx, key); statErr == nil && info.Size == size {
			s.metrics.dedupHits.Add(1)
			return nil
		}
	}
	return fmt.Errorf("put %s: %w", key, err)
}

// putReader hands the HTTP client exactly the body's bytes: it never reads r past them, fails
// with io.ErrUnexpectedEOF if r ends first, and holds back the last bytes and fails with
// ErrDigestMismatch if the body does not hash to the key, so the server never receives a
// complete wrong body. The HTTP transport may go on reading a request body after the
// response has arrived; once finish has returned, putReader does not touch r again.
type putReader struct {
	ctx      context.Context
	want     [sha256.Size]byte
	watchdog *watchdog // nil: none

	mu        sync.Mutex // held across each read of r
	r         io.Reader
	remaining int64
	read      int64 // from r
	sent      int64 // to the HTTP client
	digest    hash.Hash
	err       error
	finished  bool
}

var errPutFinished = errors.New("put finished")

// newPutReader hashes the body as it goes, unless it comes from a spool that hashed it
// already (blobstore.Prehashed); the server checks x-amz-checksum-sha256 either way.
func newPutReader(ctx context.Context, r io.Reader, size int64, sum [sha256.Size]byte, w *watchdog) *putReader {
	p := &putReader{ctx: ctx, want: sum, watchdog: w, r: r, remaining: size}
	if !blobstore.Prehashed(r, size, sum) {
		p.digest = sha256.New()
	}
	return p
}

// finish stops all further reads of r, waiting for one in progress, and returns the bytes
// read from r and the error that ended the body, if any.
func (p *putReader) finish() (read int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished = true
	return p.read, p.err
}

func (p *putReader) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return 0, errPutFinished
	}
	if p.err != nil {
		return 0, p.err
	}
	if p.remaining == 0 {
		return 0, io.EOF
	}
	if err := p.ctx.Err(); err != nil {
		p.err = err
		return 0, err
	}
	if int64(len(b)) > p.remaining {
		b = b[:p.remaining]
	}
	n, err := p.r.Read(b)
	if p.digest != nil {
		p.digest.Write(b[:n])
	}
	p.read += int64(n)
	p.remaining -= int64(n)
	if p.watchdog != nil {
		p.watchdog.kick()
	}
	switch {
	case p.remaining == 0:
		if p.digest == nil {
			break
		}
		var got [sha256.Size]byte
		p.digest.Sum(got[:0])
		if got != p.want {
			p.err = fmt.Errorf("%w: content hashes to %x", blobstore.ErrDigestMismatch, got)
			return 0, p.err
		}
	case errors.Is(err, io.EOF):
		p.err = fmt.Errorf("body ended after %d bytes, %d short: %w", p.sent+int64(n), p.remaining, io.ErrUnexpectedEOF)
		return 0, p.err
	case err != nil:
		p.err = fmt.Errorf("read body: %w", err)
		return 0, p.err
	}
	p.sent += int64(n)
	return n, nil
}

// Get implements blobstore.Store.
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (rc io.ReadCloser, err error) {
	_, sum, ok := blobstore.ParseKey(key)
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, blobstore.ErrInvalidKey)
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if length == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, fmt.Errorf("get: %w", err)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	start := time.Now()
	var opts minio.GetObjectOptions
	switch {
	case offset == 0 && length < 0:
	case length < 0:
		err = opts.SetRange(offset, 0)
	default:
		err = opts.SetRange(offset, offset+length-1)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	opCtx, watchdog := newWatchdog(ctx, s.timeout)
	body, info, header, err := s.core.GetObject(opCtx, s.bucket, s.prefix+key, opts)
	if err != nil {
		watchdog.stop()
		s.metrics.get.record(start, 0, err)
		if resp := errorResponse(err); resp.Code == minio.InvalidRange || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			// RFC 9110 15.5.17: the offset is at or past the end; the contract gives no bytes.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, fmt.Errorf("get %s: %w", key, s.classify(ctx, opCtx, "GET", err))
	}
	reader := &getReader{
		ctx: ctx, opCtx: opCtx, store: s, key: key, body: body, watchdog: watchdog, start: start,
		remaining: -1,
	}
	first, total, ranged := contentRange(header)
	if opts.Header().Get("Range") != "" && !ranged {
		// The server ignored Range (RFC 9110 14.2 allows it) and sends the whole body.
		first, total = 0, info.Size
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, reader.body, min(offset, info.Size)); err != nil {
				reader.Close()
				return nil, fmt.Errorf("get %s: skip to offset %d: %w", key, offset, s.classify(ctx, opCtx, "GET", err))
			}
			first = min(offset, info.Size)
		}
		if length >= 0 {
			reader.remaining = length
		}
	}
	if first == 0 && (!ranged || info.Size == total) && reader.remaining < 0 {
		reader.digest, reader.want = sha256.New(), sum
	}
	s.metrics.get.record(start, 0, nil)
	return reader, nil
}

// contentRange parses "Content-Range: bytes first-last/total" (RFC 9110 14.4).
func contentRange(h http.Header) (first, total int64, ok bool) {
	v, found := strings.CutPrefix(h.Get("Content-Range"), "bytes ")
	if !found {
		return 0, 0, false
	}
	span, totalText, found := strings.Cut(v, "/")
	firstText, _, found2 := strings.Cut(span, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(firstText, 10, 64)
	total, err2 := strconv.ParseInt(totalText, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return first, total, true
}

// getReader streams one GET's body, fails once its context is done or the server stalls,
// and, when it reads a whole body, checks it against the key at the end.
type getReader struct {
	ctx, opCtx context.Context
	store      *Store
	key        string
	body       io.ReadCloser
	watchdog   *watchdog
	start      time.Time
	remaining  int64 // bytes still wanted when the server ignored Range; -1: all
	digest     hash.Hash
	want       [sha256.Size]byte
	read       int64
	err        error
	closed     bool
}

func (g *getReader) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if err := g.ctx.Err(); err != nil {
		g.err = fmt.Errorf("get %s: %w", g.key, err)
		return 0, g.err
	}
	if g.remaining == 0 {
		return 0, io.EOF
	}
	if g.remaining > 0 && int64(len(p)) > g.remaining {
		p = p[:g.remaining]
	}
	n, err := g.body.Read(p)
	g.watchdog.kick()
	g.read += int64(n)
	if g.remaining > 0 {
		g.remaining -= int64(n)
	}
	if g.digest != nil {
		g.digest.Write(p[:n])
	}
	if errors.Is(err, io.EOF) {
		if g.digest != nil {
			var got [sha256.Size]byte
			g.digest.Sum(got[:0])
			if got != g.want {
				g.store.metrics.corrupt.Add(1)
				g.err = fmt.Errorf("get %s: %w: the %d bytes read hash to %x", g.key, blobstore.ErrCorrupt, g.read, got)
				return n, g.err
			}
		}
		return n, io.EOF
	}
	if err != nil {
		g.err = fmt.Errorf("get %s: read: %w", g.key, g.store.classify(g.ctx, g.opCtx, "GET", err))
		return n, g.err
	}
	return n, nil
}

func (g *getReader) Close() error {
	if g.closed {
		return nil
	}
	g.closed = true
	g.watchdog.stop()
	g.store.metrics.get.bytes.Add(g.read)
	return g.body.Close()
}

// Stat implements blobstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (info blobstore.Info, err error) {
	if !blobstore.ValidKey(key) {
		return blobstore.Info{}, fmt.Errorf("stat %q: %w", key, blobstore.ErrInvalidKey)
	}
	if err := ctx.Err(); err != nil {
		return blobstore.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	start := time.Now()
	defer func() {
		if errors.Is(err, blobstore.ErrNotFound) {
			s.metrics.stat.record(start, 0, nil)
			return
		}
		s.metrics.stat.record(start, 0, err)
	}()
	opCtx, cancel := s.deadline(ctx)
	defer cancel()
	obj, err := s.client.StatObject(opCtx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return blobstore.Info{}, fmt.Errorf("stat %s: %w", key, s.classify(ctx, opCtx, "HEAD", err))
	}
	return blobstore.Info{Size: obj.Size}, nil
}

// Delete implements blobstore.Store.
func (s *Store) Delete(ctx context.Context, key string) (err error) {
	if !blobstore.ValidKey(key) {
		return fmt.Errorf("delete %q: %w", key, blobstore.ErrInvalidKey)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	start := time.Now()
	defer func() { s.metrics.delete.record(start, 0, err) }()
	opCtx, cancel := s.deadline(ctx)
	defer cancel()
	err = s.client.RemoveObject(opCtx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("delete %s: %w", key, s.classify(ctx, opCtx, "DELETE", err))
	}
	return nil
}

// classify turns a minio-go error into one that wraps the caller's context error, the
// store's deadline as ErrUnavailable, ErrNotFound, or ErrUnavailable for failures of the
// service and the network.
func (s *Store) classify(ctx, opCtx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w (%v)", op, ctxErr, err)
	}
	if errors.Is(context.Cause(opCtx), errTimedOut) {
		return fmt.Errorf("%s: %w: no answer within %v (%v)", op, blobstore.ErrUnavailable, s.timeout, err)
	}
	if isNoSuchKey(err) {
		return fmt.Errorf("%s: %w", op, blobstore.ErrNotFound)
	}
	resp := errorResponse(err)
	switch {
	case resp.StatusCode >= 500,
		resp.Code == "SlowDown", resp.Code == "ServiceUnavailable", resp.Code == "InternalError",
		resp.Code == "RequestTimeout":
		return fmt.Errorf("%s: %w: %v", op, blobstore.ErrUnavailable, err)
	}
	var urlErr *url.Error
	var netErr net.Error
	if errors.As(err, &urlErr) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: %w: %v", op, blobstore.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// errorResponse returns the S3 error response in err's chain, or the zero value.
func errorResponse(err error) minio.ErrorResponse {
	var resp minio.ErrorResponse
	errors.As(err, &resp)
	return resp
}

func isNoSuchKey(err error) bool {
	resp := errorResponse(err)
	return resp.Code == minio.NoSuchKey || (resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket)
}

func isPreconditionFailed(err error) bool {
	resp := errorResponse(err)
	return resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed"
}

func isNotImplemented(err error) bool {
	resp := errorResponse(err)
	return resp.StatusCode == http.StatusNotImplemented || resp.Code == "NotImplemented"
}

// watchdog cancels a request's context once no progress has been made for its timeout.
type watchdog struct {
	timer   *time.Timer
	timeout time.Duration
	cancel  context.CancelCauseFunc
}

func newWatchdog(ctx context.Context, timeout time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{timeout: timeout, cancel: cancel}
	w.timer = time.AfterFunc(timeout, func() { cancel(errTimedOut) })
	return ctx, w
}

// kick restarts the timeout after progress.
func (w *watchdog) kick() { w.timer.Reset(w.timeout) }

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}
