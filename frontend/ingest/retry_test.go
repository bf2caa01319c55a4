package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/ingest"
)

// TestRetryPolicy counts the attempts RetryPolicy.Do makes for each kind of failure, with
// IMAP's and LMTP's shapes of policy: the retryable set, the attempt bound, the budget and
// the caller's context each end the retries.
func TestRetryPolicy(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "leader moved")
	canceled := status.Error(codes.Canceled, "leadership lost")
	plain := errors.New("not a status")
	byAttempts := ingest.RetryPolicy{
		Retryable: []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Aborted}, Attempts: 3, CallTimeout: time.Minute,
	}
	// A budget of a nanosecond has passed when the second retry would start.
	byBudget := ingest.RetryPolicy{
		Retryable: []codes.Code{codes.Unavailable, codes.Canceled}, Budget: time.Nanosecond, CallTimeout: time.Minute,
	}
	for _, tc := range []struct {
		name   string
		policy ingest.RetryPolicy
		errs   []error // what the attempts return, the last one repeated
		want   int     // attempts made
	}{
		{"success first", byAttempts, []error{nil}, 1},
		{"success on retry", byAttempts, []error{unavailable, nil}, 2},
		{"attempts spent", byAttempts, []error{unavailable}, 3},
		{"not retryable code", byAttempts, []error{canceled}, 1},
		{"not a status", byAttempts, []error{plain}, 1},
		{"retryable by the other policy", byBudget, []error{canceled, canceled, nil}, 2},
		{"budget spent", byBudget, []error{unavailable}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attempts := 0
			err := tc.policy.Do(context.Background(), func(ctx context.Context) error {
				if _, ok := ctx.Deadline(); !ok {
					t.Error("an attempt without a deadline")
				}
				e := tc.errs[min(attempts, len(tc.errs)-1)]
				attempts++
				return e
			})
			if attempts != tc.want {
				t.Errorf("%d attempts, want %d", attempts, tc.want)
			}
			if want := tc.errs[min(tc.want, len(tc.errs))-1]; err != want {
				t.Errorf("Do returned %v, want the last attempt's %v", err, want)
			}
		})
	}

	// The caller's context ending stops the retries, even of a retryable failure.
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	err := ingest.RetryPolicy{Retryable: []codes.Code{codes.Unavailable}, CallTimeout: time.Minute}.Do(ctx, func(context.Context) error {
		attempts++
		cancel()
		return unavailable
	})
	if attempts != 1 || err != unavailable {
		t.Errorf("after the context ended: %d attempts, %v; want 1, %v", attempts, err, unavailable)
	}
}
