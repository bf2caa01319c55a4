package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// ThrottledError is a login the metadata leader refused without checking its password
// (metadata/authguard.go): too soon after failures (throttled) or locked out.
type ThrottledError struct {
	Locked     bool
	Scope      string // "pair", "ip" or "account"
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	if e.Locked {
		return fmt.Sprintf("too many failed logins: locked out (%s) for %v", e.Scope, e.RetryAfter)
	}
	return fmt.Sprintf("too many failed logins: throttled (%s) for %v", e.Scope, e.RetryAfter)
}

// throttled returns the *ThrottledError err carries, or nil.
func throttled(err error) *ThrottledError {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return nil
	}
	var t *ThrottledError
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			switch d.GetReason() {
			case metadatapb.AuthThrottledReason, metadatapb.AuthLockedReason:
				if t == nil {
					t = &ThrottledError{}
				}
				t.Locked = d.GetReason() == metadatapb.AuthLockedReason
				t.Scope = d.GetMetadata()["scope"]
			}
		case *errdetails.RetryInfo:
			if t == nil {
				t = &ThrottledError{}
			}
			t.RetryAfter = d.GetRetryDelay().AsDuration()
		}
	}
	if t == nil || t.Scope == "" {
		return nil // a ResourceExhausted of something else
	}
	return t
}

// ErrTooManyFailures is a login refused unchecked because of earlier failures (a
// ThrottledError the Logins gave up waiting on, or a lockout): protocols answer "try again
// later", not "wrong password".
var ErrTooManyFailures = errors.New("too many failed logins")

// Logins runs the logins of IMAP and ManageSieve in one process: it passes the client's
// address to the metadata leader's brute-force guard, waits out its delays, logs each
// failure in one line fail2ban can match (docs/security.md) and counts the results.
//
// Invariants:
//
//   - A throttled attempt waits here, holding its client, for the delay the leader gave
//     (at most MaxWait), then asks again; its password is checked only then. A client that
//     disconnects meanwhile gets nothing checked. A locked-out attempt is refused after
//     LockedReplyDelay (or the lockout's end if sooner), so a locked client cannot hammer.
//   - Every refused login, of any cause, logs one line at Warn, "authentication failed",
//     with the client's address as the first attribute, then the protocol and the account
//     name as the client gave it (quoted by the text handler, bounded in length): the
//     address cannot be forged through the user name. The password is never logged.
//   - A nil *Logins works with the defaults and counts nothing.
type Logins struct {
	// MaxWait is the longest throttle delay a login waits out; a longer one is refused.
	// Default 30 s.
	MaxWait time.Duration
	// LockedReplyDelay holds the answer to a locked-out login. Default 3 s.
	LockedReplyDelay time.Duration

	results *prometheus.CounterVec // by protocol, result
	waits   prometheus.Histogram
}

// Default Logins delays.
const (
	DefaultMaxWait          = 30 * time.Second
	DefaultLockedReplyDelay = 3 * time.Second
	// maxWaitRounds bounds how often one login is throttled again after waiting (other
	// attempts took the slot it waited for).
	maxWaitRounds = 4
	// maxLoggedName bounds the account name in the failure line.
	maxLoggedName = 256
)

// NewLogins returns Logins with metrics and the default delays.
func NewLogins() *Logins {
	return &Logins{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_auth_logins_total",
			Help: "Logins, by password, SCRAM or OAuth token, by protocol (imap, managesieve) and result: success, failure (wrong password, failed SCRAM proof or refused token, unknown or disabled account), throttled (gave up waiting), locked, error (metadata or token issuer unavailable).",
		}, []string{"protocol", "result"}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_auth_throttle_wait_seconds",
			Help:    "Time logins waited for the metadata leader's brute-force delay before their password was checked.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 4, 8, 16, 30, 60},
		}),
	}
}

// Attempt is one password login.
type Attempt struct {
	Protocol string // "imap", "managesieve": in logs and metrics
	// Service is the app-password scope the login is for (ServiceIMAP, ServiceManageSieve;
	// AuthenticateRequest.service); empty: only the account password is accepted.
	Service            string
	Remote             net.Addr // the client, after a PROXY header from a trusted proxy
	Username, Password string
	// RPCTimeout bounds each metadata call; the waits between them are bounded by ctx.
	RPCTimeout time.Duration
	// Directory, when set, checks the passwords of the accounts it handles (LDAP tenants,
	// frontend/ldapauth) instead of the metadata service.
	Directory Directory
}

// Login checks a's password through cache (nil: none) with the metadata service md and
// returns the account. Errors: ErrInvalidCredentials, ErrTooManyFailures, or the service's
// own (unavailable). log gets the failure lines.
//
// An account a.Directory handles is checked there alone: the directory's answer is counted
// and logged like the metadata service's (ErrDirectoryUnavailable as an error), but the
// metadata leader's guard neither delays nor counts it, as it never sees the password
// (the directory's own lockout policy, e.g. OpenLDAP's ppolicy, and fail2ban on the
// failure line apply; docs/security.md).
func (l *Logins) Login(ctx context.Context, md metadatapb.MetadataClient, cache *Cache, a Attempt, log *slog.Logger) (*metadatapb.Account, error) {
	ip := RemoteIP(a.Remote)
	if a.Directory != nil {
		callCtx, cancel := context.WithTimeout(ctx, a.RPCTimeout)
		account, handled, err := a.Directory.CheckPassword(callCtx, a.Username, a.Password)
		cancel()
		if handled {
			l.record(log, a, ip, err)
			return account, err
		}
	}
	var waited time.Duration
	for round := 0; ; round++ {
		callCtx, cancel := context.WithTimeout(ctx, a.RPCTimeout)
		account, err := cache.CheckPassword(callCtx, md, a.Service, a.Username, a.Password, ip)
		cancel()
		var t *ThrottledError
		if !errors.As(err, &t) {
			if waited > 0 {
				l.observeWait(waited)
			}
			l.record(log, a, ip, err)
			return account, err
		}
		if t.Locked || t.RetryAfter > l.maxWait() || round == maxWaitRounds {
			result := "throttled"
			hold := min(t.RetryAfter, l.maxWait())
			if t.Locked {
				result, hold = "locked", min(t.RetryAfter, l.lockedReplyDelay())
			}
			l.count(a.Protocol, result)
			l.logFailure(log, a, ip, result+" ("+t.Scope+")")
			sleep(ctx, hold)
			return nil, ErrTooManyFailures
		}
		if !sleep(ctx, t.RetryAfter) {
			return nil, ctx.Err()
		}
		waited += t.RetryAfter
	}
}

