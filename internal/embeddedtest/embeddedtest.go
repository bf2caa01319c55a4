// Package embeddedtest starts a whole embedded Strata (embedded.Start: a single-voter Raft
// group, the metadata gRPC service, filesystem blobs and the frontends) for a test, on
// loopback ports, and closes it when the test ends. It is the one place tests outside
// embedded/ set up such a server, so a new listener or a required setting changes here.
// Scrape reads the /metrics of such a server, or of any strata process, for a test.
package embeddedtest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
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
