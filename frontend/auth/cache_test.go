package auth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// metadataCalls counts the calls a real gRPC client made to a real metadata service, by
// method: an Authenticate is one argon2id hash on the service.
type metadataCalls struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *metadataCalls) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	m.mu.Lock()
	m.n[method[strings.LastIndex(method, "/")+1:]]++
	m.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (m *metadataCalls) count(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[method]
}

// cacheEnv is an embedded Strata with tenant acme (acme.test) and a counted metadata client.
type cacheEnv struct {
	t        *testing.T
	md       metadatapb.MetadataClient
	calls    *metadataCalls
	requests atomic.Int64
}

func newCacheEnv(t *testing.T) *cacheEnv {
	// The guard is off: these tests count hashes of repeated wrong passwords.
	srv := embeddedtest.Start(t, embedded.Config{AuthCacheTTL: -1, AuthGuard: metadata.AuthGuardConfig{Disabled: true}})
	calls := &metadataCalls{n: map[string]int{}}
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(calls.intercept))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e := &cacheEnv{t: t, md: metadatapb.NewMetadataClient(conn), calls: calls}
	if _, err := e.md.CreateTenant(e.ctx(), &metadatapb.CreateTenantRequest{RequestId: e.reqID(), Name: "acme", Domains: []string{"acme.test"}}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *cacheEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *cacheEnv) reqID() string { return fmt.Sprintf("cache-test-%d", e.requests.Add(1)) }

func (e *cacheEnv) addAccount(email, password string) {
	e.t.Helper()
	if _, err := e.md.CreateAccount(e.ctx(), &metadatapb.CreateAccountRequest{RequestId: e.reqID(), Email: email, Password: password}); err != nil {
		e.t.Fatal(err)
	}
}

// login checks the password through c and fails the test unless the outcome is want (nil:
// logged in as email).
func (e *cacheEnv) login(c *auth.Cache, email, password string, want error) {
	e.t.Helper()
	account, err := c.CheckPassword(e.ctx(), e.md, auth.ServiceIMAP, email, password, "")
	if !errors.Is(err, want) || (err == nil && account.GetEmail() != strings.ToLower(email)) {
		e.t.Fatalf("login %s/%s = %v, %v; want %v", email, password, account, err, want)
	}
	if err == nil && len(account.GetCredentialStamp()) == 0 {
		e.t.Fatalf("login %s: the account does not carry its credential stamp to the session (its re-check needs it)", email)
	}
}

// hashes is the number of password hashes (Authenticate calls) so far.
func (e *cacheEnv) hashes() int { return e.calls.count("Authenticate") }

func wantStats(t *testing.T, c *auth.Cache, want auth.CacheStats) {
	t.Helper()
	if got := c.Stats(); got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
}

