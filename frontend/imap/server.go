// Package imap is Strata's IMAP protocol engine: it accepts client connections, parses
// commands with imapwire, runs them against the metadata service (gRPC) and the blob store,
// and keeps each selected session's view of its mailbox in step with the change feed.
//
// Invariants of the engine:
//
//   - One goroutine at a time serves a connection, reads from it and writes to it; the
//     change feed of a selected session and the account feed of a NOTIFY session only queue
//     changes, and wake the session when it waits in IDLE or with NOTIFY by ending its read
//     (park.go). The one other writer is the timer that sends a response held for a
//     pipeline (connWriter.hold), under the connection's own writer mutex. No lock that
//     another session may want is held while writing to a client: the session takes its
//     pending changes out of the queue under the queue's mutex and writes after releasing it.
//   - A session waiting for its client holds no read or write buffer and, once it parked
//     (parkDelay after its last response), one goroutine with a small stack, the one
//     blocked in its read of what the client sends next (park.go).
//   - Updates about the selected mailbox (EXISTS, EXPUNGE, FETCH FLAGS) are sent only where
//     RFC 9051 7 allows: before the tagged response of a command, and at once during IDLE
//     (RFC 2177). EXPUNGE is never sent while no command is in progress, nor in the response
//     to FETCH, STORE or SEARCH (RFC 9051 7.5.1); UID commands may carry it. NOTIFY (RFC
//     5465, notify.go) adds what it asks for between commands: EXISTS and FETCH, and EXPUNGE
//     only with SELECTED (not SELECTED-DELAYED); STATUS and LIST of other mailboxes. The
//     ADDTO and REMOVEFROM of updating contexts (RFC 5267 4.3, context.go) go with the
//     changes of the view they follow from: after EXISTS and FETCH, before EXPUNGE.
//   - The session's sequence numbers change only by the EXPUNGE and EXISTS responses it
//     sends, so the client and the session agree on every message number at all times.
//   - A change the session made itself (STORE, EXPUNGE) is applied to its view when the
//     command returns and reported once; the same change arriving on the feed is recognised
//     by its MODSEQ (or by the UID being gone) and dropped.
//   - A UID the session gave its client for its own APPEND, COPY or MOVE into the
//     selected mailbox (APPENDUID, COPYUID: RFC 4315 3) is never taken for a UID that does
//     not exist while the change feed has yet to bring it into the view (sync.go
//     awaitOwnAdditions): every command that reads the view by UID waits for it, or
//     answers NO [UNAVAILABLE] and changes nothing, when its set or its criteria can name
//     it (UID FETCH, STORE, COPY, MOVE, EXPUNGE, REPLACE through resolve or by their own
//     check; SEARCH, SORT and THREAD in searchMatches). SELECT and EXAMINE join a view
//     that holds the mailbox's state as the session last wrote it (joinView).
//   - A response waits for the responses of the commands pipelined after it only while
//     they run without waiting (conn.go commandDone, connWriter.hold): it goes out before
//     the next command reads from the client, calls the metadata service or waits for the
//     change feed, and at the latest after pipelineHold (2 ms).
//   - A body is durable in the blob store before the metadata that references it is
//     appended (APPEND spools, parses, Puts, then calls Metadata.Append).
//   - Every gRPC call takes a context derived from the connection's, with a deadline; the
//     connection's context is cancelled when it closes. The one exception is spam learning
//     (learn.go): a command only hands Config.Learner a function, which must not block, and
//     the learner reads the message later under its own context and deadline. Writes carry a request ID that is
//     reused when the call is retried, so a retry is applied once.
//   - Every goroutine of the engine recovers panics through Server.recoverPanic, which logs
//     them with the connection and counts them (RecoveredPanics); a connection's own
//     goroutine is recovered the same way by the connection registry (frontend/connserver).
//     A change feed that panicked, or whose stream cannot go on, ends its session with BYE
//     [UNAVAILABLE]: a session never stays without the updates it promised its client.
//   - Commands are read in order from one framer per transport, so a pipeline is answered in
//     the order sent; STARTTLS replaces the framer after its OK, dropping whatever the
//     client sent ahead in plaintext (RFC 9051 6.2.1). COMPRESS puts a decompressor between
//     the transport and the framer, and compresses responses, from the octet after its OK
//     (RFC 4978 3).
//   - Every write to a client has a deadline (Limits.WriteTimeout) and every wait for a
//     command an autologout timer (Limits.IdleTimeout, RFC 9051 5.4).
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Config configures an IMAP Server.
type Config struct {
	Metadata metadatapb.MetadataClient
	Blobs    blobstore.Store
	// StageBodies lets a blobstore.Stager Blobs make a body durable beside its metadata
	// Append instead of before it (frontend/ingest); set only where a staging recovery runs
	// after a machine crash (the embedded server).
	StageBodies bool
	SpoolDir    string // temporary files for incoming message literals
	// RecentBodies, when set, is given every body once it is stored, for a search
	// indexer in this process (ingest.Committer.Recent).
	RecentBodies ingest.RecentBodies
	Logger       *slog.Logger
	// AuthCache is the process's verified-credentials cache, shared with ManageSieve; nil:
	// every LOGIN and AUTHENTICATE hashes the password.
	AuthCache *auth.Cache
	// Logins waits out the metadata leader's brute-force delays, logs failed logins for
	// fail2ban and counts them (frontend/auth); shared with ManageSieve. nil: the defaults,
	// uncounted.
	Logins *auth.Logins
	// OAuth, when set, verifies the bearer tokens of AUTHENTICATE OAUTHBEARER (RFC 7628)
	// and XOAUTH2 (mechanisms of frontend/sasl); nil turns both off.
	OAuth *oauth.Verifier
	// Directory checks the logins of tenants that keep their passwords outside Strata
	// (frontend/ldapauth), shared with ManageSieve; nil: every tenant's are Strata's.
	Directory auth.Directory
	// AllowPlaintextAuth allows LOGIN and AUTHENTICATE PLAIN without TLS on every connection.
	AllowPlaintextAuth bool
	// TrustLoopback allows them without TLS on connections from a loopback address, where
	// the password never leaves the machine (the embedded mode).
	TrustLoopback bool
	// ScramSHA1 offers SCRAM-SHA-1 (RFC 5802) beside SCRAM-SHA-256, for old clients; the
	// metadata service must derive its keys (strata metadata --scram-sha1).
	ScramSHA1 bool
	// DisableUnauthenticate turns UNAUTHENTICATE (RFC 8437) off, which RFC 8437 8 asks a
	// server to allow.
	DisableUnauthenticate bool
	// DisableCompress turns COMPRESS=DEFLATE (RFC 4978) off.
	DisableCompress bool
	// SearchIndex says the metadata service keeps the text-search index (package
	// searchindex), whose fuzzy answers SEARCH=FUZZY (RFC 6203) needs: SEARCH=FUZZY is then
	// announced in every state (fuzzy.go). Without it a session announces SEARCH=FUZZY once
	// logged in when the metadata node that answered its login keeps the index
	// (Account.search_index), as a cluster's frontend learns it. A FUZZY key on a node
	// without the index matches exactly, which RFC 6203 3 allows.
	SearchIndex bool
	// MaxMessageSize is the largest message APPEND accepts (RFC 7889 APPENDLIMIT).
	MaxMessageSize int64
	// TLS, when set, enables STARTTLS (RFC 9051 6.2.1) and ServeTLS (implicit TLS, RFC
	// 8314); KeyPair.TLSConfig makes one that follows certificate reloads.
	TLS *tls.Config
	// Limits bound connections; zero fields take the defaults.
	Limits Limits
	// Proxy, when set, reads a PROXY protocol header from the connections of its trusted
	// networks (frontend/connserver), so limits and logs see the client's address.
	Proxy *connserver.Proxy
	// AdminURI is the server's /shared/admin METADATA entry, a URI to reach the
	// administrator such as mailto:postmaster@example.com (RFC 5464 3.2.1.1); none when
	// empty.
	AdminURI string
	// Learner, when set, is told of the messages users move into or out of their \Junk
	// mailbox or flag $Junk or $NotJunk (learn.go); nil turns spam learning off.
	Learner Learner
	// RecordCacheBytes is the budget of the cache of messages' unchanging stored parts
	// (recordcache.go); 0 takes the default of 64 MiB, a negative value turns it off.
	RecordCacheBytes int
}

