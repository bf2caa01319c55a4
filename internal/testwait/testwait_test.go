package testwait

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatal = fmt.Sprintf(format, args...)
}

// TestUntilMet: a condition met on the third poll ends the wait without a failure.
func TestUntilMet(t *testing.T) {
	rec := &recorder{TB: t}
	calls := 0
	Until(rec, time.Minute, func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if rec.fatal != "" || calls != 3 {
		t.Fatalf("Until: failure %q after %d calls, want none after 3", rec.fatal, calls)
	}
}

// TestUntilNeverMet: a condition never met fails the test with its last error, after
// polling more than once.
func TestUntilNeverMet(t *testing.T) {
	rec := &recorder{TB: t}
	calls := 0
	Until(rec, 50*time.Millisecond, func() error {
		calls++
		return fmt.Errorf("saw %d", calls)
	})
	if calls < 2 {
		t.Fatalf("cond called %d times, want it polled", calls)
	}
	if want := fmt.Sprintf("saw %d", calls); !strings.Contains(rec.fatal, want) {
		t.Fatalf("failure %q, want the last error %q", rec.fatal, want)
	}
}

// TestUntilPollsOnceWithoutTime: with no time left, cond is still asked once.
func TestUntilPollsOnceWithoutTime(t *testing.T) {
	calls := 0
	err := poll(0, func() error { calls++; return errors.New("not yet") })
	if err == nil || calls != 1 {
		t.Fatalf("poll(0) = %v after %d calls, want an error after 1", err, calls)
	}
}
