package replication

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrentAppliesGetTheirOwnResponses: many proposals in flight at once, waited for
// by the node's one apply waiter, each get the response of their own entry; a proposal
// whose caller stops waiting does not hold up the others.
func TestConcurrentAppliesGetTheirOwnResponses(t *testing.T) {
	dir := t.TempDir()
	fsm := openKVFSM(t, filepath.Join(dir, "fsm.db"), false)
	n, err := Open(Config{
		NodeID: "n1", DataDir: dir, RaftBind: "127.0.0.1:0", Bootstrap: true, FSM: fsm,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WaitLeader(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	const clients, rounds = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", c)
			prev := ""
			for r := range rounds {
				if c%8 == 0 && r%5 == 0 {
					// A caller that gives up at once: its entry may or may not commit.
					gone, cancel := context.WithCancel(t.Context())
					cancel()
					if _, err := n.Apply(gone, []byte(fmt.Sprintf("x%d=%d", c, r))); !errors.Is(err, context.Canceled) {
						errs <- fmt.Errorf("apply with a cancelled context: %v", err)
						return
					}
				}
				value := fmt.Sprintf("%d-%d", c, r)
				resp, err := n.Apply(ctxFor(t), []byte(key+"="+value))
				if err != nil {
					errs <- err
					return
				}
				if resp != prev {
					errs <- fmt.Errorf("set %s=%s responded %v, want its own previous value %q", key, value, resp, prev)
					return
				}
				prev = value
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for c := range clients {
		wantValue(t, fsm, fmt.Sprintf("k%d", c), fmt.Sprintf("%d-%d", c, rounds-1))
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}
