package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
)

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the all-in-one server: IMAP, LMTP, metadata on single-node Raft, filesystem or S3 blobs",
		Long: `serve runs everything in one process on one machine: the IMAP frontend, LMTP delivery
(--lmtp-listen, serving loopback and private clients only unless --lmtp-allow-public), the metadata
service on a single-voter Raft group, and message bodies in the data directory or, with
--blob s3, in an S3 bucket (created if missing). S3 credentials come from
STRATA_S3_ACCESS_KEY and STRATA_S3_SECRET_KEY, the standard AWS variables, or
--s3-credentials-file. On first start it creates the account demo@example.com with password
"demo" unless --no-demo is given.

With --metrics-listen, GET /healthz and GET /readyz answer as on a frontend and a
metadata node together (ready: the single-node group leads and the body store answers).
SIGTERM drains IMAP, LMTP and ManageSieve as 'strata frontend' does, within
--drain-timeout.`,
		Args: cobra.NoArgs,
		RunE: runServe,
	}
	f := cmd.Flags()
	f.String("data", "./data", "data directory (Raft log, metadata, message bodies)")
	f.String("imap-listen", "127.0.0.1:1143", "IMAP listen address (with STARTTLS)")
	f.String("imaps-listen", "127.0.0.1:1993", `IMAPS (implicit TLS) listen address; "" for none`)
	f.String("managesieve-listen", "127.0.0.1:4190", `ManageSieve (RFC 5804) listen address, with STARTTLS; "" for none`)
	f.String("tls-cert", "", "PEM certificate chain for STARTTLS and IMAPS (default: a self-signed one generated in <data>/tls)")
	f.String("tls-key", "", "PEM private key of --tls-cert")
	f.Int("max-connections", 10000, "most IMAP connections at once; more are told BYE")
	f.Int("max-connections-per-ip", 200, "most IMAP connections from one non-loopback address; more are told BYE")
	addLMTPFlags(f)
	f.String("grpc-listen", defaultAdminAddr, "metadata and admin gRPC listen address (keep it on loopback: its plaintext callers may make every admin call)")
	addAuditLogFlag(f)
	f.Bool("search-index", true, "keep a text-search index (package searchindex) so SEARCH's text keys read only candidate messages, answer one-word BODY and SUBJECT searches exactly without reading messages, and offer SEARCH=FUZZY; --search-index=false turns it off (indexing costs APPEND 12 to 15 % more CPU on a 2-core machine: docs/benchmarks.md \"Search index: header fields folded once\")")
	f.Bool("no-demo", false, "do not create the demo account demo@example.com")
	f.Bool("allow-plaintext-auth", false, "allow LOGIN and AUTHENTICATE PLAIN without TLS on non-loopback connections (loopback is always allowed)")
	f.Bool("disable-compress", false, "do not offer COMPRESS=DEFLATE (RFC 4978)")
	f.Bool("disable-unauthenticate", false, "do not offer UNAUTHENTICATE (RFC 8437), which lets one connection log in as several accounts in turn")
	f.Int64("max-message-size", embedded.DefaultMaxMessageSize, "largest message APPEND accepts, in bytes (APPENDLIMIT)")
	addBlobStoreFlags(f, "the data directory")
	f.Bool("blob-pack", true, "with --blob fs, pack bodies of up to 64 KiB into segment files with group-committed fsyncs; false: a file per body (bodies stored either way stay readable)")
	addBlobGCFlags(f)
	f.String("metrics-listen", "", "address for Prometheus metrics at /metrics and the probes /healthz and /readyz, e.g. 127.0.0.1:9464 (empty: off)")
	addDrainTimeoutFlag(f)
	f.String("cpu-profile", "", "write a CPU profile of the whole run to this file at shutdown (go tool pprof reads it)")
	f.String("pprof-listen", "", `serve Go's profiles and execution trace at /debug/pprof/ on this address, with block and mutex sampling on, e.g. 127.0.0.1:6060 (keep it on loopback; "" for none)`)
	addAdminURIFlag(f)
	addAuthCacheFlags(f)
	addScramFlags(f)
	addAuthGuardFlags(f)
	addFrontendSecurityFlags(f)
	addIMAPLimitFlags(f)
	addOAuthFlags(f)
	addRspamdFlags(f)
	addOutboundFlags(f, "<data>/outbound")
	return cmd
}

