package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/frontend/ldapauth"
	"github.com/strata-mail/strata/frontend/lmtp"
	"github.com/strata-mail/strata/frontend/managesieve"
	"github.com/strata-mail/strata/frontend/metaclient"
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/internal/health"
	"github.com/strata-mail/strata/internal/promexport"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication/directory"
)

func newFrontendCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "frontend",
		Short: "Run a stateless IMAP and LMTP frontend of a cluster",
		Long: `frontend serves IMAP for any user of the cluster. It keeps no state: metadata calls
go to the leader of the metadata group (found through etcd with --etcd, or among the static
addresses of --metadata), except the reads of selected sessions, which any node that has
applied what this frontend has seen may serve (--follower-reads), and message bodies go to the blob store, which every frontend must
share: S3 (--blob s3), or with --blob fs a directory all frontends mount (--blob-dir), which
only suits one machine or tests.

STARTTLS and IMAPS need --tls-cert and --tls-key; SIGHUP reads them again.

Calls to the metadata nodes are mutual TLS with a frontend certificate of the cluster CA
(--cluster-tls-ca, --cluster-tls-cert, --cluster-tls-key, made by 'strata cert'); SIGHUP
reads those again too. Only --insecure-plaintext-cluster turns it off.

With --metrics-listen, GET /healthz answers 200 while the listeners' loops run, and GET
/readyz 200 once a metadata leader answers and the blob store does (503 naming the check
that fails otherwise). SIGTERM drains: /readyz answers 503 at once, the listeners close,
each IMAP session finishes its running command and is told BYE [UNAVAILABLE] instead of
running the next (IDLE and waiting sessions are told in turn over the first half of
--drain-timeout), LMTP answers 421 after the running transaction, ManageSieve BYE
(TRYLATER); what is left at --drain-timeout is closed, and the process exits 0.

SEARCH's text keys read only the messages the metadata nodes' text-search index names
when the node answering keeps it (strata metadata --search-index, on by default when the
node has the blob flags). The frontend learns that at each login (the node's answer says
whether it indexes): the session then announces SEARCH=FUZZY (RFC 6203). Each session
asks again, so nothing is kept here, and while some nodes index and others not (a rolling
change) every search is still answered right: by a node without the index, by reading the
messages, FUZZY keys matching exactly.`,
		Args: cobra.NoArgs,
		RunE: runFrontend,
	}
	f := cmd.Flags()
	f.String("imap-listen", "127.0.0.1:1143", "IMAP listen address (with STARTTLS when a certificate is given)")
	f.String("imaps-listen", "", `IMAPS (implicit TLS) listen address; "" for none`)
	addLMTPFlags(f)
	f.String("managesieve-listen", "127.0.0.1:4190", `ManageSieve (RFC 5804) listen address, with STARTTLS when a certificate is given; "" for none`)
	f.String("tls-cert", "", "PEM certificate chain for STARTTLS and IMAPS")
	f.String("tls-key", "", "PEM private key of --tls-cert")
	f.String("metadata", "", "comma-separated gRPC addresses of the metadata nodes (instead of --etcd)")
	f.String("etcd", "", "comma-separated etcd endpoints to find the metadata nodes (instead of --metadata)")
	f.String("blob-dir", "", "shared directory of message bodies (--blob fs)")
	f.String("spool-dir", filepath.Join(os.TempDir(), "strata-frontend-spool"), "directory for incoming messages being received")
	f.Int("max-connections", 10000, "most IMAP connections at once; more are told BYE")
	f.Int("max-connections-per-ip", 200, "most IMAP connections from one non-loopback address; more are told BYE")
	f.Bool("allow-plaintext-auth", false, "allow LOGIN and AUTHENTICATE PLAIN without TLS")
	f.Bool("disable-compress", false, "do not offer COMPRESS=DEFLATE (RFC 4978)")
	f.Bool("search-index", false, "announce SEARCH=FUZZY (RFC 6203) before login too; without it a session announces SEARCH=FUZZY once logged in when the metadata node that answered its login keeps the text-search index (strata metadata, on by default with the blob flags). A FUZZY key answered by a node without the index matches exactly (RFC 6203 3)")
	f.Bool("disable-unauthenticate", false, "do not offer UNAUTHENTICATE (RFC 8437), which lets one connection log in as several accounts in turn")
	f.Int64("max-message-size", embedded.DefaultMaxMessageSize, "largest message APPEND accepts, in bytes (APPENDLIMIT)")
	f.String("metrics-listen", "", "address for Prometheus metrics at /metrics and the probes /healthz and /readyz, e.g. 127.0.0.1:9464 (empty: off)")
	addDrainTimeoutFlag(f)
	f.String("cpu-profile", "", "write a CPU profile of the whole run to this file at shutdown (go tool pprof reads it)")
	f.Bool("follower-reads", true, "serve the reads of selected sessions from any metadata node that has applied what this frontend has seen (session consistency); false sends every read to the leader")
	addBlobStoreFlags(f, "the directory --blob-dir, shared by all frontends")
	addAdminURIFlag(f)
	addAuthCacheFlags(f)
	addScramSHA1Flag(f)
	addFrontendSecurityFlags(f)
	addIMAPLimitFlags(f)
	addOAuthFlags(f)
	addRspamdFlags(f)
	addOutboundFlags(f, "<spool-dir>/outbound")
	addClusterTLSFlags(f)
	return cmd
}

