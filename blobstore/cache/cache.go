// Package cache is the frontends' body cache: a blobstore.Store that keeps recently read
// bodies and byte ranges in memory, in front of another Store (S3), bounded in bytes and
// evicted least recently used first.
//
// What it caches: the bytes of a Get that was read to its end without error, under the key
// and the range asked for; a whole body also answers every range of it and Stat. Bodies are
// immutable under their content-addressed keys, so an entry can only go stale by deletion:
// Delete through the cache drops the key's entries, and a read that overlapped a Delete is not
// cached. A body deleted by another process (orphan garbage collection) may still be served
// from here, which is harmless: no metadata refers to it any more.
//
// A read that fails, including one that ends in blobstore.ErrCorrupt, caches nothing.
package cache

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/strata-mail/strata/blobstore"
)

// Config bounds a cache.
type Config struct {
	// MaxBytes bounds the bytes of all entries together.
	MaxBytes int64
	// MaxEntryBytes is the largest body or range kept; MaxBytes/16 if zero. Larger reads
	// pass through uncached.
	MaxEntryBytes int64
}

// Stats are a cache's counters.
type Stats struct {
	Hits, Misses, Evictions int64
	Entries                 int
	Bytes                   int64
}

// span is the range an entry holds: length -1 is the whole body.
type span struct{ offset, length int64 }

type entry struct {
	key  string
	span span
	data []byte
}

// Cache is a blobstore.Store with an LRU of bodies and ranges in front of another. It is
// safe for concurrent use.
type Cache struct {
	store    blobstore.Store
	maxBytes int64
	maxEntry int64

	mu      sync.Mutex
	lru     *list.List // of *entry, most recently used first
	entries map[string]map[span]*list.Element
	size    int64
	// deletions counts Deletes started and finished; a read caches its bytes only if no
	// Delete started or finished while it ran.
	deletions uint64

	hits, misses, evictions atomic.Int64
}

var _ blobstore.Store = (*Cache)(nil)

// New returns a cache in front of store.
func New(store blobstore.Store, cfg Config) (*Cache, error) {
	if cfg.MaxBytes <= 0 {
		return nil, fmt.Errorf("body cache: size %d is not positive", cfg.MaxBytes)
	}
	if cfg.MaxEntryBytes == 0 {
		cfg.MaxEntryBytes = cfg.MaxBytes / 16
	}
	if cfg.MaxEntryBytes <= 0 || cfg.MaxEntryBytes > cfg.MaxBytes {
		return nil, fmt.Errorf("body cache: entry size %d is not within 1 to %d", cfg.MaxEntryBytes, cfg.MaxBytes)
	}
	return &Cache{
		store:    store,
		maxBytes: cfg.MaxBytes,
		maxEntry: cfg.MaxEntryBytes,
		lru:      list.New(),
		entries:  map[string]map[span]*list.Element{},
	}, nil
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	entries, size := c.lru.Len(), c.size
	c.mu.Unlock()
	return Stats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Evictions: c.evictions.Load(),
		Entries:   entries,
		Bytes:     size,
	}
}

// Put implements blobstore.Store; it passes through.
func (c *Cache) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return c.store.Put(ctx, key, r, size)
}

// Get implements blobstore.Store.
func (c *Cache) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if !blobstore.ValidKey(key) {
		return nil, fmt.Errorf("get %q: %w", key, blobstore.ErrInvalidKey)
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if length < 0 {
		length = -1
	}
	if data, ok := c.lookup(key, offset, length); ok {
		c.hits.Add(1)
		return &hitReader{ctx: ctx, key: key, r: bytes.NewReader(data)}, nil
	}
	c.misses.Add(1)
	c.mu.Lock()
	deletions := c.deletions
	c.mu.Unlock()
	rc, err := c.store.Get(ctx, key, offset, length)
	if err != nil || length > c.maxEntry {
		return rc, err
	}
	return &fillReader{cache: c, key: key, span: span{offset, length}, deletions: deletions, rc: rc}, nil
}

