// Package embedded wires the whole of Strata into one process for `strata serve` and for
// tests: a single-voter Raft group with the metadata FSM, the metadata gRPC service on a
// loopback listener, the blob store (the filesystem, or an S3 bucket behind an in-memory body
// cache), the IMAP frontend, the LMTP intake and the ManageSieve server. The frontends reach
// metadata only through the gRPC client interface (in this process a connection that calls
// the service's handlers directly, internal/inproc, with the messages encoded as on the
// wire), metadata changes only through the Raft log, and bodies only through the blobstore
// interface, exactly as in a cluster.
package embedded

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/cache"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/blobstore/gc"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/frontend/ldapauth"
	"github.com/strata-mail/strata/frontend/lmtp"
	"github.com/strata-mail/strata/frontend/managesieve"
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/frontend/outbound"
	"github.com/strata-mail/strata/internal/authz"
	"github.com/strata-mail/strata/internal/health"
	"github.com/strata-mail/strata/internal/inproc"
	"github.com/strata-mail/strata/internal/promexport"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
	"github.com/strata-mail/strata/searchindex"
	"github.com/strata-mail/strata/searchindex/fsmfeed"
	"github.com/strata-mail/strata/spam"
)

// Config selects where the embedded server keeps its data and listens.
type Config struct {
	DataDir string // holds raft/, fsm/, blobs/, spool/ and searchindex/
	// DisableSearchIndex turns the text-search index (package searchindex) off: SEARCH's
	// text keys then scan every message.
	DisableSearchIndex bool
	IMAPListen         string // e.g. 127.0.0.1:1143; offers STARTTLS
	// IMAPSListen is the implicit-TLS listen address (RFC 8314), e.g. 127.0.0.1:1993; none
	// when empty.
	IMAPSListen string
	// TLSCertFile and TLSKeyFile are the PEM certificate chain and key for STARTTLS and
	// IMAPS, read again by ReloadTLS. When both are empty, DataDir/tls/cert.pem and
	// key.pem are used, and generated (self-signed for localhost, 127.0.0.1 and ::1) if
	// missing.
	TLSCertFile string
	TLSKeyFile  string
	// TLSPolicy: TLS 1.3 only, an OCSP response to staple (imap.TLSPolicy).
	TLSPolicy imap.TLSPolicy
	// IMAPLimits bound IMAP connections; zero fields take the frontend's defaults.
	IMAPLimits imap.Limits
	GRPCListen string // the metadata and admin gRPC endpoint, e.g. 127.0.0.1:1144
	// AuditLog receives an event per admin call on the gRPC endpoint (internal/authz). The
	// endpoint is plaintext and meant for loopback: its callers are trusted with every call,
	// and logged as "plaintext". Logger with log=audit when nil.
	AuditLog *slog.Logger
	// LMTPListen is where mail is delivered over LMTP (RFC 2033), e.g. 127.0.0.1:2424;
	// none when empty. It must be a loopback or private address unless LMTPAllowPublic.
	LMTPListen      string
	LMTPAllowPublic bool
	// Hostname names the server in LMTP greetings and Received fields; the host name
	// when empty.
	Hostname   string
	RaftListen string // defaults to 127.0.0.1:0: the single voter talks to nobody
	// ManageSieveListen is the ManageSieve (RFC 5804) listen address, e.g. 127.0.0.1:4190,
	// with STARTTLS on the IMAP key pair; none when empty.
	ManageSieveListen string
	// Demo creates tenant "example" (example.com) and demo@example.com with password
	// "demo" when that account does not exist yet.
	Demo bool
	// AllowPlaintextAuth accepts LOGIN and AUTHENTICATE PLAIN without TLS from any address;
	// from loopback they are accepted unless RequireTLSOnLoopback is set.
	AllowPlaintextAuth   bool
	RequireTLSOnLoopback bool
	// Scram is the SCRAM key derivation of passwords; Scram.SHA1 also offers SCRAM-SHA-1
	// on IMAP and ManageSieve.
	Scram metadata.ScramConfig
	// DisableUnauthenticate turns off UNAUTHENTICATE (RFC 8437).
	DisableUnauthenticate bool
	// DisableCompress turns COMPRESS=DEFLATE (RFC 4978) off.
	DisableCompress bool
	MaxMessageSize  int64
	// S3, when set, keeps message bodies in that bucket instead of DataDir/blobs.
	S3 *s3.Config
	// BlobFilePerBody stores every new body in DataDir/blobs as a file of its own. By
	// default (false) bodies of up to fs.PackMax bytes are packed into segment files
	// instead (blobstore/fs, "Packing"). Bodies already there are read either way.
	BlobFilePerBody bool
	// BlobCacheSize is the size in bytes of the in-memory body cache in front of S3;
	// DefaultBlobCacheSize if zero, none if negative.
	BlobCacheSize int64
	// BlobGCInterval is how often bodies no message references are collected;
	// gc.DefaultInterval if zero, never if negative. BlobGCGrace is how long a body stays
	// unreferenced before it is deleted; gc.DefaultGrace if zero.
	BlobGCInterval time.Duration
	BlobGCGrace    time.Duration
	// AuthCacheTTL and AuthCacheSize configure the verified-credentials cache IMAP and
	// ManageSieve share (auth.Cache): how long a verified password is taken without hashing
	// it again, and how many are held. auth.DefaultCacheTTL and auth.DefaultCacheSize if
	// zero; no cache if either is negative.
	AuthCacheTTL  time.Duration
	AuthCacheSize int
	// AuthGuard configures the metadata service's brute-force guard (metadata/authguard.go);
	// zero fields take metadata.DefaultAuthGuardConfig.
	AuthGuard metadata.AuthGuardConfig
	// Logins waits out the guard's delays and logs failed logins for IMAP and ManageSieve
	// (frontend/auth); auth.NewLogins() when nil.
	Logins *auth.Logins
	// Proxy reads PROXY protocol headers from its trusted networks on the IMAP, IMAPS,
	// LMTP and ManageSieve listeners (frontend/connserver); none when nil.
	Proxy *connserver.Proxy
	// OAuthRootCAs are trusted for the HTTPS of the tenants' OAuth issuers (discovery
	// documents and JWKS, frontend/oauth); nil: the system roots.
	OAuthRootCAs *x509.CertPool
	// MetricsListen is where Prometheus metrics are served (GET /metrics); off if empty.
	MetricsListen string
	// AdminURI is the server's /shared/admin METADATA entry (RFC 5464 3.2.1.1); none if
	// empty.
	AdminURI string
	// Rspamd turns on scanning at delivery (URL) and learning from IMAP filing
	// (ControllerURL); both off when zero.
	Rspamd spam.Config
	// Outbound, when its Relay is set, runs the queue of the mail delivery generates (Sieve
	// redirect, vacation, reject); its SpoolDir defaults to DataDir/outbound.
	Outbound outbound.Config
	Logger   *slog.Logger
}

