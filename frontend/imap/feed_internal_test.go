package imap

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// watchErrors is a metadata gRPC server whose Watch streams fail with the codes of errs, one
// per call, and stay open (sending nothing) once errs are used up. The metadata service
// cannot be made to answer InvalidArgument or Unimplemented, so the classification of
// stream errors is tested against this server, over a real gRPC connection.
type watchErrors struct {
	metadatapb.UnimplementedMetadataServer
	mu    sync.Mutex
	errs  []codes.Code
	calls int
	open  chan struct{} // closed when a stream stays open
}

func (s *watchErrors) Watch(req *metadatapb.WatchRequest, stream grpc.ServerStreamingServer[metadatapb.ChangeBatch]) error {
	s.mu.Lock()
	s.calls++
	if s.calls <= len(s.errs) {
		code := s.errs[s.calls-1]
		s.mu.Unlock()
		return status.Error(code, "injected")
	}
	s.mu.Unlock()
	close(s.open)
	<-stream.Context().Done()
	return nil
}

// watchFeed runs a view's change feed, with one session's feed in it, against a server whose Watch fails with errs, and returns
// the feed, the number of Watch calls and whether the feed still runs once the server has
// no error left to give or the feed stopped, whichever comes first.
func watchFeed(t *testing.T, errs ...codes.Code) (f *changeFeed, calls int, running bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	ws := &watchErrors{errs: errs, open: make(chan struct{})}
	metadatapb.RegisterMetadataServer(gs, ws)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	srv := NewServer(Config{Metadata: metadatapb.NewMetadataClient(cc), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	ctx, cancel := context.WithCancel(t.Context())
	v := newMailView(srv, viewKey{owner: "demo@example.com", mailboxID: 1, user: "demo@example.com"})
	f = &changeFeed{wake: make(chan struct{})}
	v.subs[f] = struct{}{}
	go func() {
		defer close(v.done)
		v.follow(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-v.done
	})
	select {
	case <-v.done:
	case <-ws.open:
		running = true
	case <-time.After(30 * time.Second):
		t.Fatal("the feed neither stopped nor reconnected")
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if n := srv.RecoveredPanics(); n != 0 {
		t.Errorf("RecoveredPanics = %d, want 0", n)
	}
	return f, ws.calls, running
}

// TestChangeFeedStreamErrors: a broken stream is reopened (RFC 9051 7 updates must go on),
// an error that no retry mends stops the feed with the reason its session's BYE
// [UNAVAILABLE] gives, and a deleted or no longer readable mailbox ends the feed with
// MAILBOX_DELETED (sync.go).
func TestChangeFeedStreamErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		errs    []codes.Code
		stopped string // "" when the feed goes on
		deleted bool
	}{
		{"transient errors reconnect", []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.ResourceExhausted}, "", false},
		{"history dropped", []codes.Code{codes.OutOfRange}, feedBehindText, false},
		{"request refused", []codes.Code{codes.Unavailable, codes.InvalidArgument}, feedFailedText, false},
		{"no Watch on the service", []codes.Code{codes.Unimplemented}, feedFailedText, false},
		{"mailbox deleted", []codes.Code{codes.NotFound}, "", true},
		{"right revoked", []codes.Code{codes.PermissionDenied}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, calls, running := watchFeed(t, tc.errs...)
			if want := tc.stopped == "" && !tc.deleted; running != want {
				t.Fatalf("feed running = %v after %d Watch calls, want %v", running, calls, want)
			}
			wantCalls := len(tc.errs)
			if running {
				wantCalls++ // the stream that stays open
			}
			if calls != wantCalls {
				t.Errorf("Watch called %d times, want %d", calls, wantCalls)
			}
			if got := f.stoppedReason(); got != tc.stopped {
				t.Errorf("stoppedReason = %q, want %q", got, tc.stopped)
			}
			pending := f.take(true, true)
			deleted := len(pending) == 1 && pending[0].GetKind() == metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED
			if deleted != tc.deleted {
				t.Errorf("pending changes %v, want MAILBOX_DELETED: %v", pending, tc.deleted)
			}
		})
	}
}
