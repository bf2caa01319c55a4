package directory

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mail/strata/internal/etcdtest"
)

func newDirectory(t *testing.T, endpoint string) *Directory {
	t.Helper()
	c, err := Dial(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return New(c, nil)
}

func waitNodes(t *testing.T, ch <-chan []NodeInfo, want ...string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	var last []NodeInfo
	for {
		select {
		case nodes := <-ch:
			last = nodes
			if len(nodes) == len(want) {
				ok := true
				for i := range want {
					ok = ok && nodes[i].ID == want[i]
				}
				if ok {
					return
				}
			}
		case <-timeout:
			t.Fatalf("nodes %v, want IDs %v", last, want)
		}
	}
}

func TestRegistryLeaseAndWatch(t *testing.T) {
	ep := etcdtest.Start(t)
	d := newDirectory(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watch := d.WatchNodes(ctx)
	waitNodes(t, watch)

	a, err := d.Register(ctx, NodeInfo{ID: "a", GRPCAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Register(ctx, NodeInfo{ID: "b", GRPCAddr: "127.0.0.1:3", RaftAddr: "127.0.0.1:4"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	waitNodes(t, watch, "a", "b")
	info, ok, err := d.Node(ctx, "a")
	if err != nil || !ok || info.GRPCAddr != "127.0.0.1:1" || info.RaftAddr != "127.0.0.1:2" {
		t.Fatalf("Node(a) = %+v, %v, %v", info, ok, err)
	}

	// Revoke a's lease behind its back: the key goes, and the registration puts it back on a
	// new lease, leader hint included.
	if err := a.SetLeader(ctx, "g1", true); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	lease := a.lease
	a.mu.Unlock()
	<-a.leases // the first registration's signal
	if _, err := d.Client().Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.leases:
	case <-time.After(10 * time.Second):
		t.Fatal("registration did not come back after its lease was revoked")
	}
	waitNodes(t, watch, "a", "b")
	if l, ok, err := d.Leader(ctx, "g1"); err != nil || !ok || l.ID != "a" {
		t.Fatalf("leader hint after re-registration = %+v, %v, %v", l, ok, err)
	}

	// Closing b deletes its key at once; a expiring lease (no keepalive) would too.
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, watch, "a")
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitNodes(t, watch)
	if _, ok, _ := d.Leader(ctx, "g1"); ok {
		t.Fatal("leader hint survived its node's lease")
	}
}

func TestLeaderHint(t *testing.T) {
	ep := etcdtest.Start(t)
	d := newDirectory(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := d.Register(ctx, NodeInfo{ID: "a", GRPCAddr: "ga"}, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := d.Register(ctx, NodeInfo{ID: "b", GRPCAddr: "gb"}, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	watch := d.WatchLeader(ctx, "g")
	expect := func(id string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l := <-watch:
				if l.ID == id {
					return
				}
			case <-timeout:
				t.Fatalf("leader hint never became %q", id)
			}
		}
	}
	expect("")
	if err := a.SetLeader(ctx, "g", true); err != nil {
		t.Fatal(err)
	}
	expect("a")
	if err := b.SetLeader(ctx, "g", true); err != nil {
		t.Fatal(err)
	}
	expect("b")
	// a stepping down must not delete b's hint.
	if err := a.SetLeader(ctx, "g", false); err != nil {
		t.Fatal(err)
	}
	if l, ok, err := d.Leader(ctx, "g"); err != nil || !ok || l.ID != "b" || l.GRPCAddr != "gb" {
		t.Fatalf("leader after a stepped down = %+v, %v, %v", l, ok, err)
	}
	if err := b.SetLeader(ctx, "g", false); err != nil {
		t.Fatal(err)
	}
	expect("")
}

func TestBootstrapExactlyOnce(t *testing.T) {
	ep := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var boots atomic.Int32
	var wg sync.WaitGroup
	results := make([]bool, 5)
	for i := range results {
		d := newDirectory(t, ep)
		wg.Add(1)
		go func() {
			defer wg.Done()
			booted, err := d.Bootstrap(ctx, "g", string(rune('a'+i)), func(context.Context) error {
				boots.Add(1)
				time.Sleep(100 * time.Millisecond) // others must wait, not run alongside
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = booted
		}()
	}
	wg.Wait()
	if n := boots.Load(); n != 1 {
		t.Fatalf("boot ran %d times, want 1", n)
	}
	won := 0
	for _, r := range results {
		if r {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d callers report bootstrapping, want 1", won)
	}
	d := newDirectory(t, ep)
	if id, err := d.Bootstrapped(ctx, "g"); err != nil || id == "" {
		t.Fatalf("Bootstrapped = %q, %v", id, err)
	}

	// A failed boot leaves the group unmarked so the next node tries again.
	failing := errors.New("disk full")
	if _, err := d.Bootstrap(ctx, "h", "x", func(context.Context) error { return failing }); !errors.Is(err, failing) {
		t.Fatalf("Bootstrap with failing boot: %v", err)
	}
	booted, err := d.Bootstrap(ctx, "h", "y", func(context.Context) error { return nil })
	if err != nil || !booted {
		t.Fatalf("Bootstrap after a failed one = %v, %v", booted, err)
	}
	resp, err := d.Client().Get(ctx, Prefix+"groups/h/bootstrap/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("election keys left after resigning: %d", resp.Count)
	}
}