// DefaultBlobCacheSize is the body cache's size when the configuration gives none.
const DefaultBlobCacheSize = 64 << 20

// The bodies APPEND and LMTP hand the search indexer in memory (searchindex.RecentBodies):
// at most recentBodiesBudget bytes held, none larger than recentBodyMax. 64 MiB holds the
// ~3,000 messages of a typical 20 KiB that an indexer working at its low duty cycle lags
// behind a burst of appends; beyond it, the indexer reads the blobs back.
const (
	recentBodiesBudget = 64 << 20
	recentBodyMax      = 1 << 20
)

// Server is a running embedded Strata.
type Server struct {
	cfg       Config
	logger    *slog.Logger
	fsm       *metadata.FSM
	node      *replication.Node
	grpcSrv   *grpc.Server
	grpcLn    net.Listener
	inproc    *inproc.Conn // the metadata service, for this process's callers
	frontend  *imap.Server
	imapLn    net.Listener
	imapsLn   net.Listener
	lmtp      *lmtp.Server
	lmtpLn    net.Listener
	keyPair   *imap.KeyPair
	sieveSrv  *managesieve.Server
	authCache *auth.Cache
	ldap      *ldapauth.Source
	authGuard *metadata.AuthGuard
	logins    *auth.Logins
	sieveLn   net.Listener
	probes    *health.Probes
	stopGC    context.CancelFunc
	// stopNumbering ends the leader's Message-ID numbering (metadata/numberfill.go), whose
	// goroutine closes numbered.
	stopNumbering context.CancelFunc
	numbered      chan struct{}
	metrics       *promexport.Server
	// spamChecker and spamLearner are nil when Config.Rspamd leaves them off.
	spamChecker *spam.Checker
	spamLearner *spam.Learner
	outbound    *outbound.Queue
	// staging is the fs store when bodies are staged (staging.go), else nil.
	staging *fs.Store
	// stagingMarked is set once this run has written the staging marker (after any
	// recovery): only then may a clean shutdown remove it.
	stagingMarked bool
	// searchIndex is the text-search index, nil when Config.DisableSearchIndex.
	searchIndex *fsmfeed.Indexer
	// recentBodies hands stored bodies to the indexer, nil when searchIndex is.
	recentBodies *searchindex.RecentBodies
	// blobs is the body store the frontends write to.
	blobs blobstore.Store
}

