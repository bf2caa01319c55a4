package ingest

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RetryPolicy says how a protocol retries a metadata call that failed in a way a retry may
// cure (the leader moved, a timeout). Each protocol keeps its own policy beside its
// callers, with the reasons for its budget and its retryable codes; the loop is this one.
//
// A write passes its request ID in the call's closure, so every attempt reuses it and the
// metadata service applies the write once and answers a retry with the first result.
type RetryPolicy struct {
	// Retryable are the gRPC codes worth another attempt; any other ends the retries.
	Retryable []codes.Code
	// Attempts bounds the calls made, the first included; 0: only Budget bounds them.
	Attempts int
	// Budget bounds how long retries go on after the first failure: no attempt after the
	// second starts once it has passed. 0: only Attempts bounds them. A policy without
	// either retries until the caller's context ends.
	Budget time.Duration
	// CallTimeout is the deadline of each attempt.
	CallTimeout time.Duration
}

// retryPause is the pause before the n-th retry (n from 1): growing by 200ms, at most 1s.
func retryPause(n int) time.Duration {
	return min(time.Duration(n)*200*time.Millisecond, time.Second)
}

// Do runs call with a context derived from ctx and a deadline of CallTimeout, again after a
// growing pause while it fails with a Retryable code, within Attempts and Budget, and ctx
// has not ended (ctx is the session's: a Canceled status while it is live is the
// service's). It returns the last call's error.
func (p RetryPolicy) Do(ctx context.Context, call func(ctx context.Context) error) error {
	var err error
	var giveUp time.Time
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if p.Attempts > 0 && attempt >= p.Attempts {
				return err
			}
			if p.Budget > 0 {
				if attempt == 1 {
					giveUp = time.Now().Add(p.Budget)
				} else if time.Now().After(giveUp) {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(retryPause(attempt)):
			}
		}
		callCtx, cancel := context.WithTimeout(ctx, p.CallTimeout)
		err = call(callCtx)
		cancel()
		if err == nil || !slices.Contains(p.Retryable, status.Code(err)) || ctx.Err() != nil {
			return err
		}
	}
}
