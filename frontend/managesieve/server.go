package managesieve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/sieve"
)

// Config configures a ManageSieve Server.
type Config struct {
	Metadata metadatapb.MetadataClient
	Logger   *slog.Logger
	// TLS, when set, enables STARTTLS (RFC 5804 2.2); imap.KeyPair.TLSConfig makes one that
	// follows certificate reloads, the same pair IMAP presents.
	TLS *tls.Config
	// AuthCache is the process's verified-credentials cache, shared with IMAP; nil: every
	// AUTHENTICATE hashes the password.
	AuthCache *auth.Cache
	// Logins is IMAP's (frontend/auth): brute-force delays, failure log lines, metrics.
	Logins *auth.Logins
	// OAuth, when set, verifies the bearer tokens of AUTHENTICATE "OAUTHBEARER" (RFC 7628)
	// and "XOAUTH2" (mechanisms of frontend/sasl); nil turns both off.
	OAuth *oauth.Verifier
	// Directory checks the logins of tenants that keep their passwords outside Strata
	// (frontend/ldapauth), shared with IMAP; nil: every tenant's are Strata's.
	Directory auth.Directory
	// AllowPlaintextAuth and TrustLoopback are IMAP's plaintext policy (frontend/auth):
	// AUTHENTICATE PLAIN without TLS everywhere, or from loopback addresses.
	AllowPlaintextAuth bool
	TrustLoopback      bool
	// ScramSHA1 offers SCRAM-SHA-1 (RFC 5802) beside SCRAM-SHA-256, as IMAP's does.
	ScramSHA1 bool
	// Extensions are the Sieve capabilities scripts may use and the SIEVE capability
	// announces; nil: every one the interpreter implements (sieve.Extensions).
	Extensions []string
	// SieveLimits are the interpreter's limits scripts are compiled with, as delivery runs
	// them; MAXREDIRECTS announces MaxRedirects. Zero fields take sieve.DefaultLimits.
	SieveLimits sieve.Limits
	// Limits bound connections; zero fields take the defaults.
	Limits Limits
	// Proxy is IMAP's: the PROXY protocol from trusted networks (frontend/connserver).
	Proxy *connserver.Proxy
}

// Limits bound what clients can hold of a server.
type Limits struct {
	// MaxConnections is the most connections served at once; more are told BYE (TRYLATER)
	// and closed. Default 1000.
	MaxConnections int
	// MaxConnectionsPerIP is the most connections from one remote address, loopback
	// excepted (connserver); more are told BYE (TRYLATER). Default 50.
	MaxConnectionsPerIP int
	// MaxScriptSize bounds the literals of one command kept in memory (a script and its
	// name); a larger script is read and dropped and refused with QUOTA/MAXSIZE, the
	// owner's own limit is the metadata service's. Default 1 MiB, the most a tenant can
	// configure.
	MaxScriptSize int64
	// MaxDiscard is the largest literal read and dropped; a larger one ends the
	// connection. Default 16 times MaxScriptSize.
	MaxDiscard int64
	// MaxLine is the octets of a command outside its literals. Default 8 KiB.
	MaxLine int
	// MaxBadCommands is how many commands in a row may fail to parse or be unknown before
	// the server says BYE. Default 10.
	MaxBadCommands int
	// IdleTimeout is how long an authenticated session may wait between commands.
	// Default 30 minutes.
	IdleTimeout time.Duration
	// LoginTimeout is the same before authentication. Default 2 minutes.
	LoginTimeout time.Duration
	// WriteTimeout is how long one write to a client may block. Default 5 minutes.
	WriteTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set64 := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxConnections, 1000)
	set(&l.MaxConnectionsPerIP, 50)
	set64(&l.MaxScriptSize, 1<<20)
	set64(&l.MaxDiscard, 16*l.MaxScriptSize)
	set(&l.MaxLine, 8<<10)
	set(&l.MaxBadCommands, 10)
	setDur(&l.IdleTimeout, 30*time.Minute)
	setDur(&l.LoginTimeout, 2*time.Minute)
	setDur(&l.WriteTimeout, 5*time.Minute)
	return l
}

// rpcTimeout bounds one call to the metadata service.
const rpcTimeout = 30 * time.Second

// Server serves ManageSieve on the listeners given to Serve.
type Server struct {
	cfg        Config
	limits     Limits
	policy     auth.Policy
	extensions []string
	logger     *slog.Logger

	conns *connserver.Registry[*conn] // listeners and live connections
}

// NewServer returns a server that is not yet listening.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ext := cfg.Extensions
	if ext == nil {
		ext = sieve.Extensions()
	}
	conns := connserver.New[*conn]("ManageSieve", ErrServerClosed, cfg.Logger.With("proto", "managesieve"))
	conns.TrustProxies(cfg.Proxy)
	return &Server{
		cfg:        cfg,
		limits:     cfg.Limits.withDefaults(),
		policy:     auth.Policy{AllowPlaintext: cfg.AllowPlaintextAuth, TrustLoopback: cfg.TrustLoopback},
		extensions: ext,
		logger:     cfg.Logger.With("proto", "managesieve"),
		conns:      conns,
	}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("managesieve: server closed")

// Serve accepts connections on ln and serves each in its own goroutine. It returns when the
// listener closes: ErrServerClosed after Shutdown, the accept error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	return s.conns.Serve(ln, func(nc net.Conn, id uint64, load connserver.Load) (*conn, bool) {
		c := newConn(s, nc, id)
		// Over the limit, a connection is still answered, with BYE: the client learns why.
		switch {
		case load.Served >= s.limits.MaxConnections:
			c.refused = "Too many connections to this server, try again later"
		case load.FromAddress >= s.limits.MaxConnectionsPerIP:
			c.refused = "Too many connections from your address, try again later"
		}
		return c, c.refused == ""
	})
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	return s.conns.Closing()
}

// Shutdown stops accepting connections, tells every client BYE (after the command it is
// running, at once when it waits for one) and waits for the connections to close. When ctx
// ends first, the remaining connections are closed and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.conns.Shutdown(ctx)
}