// Limits bound what clients can hold of a server.
type Limits struct {
	// MaxConnections is the most connections served at once; more are told BYE
	// [UNAVAILABLE] and closed. Default 10000.
	MaxConnections int
	// MaxConnectionsPerIP is the most connections from one remote address, except loopback
	// (local proxies and tools); more are told BYE [LIMIT]. Default 200.
	MaxConnectionsPerIP int
	// MaxConnectionsPerAccount is the most authenticated sessions of one account on this
	// server; a login beyond is refused NO [LIMIT]. Default 100.
	MaxConnectionsPerAccount int
	// IdleTimeout is the autologout timer of an authenticated session waiting for a command
	// (RFC 9051 5.4: at least 30 minutes, and IDLE clients re-issue it every 29). Default
	// 30 minutes.
	IdleTimeout time.Duration
	// LoginTimeout is the same timer before authentication, which RFC 9051 5.4 leaves free.
	// Default 2 minutes.
	LoginTimeout time.Duration
	// WriteTimeout is how long one write to a client may block; a client that stops
	// reading is disconnected after it, so it cannot pin the server's memory. Default 5
	// minutes.
	WriteTimeout time.Duration
	// MaxSortMessages is the most messages one SORT or THREAD orders; a query that matches
	// more is refused NO [LIMIT] before any key is read (RFC 5530 3). Default 2,000,000.
	MaxSortMessages int
	// SortTimeout bounds how long one SORT or THREAD reads keys and orders; past it the
	// command ends NO [LIMIT] rather than tie up a core. Default 60 seconds.
	SortTimeout time.Duration
	// SortCacheMessages is how many messages' sort keys the frontend keeps for repeated
	// SORT and THREAD of its sessions' own mailboxes (sortcache.go; about 200 bytes each);
	// default 1,000,000, negative: none.
	SortCacheMessages int
	// SearchTimeout bounds the scan of one SEARCH: past it the command ends NO [LIMIT]
	// (RFC 5530 3) instead of holding a core. Default 1 minute.
	SearchTimeout time.Duration
	// MaxSearchContexts is the most updating contexts (SEARCH and SORT with RETURN
	// (UPDATE), RFC 5267 4.3) one session keeps; past it an UPDATE is refused NO [NOUPDATE]
	// (4.3.1). Default 10.
	MaxSearchContexts int
	// MaxBodyScan is the most messages whose bodies one SEARCH (BODY, TEXT) reads after the
	// search index has narrowed it; a larger scan is refused NO [LIMIT] up front (RFC 5530
	// 3). Default 250,000.
	MaxBodyScan int
	// MaxMultiSearchMailboxes is the most mailboxes one ESEARCH (RFC 7377, multisearch.go)
	// searches; one whose sources name more is refused NO [LIMIT] (RFC 5530 3) before any
	// is read. Default 1000.
	MaxMultiSearchMailboxes int
	// MaxMultiSearchMessages is the most messages, summed over its mailboxes, one ESEARCH
	// searches; more are refused NO [LIMIT] up front. The scans of all its mailboxes
	// together end by SearchTimeout. Default 2,000,000.
	MaxMultiSearchMessages int
}