// lookup returns the bytes of the range from the whole body's entry or the range's own.
func (c *Cache) lookup(key string, offset, length int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spans := c.entries[key]
	if elem, ok := spans[span{0, -1}]; ok {
		c.lru.MoveToFront(elem)
		data := elem.Value.(*entry).data
		from := min(offset, int64(len(data)))
		to := int64(len(data))
		if length >= 0 {
			to = min(to, from+length)
		}
		return data[from:to], true
	}
	if elem, ok := spans[span{offset, length}]; ok {
		c.lru.MoveToFront(elem)
		return elem.Value.(*entry).data, true
	}
	return nil, false
}

// insert adds an entry unless a Delete ran since deletions was read, and evicts the least
// recently used entries until the cache fits its bound.
func (c *Cache) insert(key string, sp span, data []byte, deletions uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deletions != deletions {
		return
	}
	spans := c.entries[key]
	if spans == nil {
		spans = map[span]*list.Element{}
		c.entries[key] = spans
	}
	if _, ok := spans[sp]; ok {
		return
	}
	spans[sp] = c.lru.PushFront(&entry{key: key, span: sp, data: data})
	c.size += int64(len(data))
	for c.size > c.maxBytes {
		c.remove(c.lru.Back())
		c.evictions.Add(1)
	}
}

// remove drops one entry; c.mu is held.
func (c *Cache) remove(elem *list.Element) {
	e := c.lru.Remove(elem).(*entry)
	c.size -= int64(len(e.data))
	spans := c.entries[e.key]
	delete(spans, e.span)
	if len(spans) == 0 {
		delete(c.entries, e.key)
	}
}

// Stat implements blobstore.Store: a cached whole body answers it.
func (c *Cache) Stat(ctx context.Context, key string) (blobstore.Info, error) {
	if !blobstore.ValidKey(key) {
		return blobstore.Info{}, fmt.Errorf("stat %q: %w", key, blobstore.ErrInvalidKey)
	}
	if err := ctx.Err(); err != nil {
		return blobstore.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	c.mu.Lock()
	elem, ok := c.entries[key][span{0, -1}]
	var size int64
	if ok {
		size = int64(len(elem.Value.(*entry).data))
	}
	c.mu.Unlock()
	if ok {
		return blobstore.Info{Size: size}, nil
	}
	return c.store.Stat(ctx, key)
}

// Delete implements blobstore.Store: it drops the key's entries and deletes the body.
func (c *Cache) Delete(ctx context.Context, key string) error {
	c.forget(key)
	err := c.store.Delete(ctx, key)
	c.forget(key)
	return err
}

func (c *Cache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deletions++
	for _, elem := range c.entries[key] {
		c.remove(elem)
	}
}

// hitReader serves a cached entry until its context is done.
type hitReader struct {
	ctx context.Context
	key string
	r   *bytes.Reader
}

func (h *hitReader) Read(p []byte) (int, error) {
	if err := h.ctx.Err(); err != nil {
		return 0, fmt.Errorf("get %s: %w", h.key, err)
	}
	return h.r.Read(p)
}

func (h *hitReader) Close() error { return nil }

// fillReader passes a miss through and keeps its bytes, up to the entry bound, to cache them
// once the read reaches its end without error.
type fillReader struct {
	cache     *Cache
	key       string
	span      span
	deletions uint64
	rc        io.ReadCloser
	buf       []byte
	tooLarge  bool
}

func (f *fillReader) Read(p []byte) (int, error) {
	n, err := f.rc.Read(p)
	if !f.tooLarge {
		if int64(len(f.buf)+n) > f.cache.maxEntry {
			f.tooLarge, f.buf = true, nil
		} else {
			f.buf = append(f.buf, p[:n]...)
		}
	}
	if err == io.EOF && !f.tooLarge {
		data := f.buf
		if data == nil {
			data = []byte{}
		}
		f.cache.insert(f.key, f.span, data, f.deletions)
		f.tooLarge, f.buf = true, nil
	}
	return n, err
}

func (f *fillReader) Close() error { return f.rc.Close() }
