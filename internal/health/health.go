// Package health answers a Strata process's liveness and readiness probes over HTTP, beside
// its metrics (internal/promexport serves them on --metrics-listen): GET /healthz says
// whether the process is alive (its loops run), GET /readyz whether it should be sent
// traffic (a frontend knows a metadata leader and reaches the blob store; a metadata node
// is a member of its group and has caught up with the leader). Kubernetes' httpGet probes
// and load balancers read them; docs/operations.md describes them.
//
// Invariants:
//
//   - A probe never waits on I/O for longer than Timeout: a readiness check runs with a
//     context that ends after Timeout, and a check that ignores it (an S3 call that hangs
//     in a library) is reported failed once Timeout has passed since it began. A probe
//     therefore answers within Timeout plus a few microseconds, whatever the dependencies
//     do, and a dependency that hangs makes /readyz answer 503 at the first probe after
//     it hung.
//   - Each readiness check runs on demand, at most once at a time, and its result is
//     reused for MaxAge: probes from several sources (the kubelet, a load balancer, an
//     operator's curl) cost one call to the dependency per MaxAge, and nothing runs while
//     nobody probes.
//   - Liveness checks read memory only: a dependency that is down makes the process
//     unready, never dead (restarting it would not mend the dependency). A loop that ends
//     before the process drains makes it dead; one that ends while draining does not.
//   - After Drain, /readyz answers 503 at once and from then on, without running a check,
//     so a load balancer stops routing to the process before it stops accepting.
//   - Answers are text: one line per check, "ok NAME" or "fail NAME: reason", 200 when all
//     are ok and 503 otherwise.
package health

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Probes.
const (
	// DefaultTimeout bounds one readiness check: the kubelet's default probe timeout is
	// 1 s, so a check gives up in time for the probe to carry its reason.
	DefaultTimeout = 800 * time.Millisecond
	// DefaultMaxAge is how long a check's result is reused.
	DefaultMaxAge = time.Second
)

// Probes holds a process's liveness and readiness checks. The zero value is not usable;
// call New.
type Probes struct {
	timeout time.Duration
	maxAge  time.Duration

	mu    sync.Mutex
	live  []liveCheck
	ready []*readyCheck

	draining atomic.Bool
}

type liveCheck struct {
	name  string
	check func() error
}

// New returns probes whose readiness checks run for at most timeout each and whose results
// are reused for maxAge (DefaultTimeout and DefaultMaxAge when zero).
func New(timeout, maxAge time.Duration) *Probes {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	return &Probes{timeout: timeout, maxAge: maxAge}
}

// Live adds a liveness check. check must read memory only and return at once.
func (p *Probes) Live(name string, check func() error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live = append(p.live, liveCheck{name: name, check: check})
}

// Loop adds a liveness check for a loop the process runs (an accept loop, a gRPC server)
// and returns the function to call when the loop ends, with the error it ended with (nil
// for none): from then on the process is not alive, unless it is draining.
func (p *Probes) Loop(name string) (ended func(err error)) {
	var stopped atomic.Pointer[string]
	p.Live(name, func() error {
		if why := stopped.Load(); why != nil && !p.draining.Load() {
			return fmt.Errorf("stopped: %s", *why)
		}
		return nil
	})
	return func(err error) {
		why := "ended"
		if err != nil {
			why = err.Error()
		}
		stopped.CompareAndSwap(nil, &why)
	}
}

