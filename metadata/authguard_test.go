package metadata

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// guardClock is the guard's clock, moved by the test: the rules are about time, and the
// real-socket tests (frontend/imap bruteforce_test.go) cannot wait out hours.
type guardClock struct{ t time.Time }

func (c *guardClock) now() time.Time      { return c.t }
func (c *guardClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestGuard(cfg AuthGuardConfig) (*AuthGuard, *guardClock) {
	clock := &guardClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	g := NewAuthGuard(cfg)
	g.now = clock.now
	return g, clock
}

// verdict is Admit's answer as text: "ok", or "throttled/scope/retry", "locked/scope/retry".
func verdict(t *testing.T, g *AuthGuard, account, ip string) string {
	t.Helper()
	err := g.Admit(account, ip)
	if err == nil {
		return "ok"
	}
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("refusal code %v", st.Code())
	}
	var reason, scope string
	var retry time.Duration
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason, scope = d.GetReason(), d.GetMetadata()["scope"]
		case *errdetails.RetryInfo:
			retry = d.GetRetryDelay().AsDuration()
		}
	}
	kind := map[string]string{metadatapb.AuthThrottledReason: "throttled", metadatapb.AuthLockedReason: "locked"}[reason]
	return fmt.Sprintf("%s/%s/%v", kind, scope, retry)
}

var testGuardConfig = AuthGuardConfig{
	FreeFailures: 2, BaseDelay: time.Second, MaxDelay: 8 * time.Second, AccountMaxDelay: 2 * time.Second,
	PairLockoutFailures: 6, PairLockout: 10 * time.Minute, IPLockoutFailures: 20, IPLockout: time.Hour,
	FailureWindow: time.Hour, TrustWindow: 24 * time.Hour, MaxEntries: 1000,
}

// TestAuthGuardPairDelaysAndLockout: free failures, then a delay doubling up to its cap
// owed after each failure, then the pair's lockout, which ends after its time.
func TestAuthGuardPairDelaysAndLockout(t *testing.T) {
	g, clock := newTestGuard(testGuardConfig)
	const acct, ip = "bob@example.com", "203.0.113.1"
	var got []string
	for range 6 {
		got = append(got, verdict(t, g, acct, ip))
		g.Failed(acct, ip)
	}
	// After failures 1 and 2 nothing is owed; after 3 one second, doubling to the cap.
	want := []string{"ok", "ok", "ok", "throttled/pair/1s", "throttled/pair/2s", "throttled/pair/4s"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("attempt %d: %s, want %s", i+1, got[i], want[i])
		}
	}
	if v := verdict(t, g, acct, ip); v != "locked/pair/10m0s" {
		t.Errorf("after 6 failures: %s", v)
	}
	// Another address for the same account is not locked, only throttled by the account.
	if v := verdict(t, g, acct, "198.51.100.1"); v != "throttled/account/2s" {
		t.Errorf("same account from another address: %s", v)
	}
	clock.add(10 * time.Minute)
	if v := verdict(t, g, acct, ip); v != "ok" {
		t.Errorf("after the lockout: %s", v)
	}
	// The next failure locks the pair again at once (its count is still over the limit).
	g.Failed(acct, ip)
	if v := verdict(t, g, acct, ip); v != "locked/pair/10m0s" {
		t.Errorf("a failure after the lockout: %s", v)
	}
	// The window forgets it all.
	clock.add(time.Hour + 10*time.Minute + time.Second)
	if v := verdict(t, g, acct, ip); v != "ok" {
		t.Errorf("after the failure window: %s", v)
	}
}

// TestAuthGuardTrustedPair: a pair that logged in is past the address and account counters.
func TestAuthGuardTrustedPair(t *testing.T) {
	g, clock := newTestGuard(testGuardConfig)
	const acct, home = "bob@example.com", "192.0.2.10"
	g.Succeeded(acct, home)
	// Twenty bot addresses, three failures each: the account is throttled, no address locked.
	for i := range 20 {
		for range 3 {
			g.Failed(acct, fmt.Sprintf("203.0.113.%d", i))
		}
	}
	if v := verdict(t, g, acct, "198.51.100.9"); v != "throttled/account/2s" {
		t.Errorf("a new address under attack: %s", v)
	}
	if v := verdict(t, g, acct, home); v != "ok" {
		t.Errorf("the trusted pair under attack: %s", v)
	}
	// An address that sprayed accounts is locked for them all, but not for the account
	// trusted from it.
	const nat = "198.51.100.50"
	g.Succeeded(acct, nat)
	for i := range 20 {
		g.Failed(fmt.Sprintf("user%d@example.com", i), nat)
	}
	if v := verdict(t, g, "other@example.com", nat); v != "locked/ip/1h0m0s" {
		t.Errorf("another account from the locked address: %s", v)
	}
	if v := verdict(t, g, acct, nat); v != "ok" {
		t.Errorf("the trusted account from the locked address: %s", v)
	}
	// Trust ends after its window.
	clock.add(25 * time.Hour)
	g.Failed("x@example.com", home)
	g.Failed("y@example.com", home)
	g.Failed("z@example.com", home)
	if v := verdict(t, g, acct, home); v != "throttled/ip/1s" {
		t.Errorf("the pair after its trust window, its address failing: %s", v)
	}
}

// TestAuthGuardBounds: IPv6 clients are counted by /64, tables stay within MaxEntries, an
// empty address applies the account counter only, and a disabled guard admits everything.
func TestAuthGuardBounds(t *testing.T) {
	cfg := testGuardConfig
	cfg.MaxEntries = 10
	g, _ := newTestGuard(cfg)
	for i := range 3 {
		g.Failed(fmt.Sprintf("a%d@example.com", i), fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	if v := verdict(t, g, "new@example.com", "2001:db8:1:2:ffff::1"); v != "throttled/ip/1s" {
		t.Errorf("another address of the same /64: %s", v)
	}
	for i := range 100 {
		g.Failed(fmt.Sprintf("n%d@example.com", i), fmt.Sprintf("198.51.100.%d", i))
	}
	if s := g.Stats(); s.Pairs > 10 || s.IPs > 10 || s.Accounts > 10 {
		t.Errorf("tables beyond MaxEntries: %+v", s)
	}
	for range 3 {
		g.Failed("noip@example.com", "")
	}
	if v := verdict(t, g, "noip@example.com", ""); v != "throttled/account/1s" {
		t.Errorf("no address: %s", v)
	}
	off, _ := newTestGuard(AuthGuardConfig{Disabled: true})
	for range 50 {
		off.Failed("bob@example.com", "203.0.113.1")
	}
	if v := verdict(t, off, "bob@example.com", "203.0.113.1"); v != "ok" {
		t.Errorf("disabled guard: %s", v)
	}
}

// BenchmarkAuthGuardFailedLogin is the guard's share of a failed login on the leader: the
// Admit before the hash and the Failed after it, over many accounts and addresses (the
// tables full, evicting).
func BenchmarkAuthGuardFailedLogin(b *testing.B) {
	g := NewAuthGuard(AuthGuardConfig{MaxEntries: 10_000})
	accounts := make([]string, 4096)
	ips := make([]string, 4096)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("user%d@example.com", i)
		ips[i] = fmt.Sprintf("198.51.%d.%d", i/256, i%256)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		account, ip := accounts[i%len(accounts)], ips[(i*7)%len(ips)]
		_ = g.Admit(account, ip)
		g.Failed(account, ip)
	}
}
