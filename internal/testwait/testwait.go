// Package testwait is the one polling loop of Strata's tests: Until waits for a condition
// that another goroutine, process or node brings about (a leader elected, a change fed to a
// session, a slot freed), and fails the test with the condition's last word if it does not
// come within a bound.
//
// The bound is a failsafe against a hung test, not an assertion about speed: choose it many
// times longer than the condition takes on a loaded machine.
package testwait

import (
	"testing"
	"time"
)

// Poll intervals: the first poll comes at once, then the interval doubles from
// firstInterval up to maxInterval, so a condition met quickly is seen quickly and a slow
// one costs little CPU.
const (
	firstInterval = time.Millisecond
	maxInterval   = 100 * time.Millisecond
)

// Until calls cond until it returns nil, and fails the test with cond's last error if that
// has not happened within timeout. cond says in its error what it saw ("applied 3, want
// 5"), which is what the failure reports. Call Until from the test's goroutine: it fails
// with t.Fatalf.
func Until(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("not within %v: %v", timeout, err)
	}
}

// poll is Until returning cond's last error instead of failing.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for {
		err := cond()
		if err == nil || !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(min(interval, time.Until(deadline)))
		interval = min(2*interval, maxInterval)
	}
}
