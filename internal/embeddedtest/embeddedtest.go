// Package embeddedtest starts a whole embedded Strata (embedded.Start: a single-voter Raft
// group, the metadata gRPC service, filesystem blobs and the frontends) for a test, on
// loopback ports, and closes it when the test ends. It is the one place tests outside
// embedded/ set up such a server, so a new listener or a required setting changes here.
// Scrape reads the /metrics of such a server, or of any strata process, for a test;
// ShutdownStarted begins its drain.
package embeddedtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/testwait"
)

// StartTimeout bounds how long Start waits for the server to come up.
const StartTimeout = 30 * time.Second

// Start runs embedded.Start with cfg, its zero fields filled for a test: DataDir a temporary
// directory, IMAP and gRPC on ephemeral loopback ports, logs discarded. Listeners cfg leaves
// empty (LMTP, ManageSieve, IMAPS) stay off. The server is closed at the test's cleanup; a
// failure to start fails the test.
func Start(t testing.TB, cfg embedded.Config) *embedded.Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.IMAPListen == "" {
		cfg.IMAPListen = "127.0.0.1:0"
	}
	if cfg.GRPCListen == "" {
		cfg.GRPCListen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start embedded server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// ShutdownStarted starts srv's Shutdown with a 20 s grace period in a goroutine and returns
// its result channel once the listener at addr refuses connections: the drain is then under
// way (the listeners close first), and a test can drive the sessions that are draining.
func ShutdownStarted(t testing.TB, srv *embedded.Server, addr string) <-chan error {
	t.Helper()
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shutdown <- srv.Shutdown(ctx)
	}()
	testwait.Until(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil
		}
		c.Close()
		return fmt.Errorf("%s still accepts connections", addr)
	})
	return shutdown
}