func TestCache(t *testing.T) {
	e := newCacheEnv(t)

	t.Run("HashesOncePerAccountAndPassword", func(t *testing.T) {
		e.t = t
		c := auth.NewCache(time.Hour, 10)
		e.addAccount("once@acme.test", "pw")
		before := e.hashes()
		e.login(c, "once@acme.test", "pw", nil)
		e.login(c, "Once@ACME.test", "pw", nil)
		e.login(c, "once@acme.test", "pw", nil)
		if n := e.hashes() - before; n != 1 {
			t.Fatalf("%d hashes for three logins, want 1", n)
		}
		wantStats(t, c, auth.CacheStats{Hits: 2, Misses: 1, Entries: 1})
	})

	t.Run("WrongPasswordAlwaysHashes", func(t *testing.T) {
		e.t = t
		c := auth.NewCache(time.Hour, 10)
		e.addAccount("wrong@acme.test", "right")
		e.login(c, "wrong@acme.test", "right", nil)
		before := e.hashes()
		for i := range 3 {
			e.login(c, "wrong@acme.test", fmt.Sprintf("guess %d", i), auth.ErrInvalidCredentials)
			e.login(c, "wrong@acme.test", "guess 0", auth.ErrInvalidCredentials)
		}
		e.login(c, "nobody@acme.test", "right", auth.ErrInvalidCredentials)
		if n := e.hashes() - before; n != 7 {
			t.Fatalf("%d hashes for seven refused logins, want 7", n)
		}
		// Nothing of the failures is held: the one entry is the good password's.
		wantStats(t, c, auth.CacheStats{Misses: 8, Entries: 1})
		e.login(c, "wrong@acme.test", "right", nil)
		wantStats(t, c, auth.CacheStats{Hits: 1, Misses: 8, Entries: 1})
	})

	t.Run("TTL", func(t *testing.T) {
		e.t = t
		c := auth.NewCache(time.Minute, 10)
		now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
		auth.SetClock(c, func() time.Time { return now })
		e.addAccount("ttl@acme.test", "pw")
		e.login(c, "ttl@acme.test", "pw", nil)
		now = now.Add(time.Minute - time.Second)
		e.login(c, "ttl@acme.test", "pw", nil) // a hit does not extend the entry
		wantStats(t, c, auth.CacheStats{Hits: 1, Misses: 1, Entries: 1})
		now = now.Add(time.Second)
		before := e.hashes()
		e.login(c, "ttl@acme.test", "pw", nil)
		if e.hashes() != before+1 {
			t.Fatal("an expired entry was taken without a hash")
		}
		wantStats(t, c, auth.CacheStats{Hits: 1, Misses: 2, Entries: 1})
	})

	t.Run("SizeBound", func(t *testing.T) {
		e.t = t
		c := auth.NewCache(time.Hour, 2)
		for _, u := range []string{"a", "b", "c"} {
			e.addAccount(u+"@acme.test", "pw")
		}
		e.login(c, "a@acme.test", "pw", nil)
		e.login(c, "b@acme.test", "pw", nil)
		e.login(c, "a@acme.test", "pw", nil) // a is now the most recently used
		e.login(c, "c@acme.test", "pw", nil) // evicts b
		wantStats(t, c, auth.CacheStats{Hits: 1, Misses: 3, Entries: 2})
		e.login(c, "a@acme.test", "pw", nil)
		e.login(c, "c@acme.test", "pw", nil)
		wantStats(t, c, auth.CacheStats{Hits: 3, Misses: 3, Entries: 2})
		e.login(c, "b@acme.test", "pw", nil)
		wantStats(t, c, auth.CacheStats{Hits: 3, Misses: 4, Entries: 2})
	})

	t.Run("Invalidation", func(t *testing.T) {
		e.t = t
		c := auth.NewCache(time.Hour, 10)
		const user = "inv@acme.test"
		e.addAccount(user, "old")
		e.login(c, user, "old", nil)
		e.login(c, user, "old", nil)
		if _, err := e.md.SetPassword(e.ctx(), &metadatapb.SetPasswordRequest{RequestId: e.reqID(), Email: user, Password: "new"}); err != nil {
			t.Fatal(err)
		}
		before := e.hashes()
		e.login(c, user, "old", auth.ErrInvalidCredentials)
		if e.hashes() != before+1 {
			t.Fatal("the refused cached password did not go on to a full check")
		}
		wantStats(t, c, auth.CacheStats{Hits: 1, Misses: 2, Invalidations: 1, Entries: 0})
		e.login(c, user, "old", auth.ErrInvalidCredentials)
		e.login(c, user, "new", nil)
		e.login(c, user, "new", nil)
		wantStats(t, c, auth.CacheStats{Hits: 2, Misses: 4, Invalidations: 1, Entries: 1})

		if _, err := e.md.SetAccountDisabled(e.ctx(), &metadatapb.SetAccountDisabledRequest{RequestId: e.reqID(), Email: user, Disabled: true}); err != nil {
			t.Fatal(err)
		}
		e.login(c, user, "new", auth.ErrInvalidCredentials)
		wantStats(t, c, auth.CacheStats{Hits: 2, Misses: 5, Invalidations: 2, Entries: 0})
		if _, err := e.md.SetAccountDisabled(e.ctx(), &metadatapb.SetAccountDisabledRequest{RequestId: e.reqID(), Email: user}); err != nil {
			t.Fatal(err)
		}
		e.login(c, user, "new", nil)
		if _, err := e.md.DeleteAccount(e.ctx(), &metadatapb.DeleteAccountRequest{RequestId: e.reqID(), Email: user}); err != nil {
			t.Fatal(err)
		}
		e.login(c, user, "new", auth.ErrInvalidCredentials)
		wantStats(t, c, auth.CacheStats{Hits: 2, Misses: 7, Invalidations: 3, Entries: 0})

		// Created again with another password: the old one is not let in from the cache.
		e.addAccount(user, "other")
		e.login(c, user, "other", nil)
		e.login(c, user, "new", auth.ErrInvalidCredentials)
	})

	t.Run("Off", func(t *testing.T) {
		e.t = t
		var c *auth.Cache
		if c = auth.NewCache(0, 10); c != nil {
			t.Fatal("NewCache with a zero TTL made a cache")
		}
		if auth.NewCache(time.Minute, 0) != nil {
			t.Fatal("NewCache with a zero size made a cache")
		}
		e.addAccount("off@acme.test", "pw")
		before := e.hashes()
		e.login(c, "off@acme.test", "pw", nil)
		e.login(c, "off@acme.test", "pw", nil)
		if n := e.hashes() - before; n != 2 {
			t.Fatalf("%d hashes for two logins without a cache, want 2", n)
		}
		wantStats(t, c, auth.CacheStats{})
	})
}