func runServe(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	level, _ := f.GetString("log-level")
	logger, err := newLogger(level)
	if err != nil {
		return err
	}
	dataDir, _ := f.GetString("data")
	imapListen, _ := f.GetString("imap-listen")
	imapsListen, _ := f.GetString("imaps-listen")
	sieveListen, _ := f.GetString("managesieve-listen")
	tlsCert, _ := f.GetString("tls-cert")
	tlsKey, _ := f.GetString("tls-key")
	maxConns, _ := f.GetInt("max-connections")
	maxConnsPerIP, _ := f.GetInt("max-connections-per-ip")
	grpcListen, _ := f.GetString("grpc-listen")
	noDemo, _ := f.GetBool("no-demo")
	plaintext, _ := f.GetBool("allow-plaintext-auth")
	maxSize, _ := f.GetInt64("max-message-size")
	noUnauth, _ := f.GetBool("disable-unauthenticate")
	noCompress, _ := f.GetBool("disable-compress")
	s3Config, err := s3ConfigFromFlags(f)
	if err != nil {
		return err
	}
	cacheSize, _ := f.GetInt64("blob-cache-size")
	gcInterval, _ := f.GetDuration("blob-gc-interval")
	gcGrace, _ := f.GetDuration("blob-gc-grace")
	metricsListen, _ := f.GetString("metrics-listen")
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
	if authCacheTTL == 0 {
		authCacheTTL = -1 // embedded.Config: off when negative, the default when zero
	}
	guardCfg, err := authGuardFromFlags(f)
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
	outboundCfg, _, err := outboundConfigFromFlags(f, "", logger)
	if err != nil {
		return err
	}
	lmtpListen, _ := f.GetString("lmtp-listen")
	lmtpPublic, _ := f.GetBool("lmtp-allow-public")
	hostname, _ := f.GetString("hostname")
	audit, closeAudit, err := openAuditLog(f, logger)
	if err != nil {
		return err
	}
	defer closeAudit()

	if path, _ := f.GetString("cpu-profile"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	if addr, _ := f.GetString("pprof-listen"); addr != "" {
		bound, stopPprof, err := startPprof(addr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
		logger.Info("pprof", "addr", bound)
	}

	oauthCAs, err := oauthRootCAsFromFlags(f)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	searchIndex, _ := f.GetBool("search-index")
	blobPack, _ := f.GetBool("blob-pack")
	srv, err := embedded.Start(ctx, embedded.Config{
		DataDir:               dataDir,
		DisableSearchIndex:    !searchIndex,
		BlobFilePerBody:       !blobPack,
		IMAPListen:            imapListen,
		IMAPSListen:           imapsListen,
		ManageSieveListen:     sieveListen,
		TLSCertFile:           tlsCert,
		TLSKeyFile:            tlsKey,
		IMAPLimits:            imapLimits,
		TLSPolicy:             security.tlsPolicy,
		AuthGuard:             guardCfg,
		Logins:                security.logins,
		Proxy:                 security.proxy,
		GRPCListen:            grpcListen,
		AuditLog:              audit,
		LMTPListen:            lmtpListen,
		LMTPAllowPublic:       lmtpPublic,
		Hostname:              hostname,
		Demo:                  !noDemo,
		AllowPlaintextAuth:    plaintext,
		Scram:                 scramConfig(f),
		DisableUnauthenticate: noUnauth,
		DisableCompress:       noCompress,
		MaxMessageSize:        maxSize,
		S3:                    s3Config,
		BlobCacheSize:         cacheSize,
		BlobGCInterval:        gcInterval,
		BlobGCGrace:           gcGrace,
		MetricsListen:         metricsListen,
		AuthCacheTTL:          authCacheTTL,
		AuthCacheSize:         authCacheSize,
		OAuthRootCAs:          oauthCAs,
		AdminURI:              adminURI,
		Rspamd:                rspamdConfigFromFlags(f),
		Outbound:              outboundCfg,
		Logger:                logger,
	})
	if err != nil {
		return err
	}
	logger.Info("strata serving", "imap", srv.IMAPAddr(), "imaps", srv.IMAPSAddr(), "lmtp", srv.LMTPAddr(), "grpc", srv.GRPCAddr(), "data", dataDir, "tls_cert", srv.TLSCertFile())
	if addr := srv.ManageSieveAddr(); addr != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "ManageSieve on %s\n", addr)
	}
	ready := fmt.Sprintf("Strata is ready. IMAP on %s, admin gRPC on %s,", srv.IMAPAddr(), srv.GRPCAddr())
	if srv.IMAPSAddr() != "" {
		ready += fmt.Sprintf(" IMAPS on %s,", srv.IMAPSAddr())
	}
	if srv.LMTPAddr() != "" {
		ready += fmt.Sprintf(" LMTP on %s,", srv.LMTPAddr())
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s data in %s\n", ready, dataDir)
	fmt.Fprintf(cmd.OutOrStdout(), "TLS certificate: %s (SIGHUP reloads it)\n", srv.TLSCertFile())
	if !noDemo {
		fmt.Fprintf(cmd.OutOrStdout(), "Try it: curl -v --url 'imap://%s/INBOX' --user '%s:%s'\n", srv.IMAPAddr(), embedded.DemoAccount, embedded.DemoPassword)
		if srv.IMAPSAddr() != "" {
			fmt.Fprintf(cmd.OutOrStdout(), "    or: curl -v --cacert %s --url 'imaps://%s/INBOX' --user '%s:%s'\n", srv.TLSCertFile(), srv.IMAPSAddr(), embedded.DemoAccount, embedded.DemoPassword)
		}
	}
	reloadTLSOnSIGHUP(ctx, logger, srv)
	<-ctx.Done()
	logger.Info("draining", "drain_timeout", drainTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// startCPUProfile profiles the process into path until the returned function is called.
func startCPUProfile(path string) (stop func(), err error) {
	out, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := out.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "write cpu profile %s: %v\n", path, err)
		}
	}, nil
}

// tlsReloader is a server whose TLS certificate and key files (and, for cluster TLS, CA
// and CRL files) can be read again.
type tlsReloader interface {
	ReloadTLS() error
	TLSCertFile() string
}

// reloadTLSOnSIGHUP reads the TLS files of every one of srvs again on every SIGHUP until
// ctx ends; a set that fails to load is logged and the previous one stays in use.
func reloadTLSOnSIGHUP(ctx context.Context, logger *slog.Logger, srvs ...tlsReloader) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				for _, srv := range srvs {
					if err := srv.ReloadTLS(); err != nil {
						logger.Error("reload TLS certificate", "cert", srv.TLSCertFile(), "err", err)
						continue
					}
					logger.Info("reloaded TLS certificate", "cert", srv.TLSCertFile())
				}
			}
		}
	}()
}