// frontendTLS is the frontend's key pair with the file it was read from, for SIGHUP.
type frontendTLS struct {
	*imap.KeyPair
	certFile string
}

func (t frontendTLS) ReloadTLS() error    { return t.Reload() }
func (t frontendTLS) TLSCertFile() string { return t.certFile }

func runFrontend(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	level, _ := f.GetString("log-level")
	logger, err := newLogger(level)
	if err != nil {
		return err
	}
	imapListen, _ := f.GetString("imap-listen")
	imapsListen, _ := f.GetString("imaps-listen")
	sieveListen, _ := f.GetString("managesieve-listen")
	tlsCert, _ := f.GetString("tls-cert")
	tlsKey, _ := f.GetString("tls-key")
	staticNodes, _ := f.GetString("metadata")
	etcdEndpoints, _ := f.GetString("etcd")
	blobDir, _ := f.GetString("blob-dir")
	spoolDir, _ := f.GetString("spool-dir")
	maxConns, _ := f.GetInt("max-connections")
	maxConnsPerIP, _ := f.GetInt("max-connections-per-ip")
	plaintext, _ := f.GetBool("allow-plaintext-auth")
	scramSHA1, _ := f.GetBool("scram-sha1")
	maxSize, _ := f.GetInt64("max-message-size")
	noUnauth, _ := f.GetBool("disable-unauthenticate")
	noCompress, _ := f.GetBool("disable-compress")
	searchIndex, _ := f.GetBool("search-index")
	metricsListen, _ := f.GetString("metrics-listen")
	followerReads, _ := f.GetBool("follower-reads")
	drainTimeout, err := drainTimeoutFromFlags(f)
	if err != nil {
		return err
	}
	adminURI, err := adminURIFromFlags(f)
	if err != nil {
		return err
	}
	authCacheTTL, authCacheSize, err := authCacheFromFlags(f)
	if err != nil {
		return err
	}
	security, err := frontendSecurityFromFlags(f)
	if err != nil {
		return err
	}
	imapLimits, err := imapLimitsFromFlags(f, imap.Limits{MaxConnections: maxConns, MaxConnectionsPerIP: maxConnsPerIP, MaxConnectionsPerAccount: security.maxConnsPerAccount})
	if err != nil {
		return err
	}
	lmtpListen, _ := f.GetString("lmtp-listen")
	lmtpPublic, _ := f.GetBool("lmtp-allow-public")
	hostname, _ := f.GetString("hostname")
	if lmtpListen != "" {
		if err := lmtp.CheckListenAddress(lmtpListen, lmtpPublic); err != nil {
			return err
		}
	}

	if (staticNodes == "") == (etcdEndpoints == "") {
		return errors.New("give exactly one of --metadata and --etcd")
	}
	if blob, _ := f.GetString("blob"); blob == "fs" && blobDir == "" {
		return errors.New("--blob fs needs --blob-dir, a directory every frontend shares")
	}
	if (tlsCert == "") != (tlsKey == "") {
		return errors.New("give both --tls-cert and --tls-key, or neither")
	}
	if imapsListen != "" && tlsCert == "" {
		return errors.New("--imaps-listen needs --tls-cert and --tls-key")
	}
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		return fmt.Errorf("create spool directory: %w", err)
	}
	identity, err := clusterTLSFromFlags(f)
	if err != nil {
		return err
	}
	logRefusals(identity, logger)

	if path, _ := f.GetString("cpu-profile"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	blobs, err := openBlobStoreFromFlags(ctx, f, blobDir, logger)
	if err != nil {
		return err
	}
	md, err := metaclient.New(metaclient.Config{
		Nodes:         parseStaticNodes(staticNodes),
		DialOptions:   []grpc.DialOption{grpc.WithTransportCredentials(clusterClientCreds(identity))},
		FollowerReads: followerReads,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	defer md.Close()
	if etcdEndpoints != "" {
		etcd, err := directory.Dial(etcdEndpoints)
		if err != nil {
			return err
		}
		defer etcd.Close()
		go followDirectory(ctx, directory.New(etcd, logger), md, logger)
	}

	// One verified-credentials cache for IMAP and ManageSieve, and one OAuth verifier.
	authCache := auth.NewCache(authCacheTTL, authCacheSize)
	oauthCAs, err := oauthRootCAsFromFlags(f)
	if err != nil {
		return err
	}
	verifier := oauth.New(oauth.Config{Metadata: metadatapb.NewMetadataClient(md), RootCAs: oauthCAs})
	// The LDAP tenants' account directory, for IMAP, ManageSieve and LMTP alike.
	ldapSource := ldapauth.New(ldapauth.Config{Metadata: metadatapb.NewMetadataClient(md), Cache: authCache, Logger: logger})
	var keyPair *imap.KeyPair
	cfg := imap.Config{
		Metadata:              metadatapb.NewMetadataClient(md),
		AuthCache:             authCache,
		Logins:                security.logins,
		Proxy:                 security.proxy,
		OAuth:                 verifier,
		Directory:             ldapSource,
		Blobs:                 blobs,
		SpoolDir:              spoolDir,
		Logger:                logger,
		AllowPlaintextAuth:    plaintext,
		ScramSHA1:             scramSHA1,
		DisableUnauthenticate: noUnauth,
		DisableCompress:       noCompress,
		SearchIndex:           searchIndex,
		MaxMessageSize:        maxSize,
		Limits:                imapLimits,
		AdminURI:              adminURI,
	}
	if tlsCert != "" {
		if keyPair, err = imap.LoadKeyPairWith(tlsCert, tlsKey, security.tlsPolicy); err != nil {
			return err
		}
		cfg.TLS = keyPair.TLSConfig()
	}
	// rspamd: the learner is fed by IMAP filing; the checker is built to refuse a bad
	// --rspamd-url at start and to export its counters.
	rspamd := rspamdConfigFromFlags(f)
	spamChecker, err := rspamd.NewChecker()
	if err != nil {
		return err
	}
	spamLearner, err := rspamd.NewLearner(logger)
	if err != nil {
		return err
	}
	var spamMetrics []prometheus.Collector
	if spamChecker != nil {
		spamMetrics = append(spamMetrics, spamChecker)
	}
	if spamLearner != nil {
		defer spamLearner.Close()
		cfg.Learner = spamLearner
		spamMetrics = append(spamMetrics, spamLearner)
	}
	srv := imap.NewServer(cfg)
	// The queue of the mail delivery generates (Sieve redirect, vacation, reject).
	outboundQueue, err := startOutbound(f, filepath.Join(spoolDir, "outbound"), logger)
	if err != nil {
		return err
	}
	collectors := []prometheus.Collector{srv.Collector(), ldapSource.Collector(), security.logins}
	if authCache != nil {
		collectors = append(collectors, authCache.Collector())
	}
	if outboundQueue != nil {
		defer outboundQueue.Close()
		collectors = append(collectors, outboundQueue.Collector())
	}
	var lmtpSrv *lmtp.Server
	if lmtpListen != "" {
		lmtpSrv = lmtp.NewServer(lmtp.Config{
			Metadata:       metadatapb.NewMetadataClient(md),
			Directory:      ldapSource,
			Blobs:          blobs,
			SpoolDir:       spoolDir,
			Hostname:       hostname,
			MaxMessageSize: maxSize,
			AllowPublic:    lmtpPublic,
			Proxy:          security.proxy,
			Logger:         logger,
			// Sieve (issue 12): the account's and the tenant's scripts, rspamd when
			// configured, redirect and vacation through the outbound queue.
			Filer: &lmtp.SieveFiler{
				Metadata: metadatapb.NewMetadataClient(md),
				Spam:     spamChecker,
				Outbound: outboundQueue,
				Hostname: hostname,
				Logger:   logger,
			},
		})
		collectors = append(collectors, lmtpSrv.Collector())
	}
	// /readyz: a metadata leader answers and so does the blob store; /healthz: each
	// listener's loop runs (serve).
	probes := health.New(0, 0)
	probes.Ready("metadata-leader", md.ReachLeader)
	probes.Ready("blobstore", func(ctx context.Context) error { return blobstore.Reachable(ctx, blobs) })
	var metrics *promexport.Server
	if metricsListen != "" {
		if metrics, err = promexport.Listen(metricsListen, blobs, probes, logger, append(spamMetrics, collectors...)...); err != nil {
			return err
		}
	}
	imapLn, err := net.Listen("tcp", imapListen)
	if err != nil {
		return fmt.Errorf("listen for IMAP on %s: %w", imapListen, err)
	}
	serveErr := make(chan error, 4)
	serve := func(name string, loop func() error) {
		ended := probes.Loop(name)
		go func() {
			err := loop()
			ended(err)
			serveErr <- err
		}()
	}
	serve("imap", func() error { return srv.Serve(imapLn) })
	if imapsListen != "" {
		imapsLn, err := net.Listen("tcp", imapsListen)
		if err != nil {
			imapLn.Close()
			return fmt.Errorf("listen for IMAPS on %s: %w", imapsListen, err)
		}
		serve("imaps", func() error { return srv.ServeTLS(imapsLn) })
	}
	lmtpAddr := ""
	if lmtpListen != "" {
		lmtpLn, err := net.Listen("tcp", lmtpListen)
		if err != nil {
			imapLn.Close()
			return fmt.Errorf("listen for LMTP on %s: %w", lmtpListen, err)
		}
		lmtpAddr = lmtpLn.Addr().String()
		serve("lmtp", func() error { return lmtpSrv.Serve(lmtpLn) })
	}
	var sieveSrv *managesieve.Server
	if sieveListen != "" {
		sieveLn, err := net.Listen("tcp", sieveListen)
		if err != nil {
			imapLn.Close()
			return fmt.Errorf("listen for ManageSieve on %s: %w", sieveListen, err)
		}
		sieveSrv = managesieve.NewServer(managesieve.Config{
			Metadata: cfg.Metadata, AuthCache: authCache, Logins: security.logins, Proxy: security.proxy,
			OAuth: verifier, Directory: ldapSource, Logger: logger, TLS: cfg.TLS, AllowPlaintextAuth: plaintext,
			ScramSHA1: scramSHA1,
		})
		serve("managesieve", func() error { return sieveSrv.Serve(sieveLn) })
		fmt.Fprintf(cmd.OutOrStdout(), "ManageSieve on %s\n", sieveLn.Addr())
	}
	var reload []tlsReloader
	if keyPair != nil {
		reload = append(reload, frontendTLS{KeyPair: keyPair, certFile: tlsCert})
	}
	if identity != nil {
		reload = append(reload, identity)
	}
	reloadTLSOnSIGHUP(ctx, logger, reload...)
	logger.Info("strata frontend serving", "imap", imapLn.Addr().String(), "imaps", imapsListen, "lmtp", lmtpAddr, "metadata", staticNodes, "etcd", etcdEndpoints)
	// One ready line, as `strata serve` prints, so that a supervisor (or the e2e harness)
	// learns every address at once.
	ready := fmt.Sprintf("Strata frontend is ready. IMAP on %s", imapLn.Addr())
	if lmtpAddr != "" {
		ready += ", LMTP on " + lmtpAddr
	}
	fmt.Fprintln(cmd.OutOrStdout(), ready)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		logger.Error("listener failed", "err", err)
	}
	// Drain: unready at once, so that the load balancer stops routing here, while the
	// listeners close and the sessions end within --drain-timeout.
	probes.Drain()
	logger.Info("draining", "drain_timeout", drainTimeout)
	start := time.Now()
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	intake := []func(context.Context) error{srv.Shutdown}
	if lmtpSrv != nil {
		intake = append(intake, lmtpSrv.Shutdown)
	}
	if sieveSrv != nil {
		intake = append(intake, sieveSrv.Shutdown)
	}
	drained := connserver.ShutdownAll(drainCtx, intake...)
	if drained != nil {
		// Sessions still running at the timeout were closed: a clean exit all the same,
		// which is what a supervisor waiting for the drain expects.
		logger.Warn("drain timeout: closed the sessions still open", "err", drained)
	}
	logger.Info("drained", "seconds", time.Since(start).Seconds())
	if metrics != nil {
		mctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return metrics.Shutdown(mctx)
	}
	return nil
}

// parseStaticNodes turns --metadata into nodes known only by their gRPC address.
func parseStaticNodes(list string) []metaclient.Node {
	var nodes []metaclient.Node
	for _, addr := range strings.Split(list, ",") {
		if addr = strings.TrimSpace(addr); addr != "" {
			nodes = append(nodes, metaclient.Node{GRPCAddr: addr})
		}
	}
	return nodes
}

// followDirectory keeps md's node list equal to the nodes registered in etcd until ctx ends.
func followDirectory(ctx context.Context, dir *directory.Directory, md *metaclient.Client, logger *slog.Logger) {
	for list := range dir.WatchNodes(ctx) {
		nodes := make([]metaclient.Node, 0, len(list))
		for _, n := range list {
			nodes = append(nodes, metaclient.Node{ID: n.ID, GRPCAddr: n.GRPCAddr, RaftAddr: n.RaftAddr})
		}
		if err := md.SetNodes(nodes); err != nil {
			logger.Error("metadata nodes from etcd", "err", err)
			continue
		}
		logger.Info("metadata nodes from etcd", "nodes", len(nodes))
	}
}

// addDrainTimeoutFlag registers --drain-timeout, shared by `strata serve` and `strata
// frontend` (the Helm chart's terminationGracePeriodSeconds is matched to it).
func addDrainTimeoutFlag(f *pflag.FlagSet) {
	f.Duration("drain-timeout", 30*time.Second, "on SIGTERM, how long sessions have to end (IMAP: BYE [UNAVAILABLE] after the running command, IDLE ones told in turn over the first half) before the rest are closed and the process exits")
}

// drainTimeoutFromFlags reads --drain-timeout, which must be positive.
func drainTimeoutFromFlags(f *pflag.FlagSet) (time.Duration, error) {
	d, _ := f.GetDuration("drain-timeout")
	if d <= 0 {
		return 0, fmt.Errorf("--drain-timeout must be positive, not %v", d)
	}
	return d, nil
}

// addLMTPFlags registers the LMTP flags shared by `strata serve` and `strata frontend`.
func addLMTPFlags(f *pflag.FlagSet) {
	f.String("lmtp-listen", "127.0.0.1:2424", `LMTP (RFC 2033) listen address for the MTA's deliveries; "" for none`)
	f.Bool("lmtp-allow-public", false, "allow --lmtp-listen on a public address and serve clients from public addresses (LMTP has no authentication; without it a wildcard address serves loopback and private clients only)")
	f.String("hostname", "", "this server's name in LMTP greetings and Received fields (default: the host name)")
}

// addAuthCacheFlags registers the verified-credentials cache flags of `strata serve` and
// `strata frontend` (frontend/auth.Cache).
func addAuthCacheFlags(f *pflag.FlagSet) {
	f.Duration("auth-cache-ttl", auth.DefaultCacheTTL, "how long a verified password is accepted again without hashing it (each login still checks with the metadata service that the password, and the account, are unchanged); 0 turns the cache off")
	f.Int("auth-cache-size", auth.DefaultCacheSize, "most verified account and password pairs the cache holds; 0 turns the cache off")
}

// authCacheFromFlags reads --auth-cache-ttl and --auth-cache-size; 0 and 0 when the cache
// is off.
func authCacheFromFlags(f *pflag.FlagSet) (time.Duration, int, error) {
	ttl, _ := f.GetDuration("auth-cache-ttl")
	size, _ := f.GetInt("auth-cache-size")
	if ttl < 0 || size < 0 {
		return 0, 0, errors.New("--auth-cache-ttl and --auth-cache-size must not be negative (0 turns the cache off)")
	}
	if ttl == 0 || size == 0 {
		return 0, 0, nil
	}
	return ttl, size, nil
}

// addAdminURIFlag registers --admin-uri, shared by `strata serve` and `strata frontend`.
func addAdminURIFlag(f *pflag.FlagSet) {
	f.String("admin-uri", "", "how to reach the administrator, e.g. mailto:postmaster@example.com: the server's /shared/admin METADATA entry (RFC 5464 3.2.1.1); empty: none")
}

// adminURIFromFlags returns --admin-uri, which must be a URI with a scheme (RFC 5464
// 3.2.1.1: "The value MUST be a URI").
func adminURIFromFlags(f *pflag.FlagSet) (string, error) {
	uri, _ := f.GetString("admin-uri")
	if uri == "" {
		return "", nil
	}
	if u, err := url.Parse(uri); err != nil || u.Scheme == "" {
		return "", fmt.Errorf("--admin-uri %q is not a URI with a scheme, such as mailto:postmaster@example.com", uri)
	}
	return uri, nil
}