// TestCacheKeyIsPerProcess: the key of an account and password is a MAC under a key of the
// cache's own, so what one process holds says nothing in another (nor on disk, in a core
// dump read elsewhere) without that key; and no two account and password pairs that
// concatenate alike share a key.
func TestCacheKeyIsPerProcess(t *testing.T) {
	a, b := auth.NewCache(time.Minute, 1), auth.NewCache(time.Minute, 1)
	first, again := auth.KeyOf(a, "u@acme.test", "pw"), auth.KeyOf(a, "u@acme.test", "pw")
	if first != again {
		t.Fatal("one cache keys the same pair differently")
	}
	if first == auth.KeyOf(b, "u@acme.test", "pw") {
		t.Fatal("two caches share a key")
	}
	if auth.KeyOf(a, "u@acme.test", "xpw") == auth.KeyOf(a, "u@acme.testx", "pw") {
		t.Fatal("the email's end and the password's start are confused")
	}
}

// TestCacheRemember: what a Directory remembers is found only with the same login (any
// case) and password, for the TTL, and can be forgotten; a nil Cache remembers nothing.
func TestCacheRemember(t *testing.T) {
	c := auth.NewCache(time.Minute, 10)
	now := time.Unix(1_000_000, 0)
	auth.SetClock(c, func() time.Time { return now })
	c.Remember("Alice@Example.org", "pw", []byte("stamp"))
	if got, ok := c.Recall("alice@example.org", "pw"); !ok || string(got) != "stamp" {
		t.Fatalf("recall = %q, %v", got, ok)
	}
	for _, miss := range [][2]string{{"alice@example.org", "PW"}, {"alice@example.org", ""}, {"bob@example.org", "pw"}} {
		if _, ok := c.Recall(miss[0], miss[1]); ok {
			t.Fatalf("recalled %q with password %q", miss[0], miss[1])
		}
	}
	now = now.Add(time.Minute)
	if _, ok := c.Recall("alice@example.org", "pw"); ok {
		t.Fatal("recalled after the TTL")
	}
	c.Remember("alice@example.org", "pw", []byte("again"))
	c.Forget("ALICE@example.org", "pw")
	if _, ok := c.Recall("alice@example.org", "pw"); ok {
		t.Fatal("recalled after Forget")
	}
	if s := c.Stats(); s.Hits != 0 || s.Misses != 0 {
		t.Fatalf("a directory's entries counted as logins: %+v", s)
	}
	var none *auth.Cache
	none.Remember("alice@example.org", "pw", []byte("x"))
	if _, ok := none.Recall("alice@example.org", "pw"); ok {
		t.Fatal("a nil cache recalled")
	}
}
