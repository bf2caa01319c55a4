package metadata

import (
	"container/list"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// AuthGuard is the brute-force protection every frontend shares: failed-login counters kept
// in the memory of the node that verifies passwords, the leader of the account's shard
// group (Authenticate, CheckCredential and GuardLogin are leader reads), so a client gets
// no more guesses by spreading them over frontends. The frontend passes the client's IP
// address with each login (AuthenticateRequest.remote_ip); the logins it checks itself (a
// SCRAM proof, an OAuth token, an LDAP bind) are admitted and reported through GuardLogin,
// so every mechanism counts on the same counters.
//
// Three counters, each forgetting its failures FailureWindow after the last one:
//
//   - pair, (account, IP): after FreeFailures failures each attempt must wait an
//     exponential delay (BaseDelay doubling, at most MaxDelay) after the last failure;
//     PairLockoutFailures failures lock the pair for PairLockout. This is the only lockout
//     an account gets, so an attacker locks the account out of his own address only.
//   - ip, the address whatever the account (IPv6 by /64): the same delays; IPLockoutFailures
//     failures lock the address for IPLockout, for every account it has not logged in to
//     successfully (below).
//   - account, from all untrusted addresses: the same exponential delay but capped at
//     AccountMaxDelay, and never a lockout. A guessing botnet of many addresses gets one
//     password check per AccountMaxDelay for the account, however many addresses it has.
//
// A successful login makes (account, IP) trusted for TrustWindow: from there the ip and
// account counters do not apply, only the pair's, so the real user logs in from his usual
// address while an attack from elsewhere throttles the account and locks the attackers'
// addresses. Failures from a trusted pair still count for the pair (a stale password on a
// phone) but not for the account.
//
// Invariants:
//
//   - An attempt is refused before its password is hashed (no argon2id work), and the
//     delay is owed before a check, not after a failure: a client that gives up waiting
//     and reconnects gets no check sooner. Refused attempts do not count as failures.
//   - Refusals say only "throttled" or "locked" with a retry time, for unknown accounts
//     as for real ones (failures of unknown names count like any other), so they tell
//     nothing about which accounts exist or whether a password was right.
//   - Memory is bounded: each table holds at most MaxEntries keys, the least recently
//     touched dropped first.
//   - The state is not replicated: it lives in each node's memory and only the leader's
//     counts. After a leader change the new leader starts from what it had (nothing or
//     old expired counts), so an attack gets a fresh budget per election; elections are
//     rare, and a restarted attack is throttled again within FreeFailures attempts.
type AuthGuard struct {
	cfg AuthGuardConfig
	now func() time.Time

	mu                   sync.Mutex
	pairs, ips, accounts guardTable // failure counters
	trusted              guardTable // successful (account, IP) pairs; failures unused

	failures  *prometheus.CounterVec // by scope
	refusals  *prometheus.CounterVec // by reason, scope
	lockouts  *prometheus.CounterVec // by scope
	successes prometheus.Counter
}

// AuthGuardConfig configures an AuthGuard; zero fields take the defaults
// (DefaultAuthGuardConfig).
type AuthGuardConfig struct {
	// Disabled turns the guard off: every attempt is checked.
	Disabled bool
	// FreeFailures is how many failures of a counter cost no delay (typing errors).
	FreeFailures int
	// BaseDelay is the first delay after the free failures; each failure doubles it.
	BaseDelay time.Duration
	// MaxDelay caps the delay of the pair and ip counters.
	MaxDelay time.Duration
	// AccountMaxDelay caps the delay of the account counter.
	AccountMaxDelay time.Duration
	// PairLockoutFailures failures of one account from one address lock that pair for
	// PairLockout.
	PairLockoutFailures int
	PairLockout         time.Duration
	// IPLockoutFailures failures from one address, whatever the accounts, lock the address
	// for IPLockout, except for the accounts it is trusted for.
	IPLockoutFailures int
	IPLockout         time.Duration
	// FailureWindow is how long a counter remembers its failures after its last one.
	FailureWindow time.Duration
	// TrustWindow is how long a successful login trusts its (account, IP) pair.
	TrustWindow time.Duration
	// MaxEntries bounds each table.
	MaxEntries int
}

// DefaultAuthGuardConfig are the defaults of the --auth-* guard flags.
var DefaultAuthGuardConfig = AuthGuardConfig{
	FreeFailures:        3,
	BaseDelay:           time.Second,
	MaxDelay:            30 * time.Second,
	AccountMaxDelay:     5 * time.Second,
	PairLockoutFailures: 10,
	PairLockout:         15 * time.Minute,
	IPLockoutFailures:   100,
	IPLockout:           time.Hour,
	FailureWindow:       time.Hour,
	TrustWindow:         30 * 24 * time.Hour,
	MaxEntries:          100_000,
}

func (c AuthGuardConfig) withDefaults() AuthGuardConfig {
	d := DefaultAuthGuardConfig
	setInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.FreeFailures < 0 {
		c.FreeFailures = 0
	} else if c.FreeFailures == 0 {
		c.FreeFailures = d.FreeFailures
	}
	setDur(&c.BaseDelay, d.BaseDelay)
	setDur(&c.MaxDelay, d.MaxDelay)
	setDur(&c.AccountMaxDelay, d.AccountMaxDelay)
	setInt(&c.PairLockoutFailures, d.PairLockoutFailures)
	setDur(&c.PairLockout, d.PairLockout)
	setInt(&c.IPLockoutFailures, d.IPLockoutFailures)
	setDur(&c.IPLockout, d.IPLockout)
	setDur(&c.FailureWindow, d.FailureWindow)
	setDur(&c.TrustWindow, d.TrustWindow)
	setInt(&c.MaxEntries, d.MaxEntries)
	return c
}

// NewAuthGuard returns a guard with cfg (zero fields: the defaults). FreeFailures set to a
// negative value means none.
func NewAuthGuard(cfg AuthGuardConfig) *AuthGuard {
	g := &AuthGuard{cfg: cfg.withDefaults(), now: time.Now}
	for _, t := range []*guardTable{&g.pairs, &g.ips, &g.accounts, &g.trusted} {
		t.init(g.cfg.MaxEntries)
	}
	g.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_auth_guard_failures_total",
		Help: "Failed password checks the metadata leader counted, by counter (pair, ip, account).",
	}, []string{"scope"})
	g.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_auth_guard_refusals_total",
		Help: "Logins the metadata leader refused without checking the password, by reason (throttled, locked) and the counter that refused (pair, ip, account).",
	}, []string{"reason", "scope"})
	g.lockouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_auth_guard_lockouts_total",
		Help: "Lockouts started: an (account, IP) pair or an address over its failure limit.",
	}, []string{"scope"})
	g.successes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_auth_guard_trusted_logins_total",
		Help: "Successful logins, each trusting its (account, IP) pair.",
	})
	return g
}