// Ready adds a readiness check. check may do I/O; it must give up when ctx ends.
func (p *Probes) Ready(name string, check func(ctx context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ready = append(p.ready, &readyCheck{name: name, check: check})
}

// Drain makes the process unready from now on: a load balancer stops sending it traffic
// while it finishes what it has.
func (p *Probes) Drain() { p.draining.Store(true) }

// Draining reports whether Drain was called.
func (p *Probes) Draining() bool { return p.draining.Load() }

// Handle registers GET /healthz and GET /readyz on mux.
func (p *Probes) Handle(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", p.serveLive)
	mux.HandleFunc("GET /readyz", p.serveReady)
}

// Liveness runs the liveness checks; the report has one line per check.
func (p *Probes) Liveness() (report string, ok bool) {
	p.mu.Lock()
	live := append([]liveCheck(nil), p.live...)
	p.mu.Unlock()
	var lines []result
	for _, c := range live {
		lines = append(lines, result{name: c.name, err: c.check()})
	}
	if len(lines) == 0 {
		lines = append(lines, result{name: "process"})
	}
	return format(lines)
}

// Readiness runs (or reuses) the readiness checks, concurrently, each bounded by the
// timeout; the report has one line per check, or only "draining" after Drain.
func (p *Probes) Readiness() (report string, ok bool) {
	if p.draining.Load() {
		return format([]result{{name: "draining", err: errDraining}})
	}
	p.mu.Lock()
	ready := append([]*readyCheck(nil), p.ready...)
	p.mu.Unlock()
	lines := make([]result, len(ready))
	var wg sync.WaitGroup
	for i, c := range ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines[i] = result{name: c.name, err: c.result(p.timeout, p.maxAge)}
		}()
	}
	wg.Wait()
	if len(lines) == 0 {
		lines = append(lines, result{name: "process"})
	}
	return format(lines)
}

var errDraining = fmt.Errorf("shutting down; send traffic elsewhere")

func (p *Probes) serveLive(w http.ResponseWriter, _ *http.Request) {
	report, ok := p.Liveness()
	answer(w, report, ok)
}

func (p *Probes) serveReady(w http.ResponseWriter, _ *http.Request) {
	report, ok := p.Readiness()
	answer(w, report, ok)
}

func answer(w http.ResponseWriter, report string, ok bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(report))
}

type result struct {
	name string
	err  error
}

// format writes one line per result and reports whether all are ok.
func format(results []result) (string, bool) {
	var b strings.Builder
	ok := true
	for _, r := range results {
		if r.err == nil {
			fmt.Fprintf(&b, "ok %s\n", r.name)
			continue
		}
		ok = false
		// One line per check, whatever the error says.
		fmt.Fprintf(&b, "fail %s: %s\n", r.name, strings.ReplaceAll(r.err.Error(), "\n", " "))
	}
	return b.String(), ok
}

// readyCheck is one readiness check with its last result and the run in progress.
type readyCheck struct {
	name  string
	check func(ctx context.Context) error

	mu      sync.Mutex
	running chan struct{} // closed when the run in progress ends; nil when none runs
	began   time.Time     // when the run in progress began
	lastErr error
	lastAt  time.Time // when the last run ended; zero before the first
}

// result returns the check's last result if it is younger than maxAge; otherwise it
// starts a run (unless one is in progress) and waits for it until timeout after it began.
func (c *readyCheck) result(timeout, maxAge time.Duration) error {
	c.mu.Lock()
	if !c.lastAt.IsZero() && time.Since(c.lastAt) < maxAge && c.running == nil {
		err := c.lastErr
		c.mu.Unlock()
		return err
	}
	if c.running == nil {
		c.running = make(chan struct{})
		c.began = time.Now()
		go c.run(c.running, timeout)
	}
	running, began := c.running, c.began
	c.mu.Unlock()
	wait := time.NewTimer(time.Until(began.Add(timeout)))
	defer wait.Stop()
	select {
	case <-running:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.lastErr
	case <-wait.C:
		return fmt.Errorf("no answer within %v (running for %v)", timeout, time.Since(began).Round(time.Millisecond))
	}
}

// run runs the check once and records its result.
func (c *readyCheck) run(done chan struct{}, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	err := c.check(ctx)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("no answer within %v", timeout)
	}
	cancel()
	c.mu.Lock()
	c.lastErr, c.lastAt = err, time.Now()
	c.running = nil
	c.mu.Unlock()
	close(done)
}