// record counts a checked login by its result and logs a refused one.
func (l *Logins) record(log *slog.Logger, a Attempt, ip string, err error) {
	switch {
	case err == nil:
		l.count(a.Protocol, "success")
	case errors.Is(err, ErrInvalidCredentials):
		l.count(a.Protocol, "failure")
		l.logFailure(log, a, ip, "invalid credentials")
	default:
		l.count(a.Protocol, "error")
	}
}

// TokenLogin counts an OAuth bearer-token login (SASL OAUTHBEARER or XOAUTH2,
// frontend/oauth) by result, "success", "failure" (a refused token) or "error" (issuer or
// metadata unavailable), and logs a refused one in the line a wrong password gets, with
// a.Username the identity the client named (a.Password unused): fail2ban bans an address
// that keeps sending bad tokens as one that guesses passwords. The metadata leader's guard
// does not see tokens: it neither delays them nor counts their failures (a token is a
// signature, not a guessable secret; docs/security.md).
func (l *Logins) TokenLogin(log *slog.Logger, a Attempt, result string) {
	l.checked(log, a, result, "invalid token")
}

// ScramLogin counts a SASL SCRAM login (frontend/sasl) by result, "success", "failure" (a
// wrong proof, an unknown account or one without SCRAM keys) or "error" (metadata
// unavailable), and logs a failure in the line a wrong password gets, as TokenLogin does.
// The metadata leader's guard does not see SCRAM proofs either: the frontend checks them
// against the stored keys it fetched (GetScramCredentials), so the leader never learns the
// result (docs/security.md); fail2ban on the failure line is what bans a guessing address.
func (l *Logins) ScramLogin(log *slog.Logger, a Attempt, result string) {
	l.checked(log, a, result, "invalid proof")
}

// checked counts a login the frontend checked itself and logs it when it failed.
func (l *Logins) checked(log *slog.Logger, a Attempt, result, reason string) {
	l.count(a.Protocol, result)
	if result == "failure" {
		l.logFailure(log, a, RemoteIP(a.Remote), reason)
	}
}

// logFailure writes the line fail2ban matches (docs/security.md): client_ip first.
func (l *Logins) logFailure(log *slog.Logger, a Attempt, ip, reason string) {
	name := a.Username
	if len(name) > maxLoggedName {
		name = name[:maxLoggedName]
	}
	// An empty address (not TCP) is logged as client_ip="", which the filter does not match.
	log.Warn("authentication failed", "client_ip", ip, "protocol", a.Protocol, "account", name, "reason", reason)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *Logins) maxWait() time.Duration {
	if l == nil || l.MaxWait <= 0 {
		return DefaultMaxWait
	}
	return l.MaxWait
}

func (l *Logins) lockedReplyDelay() time.Duration {
	if l == nil || l.LockedReplyDelay <= 0 {
		return DefaultLockedReplyDelay
	}
	return l.LockedReplyDelay
}

func (l *Logins) count(protocol, result string) {
	if l != nil && l.results != nil {
		l.results.WithLabelValues(protocol, result).Inc()
	}
}

func (l *Logins) observeWait(d time.Duration) {
	if l != nil && l.waits != nil {
		l.waits.Observe(d.Seconds())
	}
}

// Describe implements prometheus.Collector; a nil Logins exports nothing.
func (l *Logins) Describe(ch chan<- *prometheus.Desc) {
	if l != nil && l.results != nil {
		l.results.Describe(ch)
		l.waits.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (l *Logins) Collect(ch chan<- prometheus.Metric) {
	if l != nil && l.results != nil {
		l.results.Collect(ch)
		l.waits.Collect(ch)
	}
}

// RemoteIP is the IP address of a TCP remote address as text, "" for any other address.
func RemoteIP(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return ""
}

// AccountSessions counts one server's authenticated sessions per account, for the
// per-account connection limit (IMAP Limits.MaxConnectionsPerAccount). The zero value is
// ready to use. The count is per frontend process, not cluster-wide.
type AccountSessions struct {
	mu sync.Mutex
	n  map[string]int
}

// Take counts one more session of account unless it has max already (max <= 0: no
// limit); it reports whether it did.
func (s *AccountSessions) Take(account string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max > 0 && s.n[account] >= max {
		return false
	}
	if s.n == nil {
		s.n = make(map[string]int)
	}
	s.n[account]++
	return true
}

// Release ends one session of account that Take counted.
func (s *AccountSessions) Release(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[account]--; s.n[account] <= 0 {
		delete(s.n, account)
	}
}