// guardEntry is one counter.
type guardEntry struct {
	key         string
	failures    int
	last        time.Time // of the last failure, or of the success for trusted
	lockedUntil time.Time
}

// guardTable is a bounded map of counters, least recently touched evicted first.
type guardTable struct {
	max     int
	entries map[string]*list.Element // of *guardEntry
	lru     list.List                // front: most recently touched
}

func (t *guardTable) init(max int) {
	t.max = max
	t.entries = make(map[string]*list.Element)
}

// get returns key's entry, or nil; an entry older than window (by last, and not locked) is
// dropped.
func (t *guardTable) get(key string, now time.Time, window time.Duration) *guardEntry {
	el, ok := t.entries[key]
	if !ok {
		return nil
	}
	e := el.Value.(*guardEntry)
	if now.Sub(e.last) > window && !now.Before(e.lockedUntil) {
		t.lru.Remove(el)
		delete(t.entries, key)
		return nil
	}
	return e
}

// touch returns key's entry, made if missing (evicting beyond max), marked most recent.
func (t *guardTable) touch(key string, now time.Time, window time.Duration) *guardEntry {
	if e := t.get(key, now, window); e != nil {
		t.lru.MoveToFront(t.entries[key])
		return e
	}
	e := &guardEntry{key: key}
	t.entries[key] = t.lru.PushFront(e)
	for t.lru.Len() > t.max {
		oldest := t.lru.Back()
		t.lru.Remove(oldest)
		delete(t.entries, oldest.Value.(*guardEntry).key)
	}
	return e
}