// Defaults of Config.
const (
	defaultMaxMessageSize      = 64 << 20
	defaultMaxConnections      = 10000
	defaultMaxConnectionsPerIP = 200
	defaultMaxConnsPerAccount  = 100
	defaultIdleTimeout         = 30 * time.Minute
	defaultLoginTimeout        = 2 * time.Minute
	defaultWriteTimeout        = writeTimeout
	defaultMaxSortMessages     = DefaultMaxSortMessages
	defaultSortTimeout         = DefaultSortTimeout
	defaultSortCacheMessages   = 1_000_000
	defaultSearchTimeout       = DefaultSearchTimeout
	defaultMaxBodyScan         = DefaultMaxBodyScan
	defaultMaxMultiSearchBoxes = DefaultMaxMultiSearchMailboxes
	defaultMaxMultiSearchMsgs  = DefaultMaxMultiSearchMessages
)

// The defaults of the bounds of Limits on SEARCH, SORT and THREAD that `strata serve` and
// `strata frontend` take as flags (cmd/strata/imaplimits.go).
const (
	DefaultMaxMultiSearchMailboxes = 1000
	DefaultMaxMultiSearchMessages  = 2_000_000
	DefaultMaxSortMessages         = 2_000_000
	DefaultSortTimeout             = time.Minute
	DefaultSearchTimeout           = time.Minute
	DefaultMaxBodyScan             = 250_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxSortMessages <= 0 {
		l.MaxSortMessages = defaultMaxSortMessages
	}
	if l.SortTimeout <= 0 {
		l.SortTimeout = defaultSortTimeout
	}
	if l.SortCacheMessages == 0 {
		l.SortCacheMessages = defaultSortCacheMessages
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = defaultMaxConnections
	}
	if l.MaxConnectionsPerIP <= 0 {
		l.MaxConnectionsPerIP = defaultMaxConnectionsPerIP
	}
	if l.MaxConnectionsPerAccount <= 0 {
		l.MaxConnectionsPerAccount = defaultMaxConnsPerAccount
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = defaultIdleTimeout
	}
	if l.LoginTimeout <= 0 {
		l.LoginTimeout = defaultLoginTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = defaultWriteTimeout
	}
	if l.SearchTimeout <= 0 {
		l.SearchTimeout = defaultSearchTimeout
	}
	if l.MaxSearchContexts <= 0 {
		l.MaxSearchContexts = defaultMaxSearchContexts
	}
	if l.MaxBodyScan <= 0 {
		l.MaxBodyScan = defaultMaxBodyScan
	}
	if l.MaxMultiSearchMailboxes <= 0 {
		l.MaxMultiSearchMailboxes = defaultMaxMultiSearchBoxes
	}
	if l.MaxMultiSearchMessages <= 0 {
		l.MaxMultiSearchMessages = defaultMaxMultiSearchMsgs
	}
	return l
}

