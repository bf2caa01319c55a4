// Package sasl is the SASL server (RFC 4422) the mail protocols share: IMAP AUTHENTICATE
// (frontend/imap) and ManageSieve AUTHENTICATE (frontend/managesieve) look a mechanism up
// here, feed it the client's responses and send its challenges in their own syntax.
//
// A mechanism is one row of the mechanisms table (mechanisms.go): its name, when it is
// offered, and how an exchange starts. An exchange is a multi-step conversation: Next takes
// the client's response (nil when the client sent no initial response) and returns either
// a challenge to send or the outcome, an account and possibly additional data with success.
//
// Invariants:
//
//   - Every login, whatever the mechanism, goes through the metadata leader's brute-force
//     guard, is counted and every refusal logged through Conn.Logins (frontend/auth): a
//     password (PLAIN, and IMAP LOGIN through Conn.CheckPassword) by Logins.Login, a SCRAM
//     proof and a bearer token by Logins.Settle once the frontend checked them. A login
//     the guard refuses is auth.ErrTooManyFailures, whatever its credential.
//   - Every refused credential is ErrAuthFailed (the protocols answer NO
//     [AUTHENTICATIONFAILED]), possibly wrapping the reason for the log; malformed
//     messages wrap ErrMalformed; an OAuth issuer or account directory that cannot be
//     reached is ErrUnavailable, and a metadata service that cannot answer is its own
//     error (for both the protocols answer "try again later").
//   - A mechanism that sends a password or a bearer token (PLAIN, OAUTHBEARER, XOAUTH2)
//     is offered only where the plaintext policy of frontend/auth lets a password
//     through; a -PLUS mechanism only over TLS whose tls-exporter channel binding is
//     defined (RFC 9266 2: TLS 1.3, or TLS 1.2 with the extended master secret).
//   - An exchange holds no password longer than its Next call, and learns nothing more
//     about accounts than a login does: an account without SCRAM keys runs the exchange
//     with made-up keys and fails at the proof, like a wrong password.
package sasl

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

var (
	// ErrAuthFailed is every refused credential.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrAuthorization is a request to act as another user (an authzid that is not the
	// authentication identity), which Strata does not allow.
	ErrAuthorization = errors.New("acting as another user is not allowed")
	// ErrMalformed is a client message that does not parse; the error wraps it with detail.
	ErrMalformed = errors.New("malformed SASL message")
	// ErrUnsupported is a mechanism that is not offered on the connection.
	ErrUnsupported = errors.New("unsupported authentication mechanism")
	// ErrEncryptionNeeded is a mechanism that is offered only over TLS on this connection.
	ErrEncryptionNeeded = errors.New("mechanism allowed only over TLS")
	// ErrUnavailable is a credential that could not be checked for a failure on the
	// server's side other than the metadata service (an OAuth issuer whose keys cannot be
	// fetched, an LDAP directory that does not answer): the protocols answer "try again
	// later".
	ErrUnavailable = errors.New("authentication source unavailable")
)

// Conn is what a mechanism knows of the connection it runs on.
type Conn struct {
	Metadata metadatapb.MetadataClient
	// Cache is the verified-credentials cache of password mechanisms (nil: none).
	Cache *auth.Cache
	// Directory checks the passwords of tenants that keep them outside Strata (LDAP);
	// nil: none. Their accounts have no SCRAM keys, so only PLAIN logs them in.
	Directory auth.Directory
	// Service names the protocol (auth.ServiceIMAP, ...): in the logs and metrics of
	// Logins, and to the metadata service, where an app password logs in only where its
	// scopes allow.
	Service string
	// Logins is the login bookkeeping (frontend/auth): passwords go through Logins.Login,
	// SCRAM proofs and OAuth tokens through Logins.Settle (the brute-force guard, its
	// delays, metrics, the fail2ban line). A nil Logins counts nothing but still guards.
	Logins *auth.Logins
	// Log gets the failure lines of Logins; nil: slog.Default().
	Log *slog.Logger
	// RPCTimeout bounds each metadata call of an exchange (default 15 s); the context of
	// Next bounds the whole, throttle delays included.
	RPCTimeout time.Duration
	Policy     auth.Policy
	Remote     net.Addr
	// TLS is the connection's TLS state; nil without TLS.
	TLS *tls.ConnectionState
	// ScramSHA1 offers SCRAM-SHA-1 and SCRAM-SHA-1-PLUS (RFC 5802), off by default.
	ScramSHA1 bool
	// OAuth verifies the bearer tokens of OAUTHBEARER and XOAUTH2; nil: the mechanisms
	// are not offered.
	OAuth *oauth.Verifier
}