func (t *guardTable) drop(key string) {
	if el, ok := t.entries[key]; ok {
		t.lru.Remove(el)
		delete(t.entries, key)
	}
}

// guardIP is the counter key of a client address: an IPv4 address, or an IPv6 address's
// /64 (one host's usual allocation); "" when addr is empty or not an address.
func guardIP(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

func pairKey(account, ip string) string { return ip + " " + account }

// delay is the wait owed after failures of a counter: none for the free ones, then
// BaseDelay doubling per failure, at most limit.
func (g *AuthGuard) delay(failures int, limit time.Duration) time.Duration {
	over := failures - g.cfg.FreeFailures
	if over <= 0 {
		return 0
	}
	d := g.cfg.BaseDelay
	for i := 1; i < over && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// guardRefusal is an attempt the guard refuses.
type guardRefusal struct {
	locked bool
	scope  string // pair, ip, account
	retry  time.Duration
}

// Admit decides whether an attempt at account from ip (AuthenticateRequest.remote_ip,
// may be empty) may be checked now; a refusal is the gRPC error to answer. A nil guard
// admits everything.
func (g *AuthGuard) Admit(account, ip string) error {
	if g == nil || g.cfg.Disabled {
		return nil
	}
	r := g.admit(account, guardIP(ip))
	if r == nil {
		return nil
	}
	reason := metadatapb.AuthThrottledReason
	label := "throttled"
	msg := "too many failed logins, try again later"
	if r.locked {
		reason, label = metadatapb.AuthLockedReason, "locked"
		msg = "too many failed logins, locked out for now"
	}
	g.refusals.WithLabelValues(label, r.scope).Inc()
	st := status.New(codes.ResourceExhausted, msg)
	if with, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: map[string]string{"scope": r.scope}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(r.retry)},
	); err == nil {
		st = with
	}
	return st.Err()
}

func (g *AuthGuard) admit(account, ip string) *guardRefusal {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var worst *guardRefusal
	// consider makes e's state the refusal when it is worse than what was found: a lockout
	// over any delay, a longer wait over a shorter one.
	consider := func(e *guardEntry, scope string, limit time.Duration, lockable bool) {
		if e == nil {
			return
		}
		r := &guardRefusal{scope: scope}
		if lockable && now.Before(e.lockedUntil) {
			r.locked, r.retry = true, e.lockedUntil.Sub(now)
		} else if wait := e.last.Add(g.delay(e.failures, limit)).Sub(now); wait > 0 {
			r.retry = wait
		} else {
			return
		}
		if worst == nil || (r.locked && !worst.locked) || (r.locked == worst.locked && r.retry > worst.retry) {
			worst = r
		}
	}
	if ip != "" {
		consider(g.pairs.get(pairKey(account, ip), now, g.cfg.FailureWindow), "pair", g.cfg.MaxDelay, true)
		if g.isTrusted(account, ip, now) {
			return worst
		}
		consider(g.ips.get(ip, now, g.cfg.FailureWindow), "ip", g.cfg.MaxDelay, true)
	}
	consider(g.accounts.get(account, now, g.cfg.FailureWindow), "account", g.cfg.AccountMaxDelay, false)
	return worst
}

func (g *AuthGuard) isTrusted(account, ip string, now time.Time) bool {
	return g.trusted.get(pairKey(account, ip), now, g.cfg.TrustWindow) != nil
}

