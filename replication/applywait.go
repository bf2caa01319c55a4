package replication

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// applyWaiter waits for the futures of Apply in one goroutine per node instead of one
// goroutine per proposal (issue 14: under 64 appending clients every APPEND started a
// goroutine whose only work was to block on its future, then woke its caller: two
// goroutine switches per proposal). Raft resolves a leader's apply futures in log order
// (runFSM responds to each entry of a batch after applying it), so the waiter takes the
// futures in the order they were proposed, blocks on the first unresolved one, and when
// it resolves finds the rest of its batch resolved too: one wake-up of the waiter per
// batch, one of each caller. A future resolved out of order (a refusal on a node that is
// no longer leader) waits at most until those before it resolve, which raft does for
// every future it took (on commit, on losing leadership, on shutdown; run says what is
// left).
type applyWaiter struct {
	mu      sync.Mutex
	queue   []pendingApply
	wake    chan struct{} // 1-buffered: a future was queued
	stopped bool          // run returned or is draining: wait falls back to a goroutine
}

// pendingApply is a proposal's future and where its outcome goes (1-buffered: the waiter
// never blocks on a caller that stopped waiting).
type pendingApply struct {
	f    raft.Future
	done chan error
}

func newApplyWaiter() *applyWaiter {
	return &applyWaiter{wake: make(chan struct{}, 1)}
}

// wait returns f's error, or ctx's if ctx ends first (the outcome is then unknown).
func (w *applyWaiter) wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		go func() { done <- f.Error() }()
	} else {
		w.queue = append(w.queue, pendingApply{f: f, done: done})
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run hands on the outcomes of the queued futures until stop ends; then the futures still
// queued, and any proposed later, are waited for by a goroutine each, as a node without a
// waiter would. Raft's shutdown resolves the futures it took, but not one whose entry went
// into its apply channel after it stopped reading it, so neither run nor those goroutines
// are waited for at Close: one blocked on such a future ends with the process (its caller
// stops waiting at its deadline).
func (w *applyWaiter) run(stop <-chan struct{}) {
	var batch []pendingApply
	for {
		select {
		case <-w.wake:
			batch = w.drain(batch)
		case <-stop:
			w.mu.Lock()
			w.stopped = true
			queued := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, p := range queued {
				go func() { p.done <- p.f.Error() }()
			}
			return
		}
	}
}

// drain hands on the outcome of every queued future, in order, until the queue is empty.
// batch is a buffer to swap with the queue, returned for the next call.
func (w *applyWaiter) drain(batch []pendingApply) []pendingApply {
	for {
		w.mu.Lock()
		batch, w.queue = w.queue, batch[:0]
		w.mu.Unlock()
		if len(batch) == 0 {
			return batch
		}
		for i, p := range batch {
			p.done <- p.f.Error()
			batch[i] = pendingApply{}
		}
	}
}