// Server serves IMAP on the listeners given to Serve.
type Server struct {
	cfg    Config
	limits Limits
	logger *slog.Logger

	conns    *connserver.Registry[*conn] // listeners and live connections
	ingest   *ingest.Committer           // stores bodies and appends them (appendblobs.go)
	metrics  *serverMetrics
	panics   atomic.Uint64 // panics recovered (recoverPanic)
	views    mailViews     // the shared views of the selected mailboxes (mailview.go)
	records  *recordCache  // the messages' unchanging parts (recordcache.go); nil: none
	sortKeys *sortKeyCache // the sort keys of SORT and THREAD (sortcache.go)
	// accountConns counts authenticated sessions per account (Limits.MaxConnectionsPerAccount).
	accountConns auth.AccountSessions
}

// RecoveredPanics returns how many panics the server's goroutines have recovered from since
// it was made: in commands, change feeds and SEARCH's record fetcher, and those that escaped
// a connection's goroutine (recovered by the connection registry). Each is a bug; tests
// fail on one and operators alert on it.
func (s *Server) RecoveredPanics() uint64 {
	return s.panics.Load() + s.conns.RecoveredPanics()
}

// recoverPanic recovers a panic of the goroutine that defers it, logs it with its stack on
// log as "panic in " + where, counts it, and then calls after, if not nil, with the panic
// value. It must be deferred itself (defer s.recoverPanic(...)), not called from a deferred
// function, or recover finds nothing.
func (s *Server) recoverPanic(log *slog.Logger, where string, after func(v any)) {
	v := recover()
	if v == nil {
		return
	}
	s.panics.Add(1)
	log.Error("panic in "+where, "panic", v, "stack", string(debug.Stack()))
	if after != nil {
		after(v)
	}
}

// testHook, set only by tests, is called at the points where a test injects a panic: "command
// NAME" before a command's handler runs, "feed" and "account feed" for each batch a change
// feed receives, "search records" for each batch SEARCH fetches.
var testHook atomic.Pointer[func(point string)]

// atTestHook calls testHook, if set, with point.
func atTestHook(point string) {
	if h := testHook.Load(); h != nil {
		(*h)(point)
	}
}

// NewServer returns a server that is not yet listening.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = defaultMaxMessageSize
	}
	if cfg.RecordCacheBytes == 0 {
		cfg.RecordCacheBytes = defaultRecordCacheBytes
	}
	conns := connserver.New[*conn]("IMAP", ErrServerClosed, cfg.Logger)
	conns.TrustProxies(cfg.Proxy)
	return &Server{
		cfg:    cfg,
		limits: cfg.Limits.withDefaults(),
		logger: cfg.Logger,
		conns:  conns,
		ingest: &ingest.Committer{
			Metadata: cfg.Metadata, Blobs: cfg.Blobs, Stage: cfg.StageBodies, Recent: cfg.RecentBodies, Timeout: writeTimeout, NewRequestID: newRequestID,
		},
		metrics:  newServerMetrics(),
		records:  newRecordCache(cfg.RecordCacheBytes),
		sortKeys: newSortKeyCache(cfg.Limits.withDefaults().SortCacheMessages),
	}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("frontend: server closed")

// Serve accepts connections on ln and serves each in its own goroutine. It returns when the
// listener closes: ErrServerClosed after Shutdown, the accept error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, false)
}

// ServeTLS is Serve for implicit TLS (IMAPS, RFC 8314 3.2): each connection starts with a
// TLS handshake using Config.TLS.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		ln.Close()
		return errors.New("frontend: ServeTLS without a TLS configuration")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	return s.conns.Serve(ln, func(nc net.Conn, id uint64, load connserver.Load) (*conn, bool) {
		c := newConn(s, nc, id, implicitTLS)
		// A connection over a limit is still served, but only to be told BYE: the client
		// learns why instead of seeing a reset (RFC 9051 7.1.5, RFC 5530).
		switch {
		case load.Served >= s.limits.MaxConnections:
			c.refuse = "[" + imapresp.CodeUnavailable + "] Too many connections to this server, try again later"
			s.metrics.refusedMax.Add(1)
		case load.FromAddress >= s.limits.MaxConnectionsPerIP:
			// Loopback connections (local proxies and tools) are not counted per address.
			c.refuse = "[" + imapresp.CodeLimit + "] Too many connections from your address"
			s.metrics.refusedPerIP.Add(1)
		}
		return c, c.refuse == ""
	})
}

// Shutdown stops accepting connections, tells every client BYE (after the command it is
// running, at once when idle or in IDLE) and waits for the connections to close. When ctx
// ends first, the remaining connections are closed and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.views.closeAll() // the shared views' feeds (mailview.go)
	return s.conns.Shutdown(ctx)
}