// defaultRPCTimeout bounds a metadata call when Conn.RPCTimeout is not set.
const defaultRPCTimeout = 15 * time.Second

// callContext bounds one metadata call of an exchange.
func (c *Conn) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.rpcTimeout())
}

func (c *Conn) rpcTimeout() time.Duration {
	if c.RPCTimeout > 0 {
		return c.RPCTimeout
	}
	return defaultRPCTimeout
}

func (c *Conn) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// attempt describes a login of username on c to Logins.
func (c *Conn) attempt(username string) auth.Attempt {
	return auth.Attempt{Protocol: c.Service, Service: c.Service, Remote: c.Remote, Username: username, RPCTimeout: c.rpcTimeout()}
}

// Step is what an exchange answers to one client response.
type Step struct {
	// Challenge is the server's next challenge, when Done is false.
	Challenge []byte
	// Done ends the exchange with success: Account is the authenticated account, and
	// Final, when not nil, the additional data with success (RFC 4422 3.6) the client
	// must receive before the success (SCRAM's server-final-message).
	Done    bool
	Account *metadatapb.Account
	Final   []byte
}

// Exchange is one authentication in progress.
type Exchange interface {
	// Next takes the client's response, nil for an absent initial response.
	Next(ctx context.Context, response []byte) (Step, error)
}

// Mechanism is a row of the mechanisms table.
type Mechanism struct {
	Name string
	// Offered reports whether c offers the mechanism; nil: always.
	Offered func(c *Conn) bool
	// Plaintext marks a mechanism that sends the password itself: it is refused with
	// ErrEncryptionNeeded where the plaintext policy does not let a password through.
	Plaintext bool
	Start     func(c *Conn) Exchange
}

func (m *Mechanism) offered(c *Conn) bool {
	if m.Plaintext && !c.plaintextAllowed() {
		return false
	}
	return m.Offered == nil || m.Offered(c)
}

func (c *Conn) plaintextAllowed() bool {
	return c.Policy.PlaintextAllowed(c.TLS != nil, c.Remote)
}

// Mechanisms returns the names of the mechanisms c offers, in the order of the table
// (strongest first).
func (c *Conn) Mechanisms() []string {
	var names []string
	for i := range mechanisms {
		if mechanisms[i].offered(c) {
			names = append(names, mechanisms[i].Name)
		}
	}
	return names
}

// Start begins an exchange of the named mechanism (compared without case, RFC 4422 3.1).
// ErrUnsupported for a mechanism c cannot run (unknown, or its Offered says no);
// ErrEncryptionNeeded for a plaintext mechanism that the policy keeps for TLS.
func (c *Conn) Start(name string) (Exchange, error) {
	for i := range mechanisms {
		m := &mechanisms[i]
		if !strings.EqualFold(m.Name, name) {
			continue
		}
		if m.Offered != nil && !m.Offered(c) {
			return nil, ErrUnsupported
		}
		if m.Plaintext && !c.plaintextAllowed() {
			return nil, ErrEncryptionNeeded
		}
		return m.Start(c), nil
	}
	return nil, ErrUnsupported
}
