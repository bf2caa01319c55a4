package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mail/strata/embedded"
)

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the all-in-one server: IMAP, metadata on single-node Raft, filesystem blobs",
		Long: `serve runs everything in one process on one machine: the IMAP frontend, the metadata
service on a single-voter Raft group, and message bodies in the data directory. On first
start it creates the account demo@example.com with password "demo" unless --no-demo is given.`,
		Args: cobra.NoArgs,
		RunE: runServe,
	}
	f := cmd.Flags()
	f.String("data", "./data", "data directory (Raft log, metadata, message bodies)")
	f.String("imap-listen", "127.0.0.1:1143", "IMAP listen address")
	f.String("grpc-listen", defaultAdminAddr, "metadata and admin gRPC listen address (keep it on loopback)")
	f.Bool("no-demo", false, "do not create the demo account demo@example.com")
	f.Bool("allow-plaintext-auth", false, "allow LOGIN and AUTHENTICATE PLAIN without TLS on non-loopback connections (loopback is always allowed)")
	f.Int64("max-message-size", embedded.DefaultMaxMessageSize, "largest message APPEND accepts, in bytes (APPENDLIMIT)")
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
	grpcListen, _ := f.GetString("grpc-listen")
	noDemo, _ := f.GetBool("no-demo")
	plaintext, _ := f.GetBool("allow-plaintext-auth")
	maxSize, _ := f.GetInt64("max-message-size")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := embedded.Start(ctx, embedded.Config{
		DataDir:            dataDir,
		IMAPListen:         imapListen,
		GRPCListen:         grpcListen,
		Demo:               !noDemo,
		AllowPlaintextAuth: plaintext,
		MaxMessageSize:     maxSize,
		Logger:             logger,
	})
	if err != nil {
		return err
	}
	logger.Info("strata serving", "imap", srv.IMAPAddr(), "grpc", srv.GRPCAddr(), "data", dataDir)
	fmt.Fprintf(cmd.OutOrStdout(), "Strata is ready. IMAP on %s, admin gRPC on %s, data in %s\n", srv.IMAPAddr(), srv.GRPCAddr(), dataDir)
	if !noDemo {
		fmt.Fprintf(cmd.OutOrStdout(), "Try it: curl -v --url 'imap://%s/INBOX' --user '%s:%s'\n", srv.IMAPAddr(), embedded.DemoAccount, embedded.DemoPassword)
	}
	<-ctx.Done()
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