// SpamChecker returns the rspamd checker for delivery, nil when scanning is off.
func (s *Server) SpamChecker() *spam.Checker { return s.spamChecker }

// SpamLearner returns the rspamd learner fed by IMAP filing, nil when learning is off.
func (s *Server) SpamLearner() *spam.Learner { return s.spamLearner }

// learner is spamLearner as the IMAP engine's optional Learner: nil stays a nil interface.
func (s *Server) learner() imap.Learner {
	if s.spamLearner == nil {
		return nil
	}
	return s.spamLearner
}

// spamCollectors are the Prometheus collectors of the rspamd checker and learner in use.
func (s *Server) spamCollectors() []prometheus.Collector {
	var cs []prometheus.Collector
	if s.spamChecker != nil {
		cs = append(cs, s.spamChecker)
	}
	if s.spamLearner != nil {
		cs = append(cs, s.spamLearner)
	}
	return cs
}

// DefaultMaxMessageSize is the APPENDLIMIT when the configuration gives none.
const DefaultMaxMessageSize = 64 << 20

// Start opens the data directory, replays the Raft log into the FSM, starts the metadata
// gRPC service and the IMAP listener, and returns once both accept connections.
func Start(ctx context.Context, cfg Config) (s *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RaftListen == "" {
		cfg.RaftListen = "127.0.0.1:0"
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.LMTPListen != "" {
		if err := lmtp.CheckListenAddress(cfg.LMTPListen, cfg.LMTPAllowPublic); err != nil {
			return nil, err
		}
	}
	s = &Server{cfg: cfg, logger: cfg.Logger, probes: health.New(0, 0)}
	// The error returns set s to nil; close what was opened through this copy.
	opened := s
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	for _, dir := range []string{"fsm", "raft", "blobs", "spool"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, dir), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	// The body store first: raft's snapshots sync the bodies it staged (staging.go).
	blobs, err := openBlobs(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var beforeSnapshot func() error
	recoverStaging := false
	s.blobs = blobs
	if fsStore, ok := blobs.(*fs.Store); ok {
		s.staging = fsStore
		if recoverStaging, err = stagingRecoveryNeeded(cfg.DataDir); err != nil {
			return nil, err
		}
		if !fsStore.SyncedAtOpen() {
			// One sync per start at most: the store's Open synced the file system already
			// unless its last owner closed it cleanly.
			if err := syncAfterCrash(cfg.DataDir, blobRoot(cfg)); err != nil {
				return nil, err
			}
		}
		beforeSnapshot = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return fsStore.SyncStaged(ctx)
		}
	}
	s.fsm, err = metadata.OpenFSM(filepath.Join(cfg.DataDir, "fsm"), cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("open metadata state: %w", err)
	}
	metadataMetrics := metadata.NewMetrics()
	s.fsm.SetMetrics(metadataMetrics)
	s.node, err = replication.Open(replication.Config{
		NodeID:    "embedded",
		DataDir:   filepath.Join(cfg.DataDir, "raft"),
		RaftBind:  cfg.RaftListen,
		Bootstrap: true,
		FSM:       s.fsm,
		Logger:    cfg.Logger,

		BeforeSnapshot: beforeSnapshot,
	})
	if err != nil {
		return nil, fmt.Errorf("open raft: %w", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = s.node.WaitLeader(waitCtx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("wait for raft leadership: %w", err)
	}

	s.grpcLn, err = net.Listen("tcp", cfg.GRPCListen)
	if err != nil {
		return nil, fmt.Errorf("listen for gRPC on %s: %w", cfg.GRPCListen, err)
	}
	if s.spamChecker, err = cfg.Rspamd.NewChecker(); err != nil {
		return nil, err
	}
	if s.spamLearner, err = cfg.Rspamd.NewLearner(cfg.Logger); err != nil {
		return nil, err
	}
	// The components of this process call the metadata service in the process (inproc:
	// no socket, no HTTP/2, no goroutine hops per call); the gRPC listener serves the admin
	// commands and other processes.
	svc := metadata.NewService(s.node, s.fsm, cfg.Logger)
	svc.SetScram(cfg.Scram)
	s.authGuard = metadata.NewAuthGuard(cfg.AuthGuard)
	svc.SetAuthGuard(s.authGuard)
	s.logins = cmp.Or(cfg.Logins, auth.NewLogins())
	s.inproc = inproc.New()
	metadatapb.RegisterMetadataServer(s.inproc, svc)
	client := metadatapb.NewMetadataClient(s.inproc)
	// recent hands the bodies IMAP and LMTP store to the indexer in memory; nil when
	// the index is off.
	var recent ingest.RecentBodies
	if !cfg.DisableSearchIndex {
		// The text-search index beside the FSM, fed by its change feed (searchindex).
		s.recentBodies = searchindex.NewRecentBodies(recentBodiesBudget, recentBodyMax)
		recent = s.recentBodies
		if s.searchIndex, err = fsmfeed.Start(cfg.DataDir, s.fsm, svc, client, s.recentBodies.Over(blobs), cfg.Logger); err != nil {
			return nil, err
		}
	}
	collector := &gc.Collector{Metadata: client, Blobs: blobs, Logger: cfg.Logger, Metrics: gc.NewMetrics()}
	grace := cmp.Or(cfg.BlobGCGrace, gc.DefaultGrace)
	audit := cfg.AuditLog
	if audit == nil {
		audit = cfg.Logger.With("log", "audit")
	}
	authorizer := authz.New(authz.Config{Tenancy: svc, AllowPlaintext: true, Audit: audit})
	s.grpcSrv = grpc.NewServer(append(authorizer.ServerOptions(), svc.ConsistencyOptions()...)...)
	metadatapb.RegisterMetadataServer(s.grpcSrv, svc)
	metadatapb.RegisterBlobAdminServer(s.grpcSrv, &gc.AdminServer{Collector: collector, Grace: grace})
	metadatapb.RegisterBackupServer(s.grpcSrv, metadata.BackupServer{Service: svc})
	// The goroutines use opened, not s: an error return sets s to nil.
	opened.run("grpc", func() error { return opened.grpcSrv.Serve(opened.grpcLn) })
	if s.staging != nil {
		// Before any client is served (staging.go).
		if recoverStaging {
			if _, err := recoverStaged(ctx, s.node, s.staging, client, cfg.Logger); err != nil {
				return nil, err
			}
		}
		if err := writeStagingMarker(cfg.DataDir); err != nil {
			return nil, err
		}
		s.stagingMarked = true
	}
	if cfg.Demo {
		if err := EnsureDemo(ctx, client); err != nil {
			return nil, err
		}
	}
	var numberingCtx context.Context
	numberingCtx, s.stopNumbering = context.WithCancel(context.Background())
	s.numbered = make(chan struct{})
	go func() {
		defer close(opened.numbered)
		svc.RunMessageNumbering(numberingCtx, metadata.DefaultMessageNumbering)
	}()
	if interval := cmp.Or(cfg.BlobGCInterval, gc.DefaultInterval); interval > 0 {
		var gcCtx context.Context
		gcCtx, s.stopGC = context.WithCancel(context.Background())
		go collector.RunEvery(gcCtx, interval, grace)
	}
	if cfg.Outbound.Relay != "" {
		ocfg := cfg.Outbound
		ocfg.SpoolDir = cmp.Or(ocfg.SpoolDir, filepath.Join(cfg.DataDir, "outbound"))
		ocfg.Logger = cmp.Or(ocfg.Logger, cfg.Logger)
		if s.outbound, err = outbound.New(ocfg); err != nil {
			return nil, err
		}
	}
	if s.keyPair, err = loadKeyPair(&s.cfg, s.logger); err != nil {
		return nil, err
	}
	s.imapLn, err = net.Listen("tcp", cfg.IMAPListen)
	if err != nil {
		return nil, fmt.Errorf("listen for IMAP on %s: %w", cfg.IMAPListen, err)
	}
	if cfg.IMAPSListen != "" {
		if s.imapsLn, err = net.Listen("tcp", cfg.IMAPSListen); err != nil {
			s.imapLn.Close()
			return nil, fmt.Errorf("listen for IMAPS on %s: %w", cfg.IMAPSListen, err)
		}
	}
	s.authCache = auth.NewCache(cmp.Or(cfg.AuthCacheTTL, auth.DefaultCacheTTL), cmp.Or(cfg.AuthCacheSize, auth.DefaultCacheSize))
	// OAUTHBEARER and XOAUTH2 (issue 15) for the tenants that trust an issuer.
	verifier := oauth.New(oauth.Config{Metadata: client, RootCAs: cfg.OAuthRootCAs})
	// LDAP tenants' logins (issue 15), shared by IMAP, ManageSieve and LMTP.
	s.ldap = ldapauth.New(ldapauth.Config{Metadata: client, Cache: s.authCache, Logger: cfg.Logger})
	s.frontend = imap.NewServer(imap.Config{
		Metadata:              client,
		AuthCache:             s.authCache,
		Logins:                s.logins,
		Proxy:                 cfg.Proxy,
		OAuth:                 verifier,
		Directory:             s.ldap,
		Blobs:                 blobs,
		StageBodies:           s.staging != nil,
		RecentBodies:          recent,
		SpoolDir:              filepath.Join(cfg.DataDir, "spool"),
		Logger:                cfg.Logger,
		AllowPlaintextAuth:    cfg.AllowPlaintextAuth,
		ScramSHA1:             cfg.Scram.SHA1,
		DisableUnauthenticate: cfg.DisableUnauthenticate,
		DisableCompress:       cfg.DisableCompress,
		SearchIndex:           !cfg.DisableSearchIndex,
		TrustLoopback:         !cfg.RequireTLSOnLoopback,
		MaxMessageSize:        cfg.MaxMessageSize,
		TLS:                   s.keyPair.TLSConfig(),
		Limits:                cfg.IMAPLimits,
		AdminURI:              cfg.AdminURI,
		Learner:               s.learner(),
	})
	if cfg.LMTPListen != "" {
		s.lmtp = lmtp.NewServer(lmtp.Config{
			Metadata:       client,
			Directory:      s.ldap,
			Blobs:          blobs,
			StageBodies:    s.staging != nil,
			RecentBodies:   recent,
			SpoolDir:       filepath.Join(cfg.DataDir, "spool"),
			Hostname:       cfg.Hostname,
			MaxMessageSize: cfg.MaxMessageSize,
			AllowPublic:    cfg.LMTPAllowPublic,
			Proxy:          cfg.Proxy,
			Logger:         cfg.Logger,
			// Sieve (issue 12): the account's and the tenant's scripts, rspamd when
			// configured, redirect and vacation through the outbound queue.
			Filer: &lmtp.SieveFiler{
				Metadata: client,
				Spam:     s.spamChecker,
				Outbound: s.outbound,
				Hostname: cfg.Hostname,
				Logger:   cfg.Logger,
			},
		})
	}
	// /readyz (internal/health): the single-node group leads and has applied what it
	// committed (a linearizable read point, as every metadata read takes), and the body
	// store answers. /healthz: raft runs, and so does each listener's loop (run).
	node := s.node
	s.probes.Ready("metadata", node.ReadBarrier)
	s.probes.Ready("blobstore", func(ctx context.Context) error { return blobstore.Reachable(ctx, blobs) })
	s.probes.Live("raft", func() error {
		if st := node.Raft().State(); st == raft.Shutdown {
			return fmt.Errorf("raft is %s", st)
		}
		return nil
	})
	if cfg.MetricsListen != "" {
		collectors := append(s.spamCollectors(), s.frontend.Collector(), metadataMetrics, s.ldap.Collector(), s.authGuard, s.logins, collector.Metrics)
		if s.authCache != nil {
			collectors = append(collectors, s.authCache.Collector())
		}
		if s.outbound != nil {
			collectors = append(collectors, s.outbound.Collector())
		}
		if s.lmtp != nil {
			collectors = append(collectors, s.lmtp.Collector())
		}
		if s.metrics, err = promexport.Listen(cfg.MetricsListen, blobs, s.probes, cfg.Logger, collectors...); err != nil {
			// Not served yet, so Shutdown would not close them.
			s.imapLn.Close()
			if s.imapsLn != nil {
				s.imapsLn.Close()
			}
			return nil, err
		}
	}
	opened.run("imap", func() error { return opened.frontend.Serve(opened.imapLn) })
	if s.imapsLn != nil {
		opened.run("imaps", func() error { return opened.frontend.ServeTLS(opened.imapsLn) })
	}
	if cfg.LMTPListen != "" {
		if s.lmtpLn, err = net.Listen("tcp", cfg.LMTPListen); err != nil {
			return nil, fmt.Errorf("listen for LMTP on %s: %w", cfg.LMTPListen, err)
		}
		opened.run("lmtp", func() error { return opened.lmtp.Serve(opened.lmtpLn) })
	}
	if cfg.ManageSieveListen != "" {
		if s.sieveLn, err = net.Listen("tcp", cfg.ManageSieveListen); err != nil {
			return nil, fmt.Errorf("listen for ManageSieve on %s: %w", cfg.ManageSieveListen, err)
		}
		s.sieveSrv = managesieve.NewServer(managesieve.Config{
			Metadata:           client,
			AuthCache:          s.authCache,
			Logins:             s.logins,
			Proxy:              cfg.Proxy,
			OAuth:              verifier,
			Directory:          s.ldap,
			Logger:             cfg.Logger,
			TLS:                s.keyPair.TLSConfig(),
			AllowPlaintextAuth: cfg.AllowPlaintextAuth,
			TrustLoopback:      !cfg.RequireTLSOnLoopback,
			ScramSHA1:          cfg.Scram.SHA1,
		})
		opened.run("managesieve", func() error { return opened.sieveSrv.Serve(opened.sieveLn) })
	}
	return s, nil
}

// openBlobs opens the body store cfg selects.
// blobRoot is the fs store's directory when bodies are not in S3.
func blobRoot(cfg Config) string { return filepath.Join(cfg.DataDir, "blobs") }

func openBlobs(ctx context.Context, cfg Config) (blobstore.Store, error) {
	if cfg.S3 == nil {
		// This process owns the directory's segment files; the admin commands that open
		// it meanwhile (backup, import) only read them.
		blobs, err := fs.Open(blobRoot(cfg), fs.Options{Own: true, PackSmall: !cfg.BlobFilePerBody})
		if err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
		return blobs, nil
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	bucket, err := s3.New(openCtx, *cfg.S3)
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	cfg.Logger.Info("message bodies in S3", "endpoint", cfg.S3.Endpoint, "bucket", cfg.S3.Bucket,
		"conditional_put", bucket.ConditionalPut(), "head_before_put", bucket.StatBeforePut())
	size := cfg.BlobCacheSize
	if size == 0 {
		size = DefaultBlobCacheSize
	}
	if size < 0 {
		return bucket, nil
	}
	cached, err := cache.New(bucket, cache.Config{MaxBytes: size})
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	return cached, nil
}

// DemoTenant, DemoDomain, DemoAccount and DemoPassword are what `strata serve` creates on
// first start unless --no-demo is given.
const (
	DemoTenant   = "example"
	DemoDomain   = "example.com"
	DemoAccount  = "demo@example.com"
	DemoPassword = "demo"
)

// EnsureDemo creates the demo tenant and account if they do not exist.
func EnsureDemo(ctx context.Context, client metadatapb.MetadataClient) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := client.CreateTenant(ctx, &metadatapb.CreateTenantRequest{
		RequestId: NewRequestID(), Name: DemoTenant, Domains: []string{DemoDomain},
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create demo tenant: %w", err)
	}
	_, err = client.CreateAccount(ctx, &metadatapb.CreateAccountRequest{
		RequestId: NewRequestID(), Email: DemoAccount, Password: DemoPassword,
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create demo account: %w", err)
	}
	return nil
}

// NewRequestID returns a random request ID for an idempotent metadata write.
func NewRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// IMAPRecoveredPanics is how many panics the IMAP engine has recovered from (imap.Server's
// RecoveredPanics); tests fail on any.
func (s *Server) IMAPRecoveredPanics() uint64 { return s.frontend.RecoveredPanics() }

// IMAPAddr is the address the IMAP listener is bound to.
func (s *Server) IMAPAddr() string { return s.imapLn.Addr().String() }

// IMAPSAddr is the address the IMAPS listener is bound to, "" without one.
func (s *Server) IMAPSAddr() string {
	if s.imapsLn == nil {
		return ""
	}
	return s.imapsLn.Addr().String()
}

// ManageSieveAddr is the address the ManageSieve listener is bound to, "" without one.
func (s *Server) ManageSieveAddr() string {
	if s.sieveLn == nil {
		return ""
	}
	return s.sieveLn.Addr().String()
}

// TLSCertFile is the certificate file STARTTLS and IMAPS present (the generated one when
// the configuration names none): what a client adds to its trusted roots.
func (s *Server) TLSCertFile() string { return s.cfg.TLSCertFile }

// ReloadTLS reads the certificate and key files again (on SIGHUP); connections made after
// it get the new pair. On error the old pair stays.
func (s *Server) ReloadTLS() error { return s.keyPair.Reload() }

// selfSignedHosts are the names a generated certificate is valid for.
var selfSignedHosts = []string{"localhost", "127.0.0.1", "::1"}

// loadKeyPair reads the configured certificate and key or, when none are configured,
// the ones in the data directory, generating them on first start. It fills in cfg's
// file names.
func loadKeyPair(cfg *Config, logger *slog.Logger) (*imap.KeyPair, error) {
	switch {
	case cfg.TLSCertFile == "" && cfg.TLSKeyFile == "":
		cfg.TLSCertFile = filepath.Join(cfg.DataDir, "tls", "cert.pem")
		cfg.TLSKeyFile = filepath.Join(cfg.DataDir, "tls", "key.pem")
		created, err := imap.EnsureSelfSigned(cfg.TLSCertFile, cfg.TLSKeyFile, selfSignedHosts)
		if err != nil {
			return nil, err
		}
		if created {
			logger.Info("generated a self-signed TLS certificate", "cert", cfg.TLSCertFile, "key", cfg.TLSKeyFile)
		}
	case cfg.TLSCertFile == "" || cfg.TLSKeyFile == "":
		return nil, errors.New("TLS: give both a certificate file and a key file, or neither")
	}
	return imap.LoadKeyPairWith(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSPolicy)
}

// MetricsAddr returns the address of the /metrics endpoint, or "" when it is off.
func (s *Server) MetricsAddr() string {
	if s.metrics == nil {
		return ""
	}
	return s.metrics.Addr()
}

// LMTPAddr is the address the LMTP listener is bound to, "" without one.
func (s *Server) LMTPAddr() string {
	if s.lmtpLn == nil {
		return ""
	}
	return s.lmtpLn.Addr().String()
}

// AuthGuard is the metadata service's brute-force guard.
func (s *Server) AuthGuard() *metadata.AuthGuard { return s.authGuard }

// Logins are the IMAP and ManageSieve logins' counters (a prometheus.Collector).
func (s *Server) Logins() *auth.Logins { return s.logins }

// AuthCache is the verified-credentials cache of IMAP and ManageSieve, nil when off.
func (s *Server) AuthCache() *auth.Cache { return s.authCache }

// LDAP is the account directory of the LDAP tenants (frontend/ldapauth).
func (s *Server) LDAP() *ldapauth.Source { return s.ldap }

// GRPCAddr is the address of the metadata and admin gRPC endpoint.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// Outbound is the queue of the mail delivery generates, nil without a relay configured.
func (s *Server) Outbound() *outbound.Queue { return s.outbound }

// Blobs returns the body store, for benchmarks that fill a mailbox without IMAP.
func (s *Server) Blobs() blobstore.Store { return s.blobs }

// Metadata returns a client of the server's metadata service.
func (s *Server) Metadata() metadatapb.MetadataClient { return metadatapb.NewMetadataClient(s.inproc) }

// run serves one listener's loop in its own goroutine; /healthz fails if it ends before
// the server drains.
func (s *Server) run(name string, serve func() error) {
	ended := s.probes.Loop(name)
	go func() { ended(serve()) }()
}

// Probes are the server's health probes, served on MetricsListen (/healthz, /readyz).
func (s *Server) Probes() *health.Probes { return s.probes }

// Shutdown drains the server: /readyz answers 503 at once; IMAP, LMTP and ManageSieve
// close their listeners together and end their sessions (BYE [UNAVAILABLE] after the
// running command, LMTP 421) until ctx ends; then the gRPC service stops and Raft and
// the FSM close. Metrics and probes are served until the end.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	s.probes.Drain()
	if s.stopGC != nil {
		s.stopGC()
	}
	if s.stopNumbering != nil {
		s.stopNumbering()
		<-s.numbered
	}
	var intake []func(context.Context) error
	if s.lmtp != nil {
		intake = append(intake, s.lmtp.Shutdown)
	} else if s.lmtpLn != nil {
		errs = append(errs, s.lmtpLn.Close())
	}
	if s.frontend != nil {
		intake = append(intake, s.frontend.Shutdown)
	}
	if s.sieveSrv != nil {
		intake = append(intake, s.sieveSrv.Shutdown)
	}
	drainErr := connserver.ShutdownAll(ctx, intake...)
	if drainErr != nil {
		// The sessions still open when ctx ended were closed: the drain is over all the
		// same (a clean exit), but not clean enough to drop the staging marker below.
		s.logger.Warn("drain timeout: closed the sessions still open", "err", drainErr)
	}
	if s.spamLearner != nil {
		s.spamLearner.Close() // after the frontend: no session hands it messages any more
	}
	if s.stagingMarked {
		// Every intake is closed: what they staged is synced, and only then is the
		// shutdown clean (staging.go). If a frontend did not end cleanly a session may
		// still stage, so the marker stays and the next start checks.
		if err := errors.Join(errs...); err == nil && drainErr == nil {
			if err := s.staging.SyncStaged(ctx); err != nil {
				errs = append(errs, err)
			} else {
				errs = append(errs, removeStagingMarker(s.cfg.DataDir))
			}
		}
	}
	if s.outbound != nil {
		// After the listeners that enqueue; what is queued stays in the spool.
		errs = append(errs, s.outbound.Close())
	}
	if s.grpcSrv != nil {
		stopped := make(chan struct{})
		go func() { s.grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.grpcSrv.Stop()
		}
	} else if s.grpcLn != nil {
		errs = append(errs, s.grpcLn.Close())
	}
	if s.inproc != nil {
		// The in-process streams' handlers (change feeds) may still be returning after
		// their sessions ended; they read the FSM, which closes below. Bounded, should a
		// caller have been left behind.
		waited := make(chan struct{})
		go func() { s.inproc.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			s.logger.Warn("in-process metadata streams still open at shutdown")
		}
	}
	if s.searchIndex != nil {
		errs = append(errs, s.searchIndex.Close())
	}
	if s.node != nil {
		errs = append(errs, s.node.Close())
	}
	if s.fsm != nil {
		errs = append(errs, s.fsm.Close())
	}
	if s.staging != nil {
		// Ends the segments' compaction and lets go of their owner's lock, so that a
		// server opened next on the same directory (in this process too) owns them.
		errs = append(errs, s.staging.Close())
	}
	if s.metrics != nil {
		// Last, and with time of its own: probes and scrapes are answered through the drain.
		mctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.metrics.Shutdown(mctx))
		cancel()
	}
	return errors.Join(errs...)
}

// Close shuts the server down with a short grace period.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// RecentBodies returns what hands the bodies IMAP and LMTP store to the search indexer in
// memory, nil when Config.DisableSearchIndex.
func (s *Server) RecentBodies() *searchindex.RecentBodies { return s.recentBodies }

// SearchIndex returns the text-search indexer, nil when Config.DisableSearchIndex.
func (s *Server) SearchIndex() *searchindex.Indexer {
	if s.searchIndex == nil {
		return nil
	}
	return s.searchIndex.Indexer
}
