package auth

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Cache is a frontend's verified-credentials cache (what Dovecot's auth_cache does): the
// memory-hard hash of a password runs once per account and password within the TTL, and
// the logins after it cost one cheap CheckCredential call instead of an Authenticate.
// IMAP and ManageSieve of one process share one Cache.
//
// Invariants:
//
//   - It holds no password and nothing a password can be tested against faster than with
//     argon2id: an entry is keyed by HMAC-SHA256 under a random key that never leaves the
//     process, and holds the account and the credential stamp the metadata service gave
//     (Account.credential_stamp, a digest of the stored hash, which has no salt in it).
//   - Only a successful Authenticate makes an entry. A wrong password finds no entry (its
//     key differs) and pays the full hash in Authenticate, every time: nothing is cached
//     about failures.
//   - A hit is confirmed by the metadata service on every login (CheckCredential, a read on
//     the leader, as Authenticate's is): after a password change, disable or delete has
//     committed, the old password is refused on every frontend at its next login, whatever
//     its cache holds. The refused entry is dropped and the login goes on to Authenticate.
//     An app password's stamp is checked the same way, with the service (entries are
//     shared by the services, not keyed by them): its revocation, or a login to a service
//     outside its scopes, is refused at that login.
//   - An entry lives at most the TTL from its verification, hits do not extend it; at most
//     Size entries are held, the least recently used dropped first.
type Cache struct {
	hmacKey [32]byte
	ttl     time.Duration
	size    int
	now     func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element // of *cacheEntry
	lru     list.List                           // front: most recently used

	hits, misses, invalidations atomic.Uint64
}

type cacheEntry struct {
	key     [sha256.Size]byte
	stamp   []byte
	expires time.Time
}

// Defaults of the --auth-cache-ttl and --auth-cache-size flags.
const (
	DefaultCacheTTL  = 5 * time.Minute
	DefaultCacheSize = 100_000
)

// NewCache returns a cache of at most size entries that live ttl each; nil (no cache:
// every login hashes) when either is zero or negative. A nil *Cache is ready to use.
func NewCache(ttl time.Duration, size int) *Cache {
	if ttl <= 0 || size <= 0 {
		return nil
	}
	c := &Cache{ttl: ttl, size: size, now: time.Now, entries: make(map[[sha256.Size]byte]*list.Element)}
	if _, err := rand.Read(c.hmacKey[:]); err != nil {
		// crypto/rand does not fail on the systems Go supports (it panics itself).
		panic("auth cache key: " + err.Error())
	}
	return c
}

// CheckPassword is the package's CheckPassword through the cache: a login whose account and
// password were verified within the TTL is confirmed by CheckCredential without hashing;
// any other goes to Authenticate, and a success is remembered. Errors are those of
// CheckPassword. On a nil Cache it is CheckPassword.
func (c *Cache) CheckPassword(ctx context.Context, md metadatapb.MetadataClient, service, username, password, remoteIP string) (*metadatapb.Account, error) {
	if c == nil {
		return CheckPassword(ctx, md, service, username, password, remoteIP)
	}
	email := strings.ToLower(username)
	key := c.key(email, password)
	if stamp, ok := c.lookup(key); ok {
		account, err := md.CheckCredential(ctx, &metadatapb.CheckCredentialRequest{Email: email, CredentialStamp: stamp, Service: service, RemoteIp: remoteIP})
		if err == nil && !account.GetDisabled() {
			c.hits.Add(1)
			account.CredentialStamp = stamp
			return account, nil
		}
		// The guard refuses a cached password as any other while the client is locked
		// out or throttled; the entry stays (the password is still right).
		if t := throttled(err); t != nil {
			return nil, t
		}
		// Unimplemented is a metadata node older than CheckCredential: verify in full.
		if err != nil && !refusal(err) && status.Code(err) != codes.Unimplemented {
			return nil, err
		}
		// The credential the entry names is gone (a new password, the account disabled,
		// deleted or re-created): forget it and verify the password in full.
		c.drop(key)
		c.invalidations.Add(1)
	}
	account, err := authenticate(ctx, md, service, email, password, remoteIP)
	if throttled := (*ThrottledError)(nil); errors.As(err, &throttled) {
		return nil, err // refused before hashing: not a miss
	}
	c.misses.Add(1)
	if err != nil {
		return nil, err
	}
	if stamp := account.GetCredentialStamp(); len(stamp) > 0 {
		c.store(key, stamp)
	}
	return account, nil
}