// Failed records a refused password of account from ip.
func (g *AuthGuard) Failed(account, ip string) {
	if g == nil || g.cfg.Disabled {
		return
	}
	ip = guardIP(ip)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	trusted := false
	if ip != "" {
		trusted = g.isTrusted(account, ip, now)
		g.fail(&g.pairs, pairKey(account, ip), "pair", now, g.cfg.PairLockoutFailures, g.cfg.PairLockout)
		g.fail(&g.ips, ip, "ip", now, g.cfg.IPLockoutFailures, g.cfg.IPLockout)
	}
	if !trusted {
		g.fail(&g.accounts, account, "account", now, 0, 0)
	}
}

// fail counts one failure on key of t, locking it for lockout when it reaches lockAt (0:
// never).
func (g *AuthGuard) fail(t *guardTable, key, scope string, now time.Time, lockAt int, lockout time.Duration) {
	e := t.touch(key, now, g.cfg.FailureWindow)
	e.failures++
	e.last = now
	g.failures.WithLabelValues(scope).Inc()
	if lockAt > 0 && e.failures >= lockAt {
		if !now.Before(e.lockedUntil) {
			g.lockouts.WithLabelValues(scope).Inc()
		}
		e.lockedUntil = now.Add(lockout)
	}
}

// Succeeded records a login of account from ip: the pair's failures are forgotten and the
// pair trusted for TrustWindow. The ip and account counters keep theirs (an attacker's own
// account must not reset his address's count).
func (g *AuthGuard) Succeeded(account, ip string) {
	if g == nil || g.cfg.Disabled {
		return
	}
	ip = guardIP(ip)
	if ip == "" {
		return
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	key := pairKey(account, ip)
	g.pairs.drop(key)
	g.trusted.touch(key, now, g.cfg.TrustWindow).last = now
	g.successes.Inc()
}

// AuthGuardStats are the sizes of a guard's tables.
type AuthGuardStats struct {
	Pairs, IPs, Accounts, Trusted int
}

// Stats returns the sizes of the tables (expired entries included until touched).
func (g *AuthGuard) Stats() AuthGuardStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return AuthGuardStats{Pairs: g.pairs.lru.Len(), IPs: g.ips.lru.Len(), Accounts: g.accounts.lru.Len(), Trusted: g.trusted.lru.Len()}
}

var guardEntriesDesc = prometheus.NewDesc("strata_auth_guard_entries",
	"Keys the brute-force guard holds, by table (pair, ip, account, trusted).", []string{"table"}, nil)

// Describe implements prometheus.Collector.
func (g *AuthGuard) Describe(ch chan<- *prometheus.Desc) {
	g.failures.Describe(ch)
	g.refusals.Describe(ch)
	g.lockouts.Describe(ch)
	g.successes.Describe(ch)
	ch <- guardEntriesDesc
}

// Collect implements prometheus.Collector.
func (g *AuthGuard) Collect(ch chan<- prometheus.Metric) {
	g.failures.Collect(ch)
	g.refusals.Collect(ch)
	g.lockouts.Collect(ch)
	g.successes.Collect(ch)
	s := g.Stats()
	for table, n := range map[string]int{"pair": s.Pairs, "ip": s.IPs, "account": s.Accounts, "trusted": s.Trusted} {
		ch <- prometheus.MustNewConstMetric(guardEntriesDesc, prometheus.GaugeValue, float64(n), table)
	}
}

// String describes the configuration for the startup log.
func (c AuthGuardConfig) String() string {
	if c.Disabled {
		return "off"
	}
	c = c.withDefaults()
	return fmt.Sprintf("delay %v doubling to %v after %d failures; pair locked %v after %d; address locked %v after %d; account delay at most %v",
		c.BaseDelay, c.MaxDelay, c.FreeFailures, c.PairLockout, c.PairLockoutFailures, c.IPLockout, c.IPLockoutFailures, c.AccountMaxDelay)
}
