package health_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/health"
	"github.com/strata-mail/strata/internal/testwait"
)

// serve runs p's handlers on a real loopback HTTP server and returns a function that GETs a
// path from it: the status code and the body.
func serve(t *testing.T, p *health.Probes) func(path string) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Handle(mux)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
}

// TestReadyNamesEveryCheck: 200 naming each check when all pass; 503 naming the one that
// fails, with its reason, and the others as ok.
func TestReadyNamesEveryCheck(t *testing.T) {
	p := health.New(time.Second, time.Nanosecond)
	var blobDown atomic.Bool
	p.Ready("metadata-leader", func(context.Context) error { return nil })
	p.Ready("blobstore", func(context.Context) error {
		if blobDown.Load() {
			return errors.New("connection refused")
		}
		return nil
	})
	get := serve(t, p)
	if code, body := get("/readyz"); code != 200 || body != "ok metadata-leader\nok blobstore\n" {
		t.Fatalf("all passing: %d %q", code, body)
	}
	blobDown.Store(true)
	if code, body := get("/readyz"); code != 503 || body != "ok metadata-leader\nfail blobstore: connection refused\n" {
		t.Fatalf("blob store down: %d %q", code, body)
	}
}

// TestHungCheck: a check that ignores its context and never returns (a library call stuck
// on a dead S3) fails the probe once the timeout has passed, and every later probe at once
// without starting a second run beside the stuck one.
func TestHungCheck(t *testing.T) {
	p := health.New(50*time.Millisecond, time.Nanosecond)
	release := make(chan struct{})
	defer close(release)
	var runs atomic.Int32
	p.Ready("blobstore", func(context.Context) error {
		runs.Add(1)
		<-release
		return nil
	})
	get := serve(t, p)
	for range 3 {
		code, body := get("/readyz")
		if code != 503 || !strings.HasPrefix(body, "fail blobstore: no answer within 50ms") {
			t.Fatalf("hung check: %d %q", code, body)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the hung check was started %d times, want once", n)
	}
}

// TestCheckHonoursTimeout: a check that returns when its context ends is reported as not
// answering in time, and a later probe runs it again once that run has ended.
func TestCheckHonoursTimeout(t *testing.T) {
	p := health.New(20*time.Millisecond, time.Nanosecond)
	var runs atomic.Int32
	p.Ready("metadata-leader", func(ctx context.Context) error {
		runs.Add(1)
		<-ctx.Done()
		return ctx.Err()
	})
	get := serve(t, p)
	testwait.Until(t, 10*time.Second, func() error {
		if code, body := get("/readyz"); code != 503 || !strings.HasPrefix(body, "fail metadata-leader: ") {
			t.Fatalf("slow check: %d %q", code, body)
		}
		if n := runs.Load(); n < 2 {
			return fmt.Errorf("runs = %d, want 2", n)
		}
		return nil
	})
}

// TestResultReused: within MaxAge a probe reuses the last result instead of calling the
// dependency again.
func TestResultReused(t *testing.T) {
	p := health.New(time.Second, time.Hour)
	var runs atomic.Int32
	p.Ready("blobstore", func(context.Context) error { runs.Add(1); return nil })
	get := serve(t, p)
	for range 5 {
		if code, _ := get("/readyz"); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("runs = %d, want 1", n)
	}
}

// TestDrain: after Drain /readyz answers 503 "draining" without running a check, while
// /healthz stays 200 even as the accept loops end.
func TestDrain(t *testing.T) {
	p := health.New(time.Second, time.Nanosecond)
	var runs atomic.Int32
	p.Ready("blobstore", func(context.Context) error { runs.Add(1); return nil })
	ended := p.Loop("imap")
	get := serve(t, p)
	p.Drain()
	code, body := get("/readyz")
	if code != 503 || !strings.HasPrefix(body, "fail draining: ") {
		t.Fatalf("draining: %d %q", code, body)
	}
	if runs.Load() != 0 {
		t.Fatal("a check ran while draining")
	}
	ended(nil)
	if code, body := get("/healthz"); code != 200 || body != "ok imap\n" {
		t.Fatalf("healthz while draining: %d %q", code, body)
	}
}

// TestLoopEnded: a loop that ends while the process is not draining makes /healthz 503,
// naming it and why.
func TestLoopEnded(t *testing.T) {
	p := health.New(time.Second, time.Second)
	ended := p.Loop("imap")
	p.Loop("lmtp")
	p.Live("raft", func() error { return nil })
	get := serve(t, p)
	if code, body := get("/healthz"); code != 200 || body != "ok imap\nok lmtp\nok raft\n" {
		t.Fatalf("alive: %d %q", code, body)
	}
	ended(errors.New("accept: too many open files"))
	if code, body := get("/healthz"); code != 503 || body != "fail imap: stopped: accept: too many open files\nok lmtp\nok raft\n" {
		t.Fatalf("loop ended: %d %q", code, body)
	}
}