// Recall returns the stamp a Directory remembered for email and password within the TTL
// (Remember). Like every entry, it is keyed by the HMAC of email and password, so a wrong
// password finds nothing. It counts no hit or miss: the directory keeps its own counts.
// Nothing on a nil Cache.
func (c *Cache) Recall(email, password string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	return c.lookup(c.key(strings.ToLower(email), password))
}

// Remember keeps stamp for email and password for the TTL: a Directory's record that it
// verified them (frontend/ldapauth: a digest of the tenant's settings and the account).
// Only a verified login may be remembered. Nothing on a nil Cache.
func (c *Cache) Remember(email, password string, stamp []byte) {
	if c == nil {
		return
	}
	c.store(c.key(strings.ToLower(email), password), stamp)
}

// Forget drops what Remember kept for email and password. Nothing on a nil Cache.
func (c *Cache) Forget(email, password string) {
	if c == nil {
		return
	}
	c.drop(c.key(strings.ToLower(email), password))
}

// key is the entry key of email and password: HMAC-SHA256 under the process's random key of
// the email's length, the email and the password, so that no two pairs share an input.
func (c *Cache) key(email, password string) [sha256.Size]byte {
	mac := hmac.New(sha256.New, c.hmacKey[:])
	mac.Write(binary.AppendUvarint(nil, uint64(len(email))))
	mac.Write([]byte(email))
	mac.Write([]byte(password))
	var key [sha256.Size]byte
	mac.Sum(key[:0])
	return key
}

// lookup returns the stamp of key's live entry and marks it used; an expired entry is
// dropped.
func (c *Cache) lookup(key [sha256.Size]byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.stamp, true
}

// store remembers a verified credential for the TTL, evicting the least recently used
// entries beyond the size bound.
func (c *Cache) store(key [sha256.Size]byte, stamp []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	expires := c.now().Add(c.ttl)
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.stamp, e.expires = stamp, expires
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, stamp: stamp, expires: expires})
	for c.lru.Len() > c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

func (c *Cache) drop(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.lru.Remove(el)
		delete(c.entries, key)
	}
}

// CacheStats are the cache's counters since it was made.
type CacheStats struct {
	// Hits are logins confirmed without a password hash; Misses went to Authenticate
	// (first logins, expired entries, wrong passwords); Invalidations are entries a login
	// found and the metadata service refused (included in Misses when the login went on).
	Hits, Misses, Invalidations uint64
	// Entries are the credentials held now.
	Entries int
}

// Stats returns the counters; zero for a nil Cache.
func (c *Cache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	n := c.lru.Len()
	c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Invalidations: c.invalidations.Load(), Entries: n}
}

var (
	cacheHitsDesc = prometheus.NewDesc("strata_auth_cache_hits_total",
		"Logins (IMAP, ManageSieve) confirmed from the verified-credentials cache, without a password hash.", nil, nil)
	cacheMissesDesc = prometheus.NewDesc("strata_auth_cache_misses_total",
		"Logins whose password was hashed by the metadata service: no live cache entry (first login within the TTL, or a wrong password).", nil, nil)
	cacheInvalidationsDesc = prometheus.NewDesc("strata_auth_cache_invalidations_total",
		"Cache entries dropped because the metadata service refused them: password changed, account disabled, deleted or re-created.", nil, nil)
	cacheEntriesDesc = prometheus.NewDesc("strata_auth_cache_entries",
		"Verified credentials held by the cache.", nil, nil)
)

// Collector exports the cache's counters, read at each scrape (docs/metrics.md); a nil
// Cache exports nothing.
func (c *Cache) Collector() prometheus.Collector { return cacheCollector{c} }

type cacheCollector struct{ c *Cache }

func (cc cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHitsDesc, cacheMissesDesc, cacheInvalidationsDesc, cacheEntriesDesc} {
		ch <- d
	}
}

func (cc cacheCollector) Collect(ch chan<- prometheus.Metric) {
	if cc.c == nil {
		return
	}
	s := cc.c.Stats()
	ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(cacheInvalidationsDesc, prometheus.CounterValue, float64(s.Invalidations))
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(s.Entries))
}

// refusal reports whether err is the metadata service refusing a credential rather than
// failing to answer.
func refusal(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.NotFound, codes.InvalidArgument:
		return true
	}
	return false
}
