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
// An account a.Directory handles is checked there alone (an LDAP bind), under the guard
// like every other mechanism: the directory admits the attempt through the leader's guard
// before it binds (GuardLogin ADMIT, so a throttled or locked-out client costs the
// directory nothing and cannot trip its own lockout policy), and the outcome is reported
// after (Settle).
func (l *Logins) Login(ctx context.Context, md metadatapb.MetadataClient, cache *Cache, a Attempt, log *slog.Logger) (*metadatapb.Account, error) {
	ip := RemoteIP(a.Remote)
	if a.Directory != nil {
		admit := func(ctx context.Context) error {
			_, err := l.guarded(ctx, a, ip, log, guardCall(md, a, ip, metadatapb.LoginOutcome_LOGIN_OUTCOME_ADMIT))
			return err
		}
		// ctx, not one call's deadline: the directory waits out the guard's delays in
		// admit and bounds its own calls.
		account, handled, err := a.Directory.CheckPassword(ctx, a.Username, a.Password, admit)
		if handled {
			if errors.Is(err, ErrTooManyFailures) {
				return nil, err // refused by the guard: counted and logged there
			}
			if serr := l.Settle(ctx, md, a, outcomeOf(err), ReasonPassword, log); serr != nil {
				return nil, serr
			}
			return account, err
		}
	}
	account, err := l.guarded(ctx, a, ip, log, func(ctx context.Context) (*metadatapb.Account, error) {
		return cache.CheckPassword(ctx, md, a.Service, a.Username, a.Password, ip)
	})
	if errors.Is(err, ErrTooManyFailures) {
		return nil, err
	}
	l.record(log, a, ip, outcomeOf(err), ReasonPassword)
	return account, err
}

// Outcome is the result of a credential check, as the guard and the metrics see it.
type Outcome int

const (
	// Success: the credential was accepted.
	Success Outcome = iota
	// Failure: the credential was refused (wrong password, proof or token, unknown or
	// disabled account).
	Failure
	// Unchecked: the check could not be made (the metadata service, an OAuth issuer or a
	// directory did not answer); not reported to the guard, counted as "error".
	Unchecked
)

// outcomeOf classes a password check's error.
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, ErrInvalidCredentials):
		return Failure
	}
	return Unchecked
}

// Reasons of the failure line, by what was refused.
const (
	ReasonPassword = "invalid credentials"
	ReasonToken    = "invalid token"
	ReasonProof    = "invalid proof"
)

// Settle is the guard of a login the frontend checked itself (a SCRAM proof, an OAuth
// token: frontend/sasl; an LDAP bind: Login): it reports the outcome to the metadata
// leader's brute-force guard (GuardLogin), which admits the report first, waiting out the
// delays it gives as Login does; then it counts the login and logs a failure with reason
// in the fail2ban line. It returns nil when the caller may answer its own outcome, or:
//
//   - ErrTooManyFailures when the guard refused the attempt (throttled past MaxWait, or
//     locked out): the caller must refuse the login whatever its outcome, so a client
//     learns whether its credential was right only once the guard admits it; a refused
//     report counts no failure;
//   - the metadata service's error when it could not take a success's report (the login
//     fails as a password login would; a failure's report that cannot be made leaves the
//     refusal as it is).
//
// An Unchecked outcome is only counted ("error").
func (l *Logins) Settle(ctx context.Context, md metadatapb.MetadataClient, a Attempt, outcome Outcome, reason string, log *slog.Logger) error {
	ip := RemoteIP(a.Remote)
	if outcome != Unchecked {
		want := metadatapb.LoginOutcome_LOGIN_OUTCOME_SUCCESS
		if outcome == Failure {
			want = metadatapb.LoginOutcome_LOGIN_OUTCOME_FAILURE
		}
		_, err := l.guarded(ctx, a, ip, log, guardCall(md, a, ip, want))
		switch {
		case errors.Is(err, ErrTooManyFailures):
			return err
		case err != nil && outcome == Success && status.Code(err) != codes.Unimplemented:
			// (Unimplemented: a metadata node older than GuardLogin, which has no guard
			// for this mechanism to consult.)
			l.count(a.Protocol, "error")
			return err
		case err != nil:
			log.Debug("report a failed login to the guard", "err", err)
		}
	}
	l.record(log, a, ip, outcome, reason)
	return nil
}

// guardCall is a GuardLogin of a's account from ip with outcome, for guarded.
func guardCall(md metadatapb.MetadataClient, a Attempt, ip string, outcome metadatapb.LoginOutcome) func(context.Context) (*metadatapb.Account, error) {
	return func(ctx context.Context) (*metadatapb.Account, error) {
		_, err := md.GuardLogin(ctx, &metadatapb.GuardLoginRequest{Email: a.Username, RemoteIp: ip, Outcome: outcome})
		if t := throttled(err); t != nil {
			return nil, t
		}
		return nil, err
	}
}

// guarded makes the call try (one metadata call under the leader's guard, each bounded by
// a.RPCTimeout) until the guard admits it: a throttled attempt waits the delay the leader
// gave, holding its client, and asks again; one locked out, throttled past MaxWait or
// throttled again too often is counted and logged here and ends in ErrTooManyFailures.
// Any other answer of try is returned as it is.
func (l *Logins) guarded(ctx context.Context, a Attempt, ip string, log *slog.Logger, try func(context.Context) (*metadatapb.Account, error)) (*metadatapb.Account, error) {
	var waited time.Duration
	for round := 0; ; round++ {
		callCtx, cancel := context.WithTimeout(ctx, a.RPCTimeout)
		account, err := try(callCtx)
		cancel()
		var t *ThrottledError
		if !errors.As(err, &t) {
			if waited > 0 {
				l.observeWait(waited)
			}
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

// record counts a checked login by its outcome and logs a refused one with reason.
func (l *Logins) record(log *slog.Logger, a Attempt, ip string, outcome Outcome, reason string) {
	switch outcome {
	case Success:
		l.count(a.Protocol, "success")
	case Failure:
		l.count(a.Protocol, "failure")
		l.logFailure(log, a, ip, reason)
	default:
		l.count(a.Protocol, "error")
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
