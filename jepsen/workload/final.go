package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// FinalReads lists every mailbox of every account through every frontend, after the run and
// once the faults are healed: one fresh session per frontend and account (new history
// processes, numbered after the workload's clients), each mailbox EXAMINEd and fetched whole
// by UID, each listing retried until it succeeds or ctx ends. These are the later readers
// that the checker holds every acknowledged write against, so a write lost in the last
// fault window is found too. It returns an error when some listing never succeeded.
func FinalReads(ctx context.Context, cfg Config) error {
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 10 * time.Second
	}
	var sessions atomic.Int64
	sessions.Store(1 << 40) // apart from the workload's session numbers
	process := cfg.Clients
	var missed []error
	for _, frontend := range cfg.IMAPAddrs {
		for _, a := range cfg.Accounts {
			c := &client{cfg: &cfg, process: process, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(process)+1)), account: a, sessions: &sessions}
			process++
			for _, mb := range cfg.Mailboxes {
				if err := c.listUntilDone(ctx, frontend, mb); err != nil {
					missed = append(missed, fmt.Errorf("%s of %s on %s: %w", mb, a.User, frontend, err))
				}
			}
			c.drop()
		}
	}
	return errors.Join(missed...)
}

// listUntilDone EXAMINEs mb on frontend and lists it, reconnecting after a failure, until
// one listing succeeds or ctx ends.
func (c *client) listUntilDone(ctx context.Context, frontend, mb string) error {
	for ctx.Err() == nil {
		if c.s == nil && !c.connectTo(ctx, frontend, false) {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if c.selectMailbox(mb, true) {
			return nil
		}
	}
	return ctx.Err()
}
