package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/internal/s3test"
	"github.com/strata-mail/strata/jepsen/faultproxy"
	"github.com/strata-mail/strata/jepsen/nemesis"
	"github.com/strata-mail/strata/proto/clusterpb"
)

// The Jepsen cluster (issue 13): etcd and an S3 server each behind a fault proxy, three
// metadata nodes each bound on its own loopback IP (127.0.0.11-13) with a fault proxy in
// front of its Raft and its gRPC listener, and two frontends on fixed ports (a restart keeps
// them). A node dials its peers from its own IP (replication/transport.go), so the proxy in
// front of a node knows which peer each Raft connection comes from, and a partition is a set
// of per-source rules on those proxies. The harness itself reaches every node directly, not
// through the proxies, so faults never blind it.
//
// Partitions cut Raft traffic between metadata nodes only; frontends reach every node
// throughout (they sit on other hosts in the failure model), so an isolated leader keeps
// getting client requests and must refuse them.

// jepsenNodeFlags make snapshots frequent and keep few trailing entries, so a follower cut
// off for a few seconds of writes can only catch up by a snapshot install.
var jepsenNodeFlags = []string{"--snapshot-threshold", "100", "--snapshot-interval", "300ms",
	"--trailing-logs", "50", "--promote-stable", "1s", "--log-level", "info"}

// jepsenSnapshotGap is the snapshot threshold plus the trailing logs of jepsenNodeFlags.
const jepsenSnapshotGap = 150

// jepsenAccount is an account the workload logs in as and delivers to.
type jepsenAccount struct{ User, Password, Address string }

type jepsenCluster struct {
	t         *testing.T
	seed      int64
	etcd      string   // etcd's own endpoint, for the harness's admin commands
	adminArgs []string // the cluster administrator's identity, for those commands

	etcdProxy, s3Proxy *faultproxy.Proxy
	nodes              []*metaNode
	raftProxies        map[string]*faultproxy.Proxy // by node ID
	frontends          []*frontendProcess
	accounts           []jepsenAccount

	mu      sync.Mutex
	removed map[string]bool // voters the nemesis removed and has not added back
}

// startJepsenCluster starts the cluster, creates the accounts and returns once the group has
// three voters and both frontends are ready. Everything stops when the test ends.
func startJepsenCluster(t *testing.T, seed int64) *jepsenCluster {
	t.Helper()
	c := &jepsenCluster{t: t, seed: seed, raftProxies: map[string]*faultproxy.Proxy{}, removed: map[string]bool{}}
	c.etcd = etcdtest.Start(t)
	c.adminArgs = adminTLSArgs(t)
	c.etcdProxy = startFaultProxy(t, strings.TrimPrefix(c.etcd, "http://"), nil)
	etcdViaProxy := "http://" + c.etcdProxy.Addr()
	blobs := s3test.Start(t, s3test.Options{})
	c.s3Proxy = startFaultProxy(t, blobs.Endpoint, nil)
	t.Setenv(s3.EnvAccessKey, blobs.AccessKey) // inherited by the frontends
	t.Setenv(s3.EnvSecretKey, blobs.SecretKey)

	sources := map[string]string{}
	for i := 1; i <= 3; i++ {
		sources[fmt.Sprintf("127.0.0.1%d", i)] = fmt.Sprintf("n%d", i)
	}
	for i := 1; i <= 3; i++ {
		ip, id := fmt.Sprintf("127.0.0.1%d", i), fmt.Sprintf("n%d", i)
		n := newMetaNode(t, id, etcdViaProxy, jepsenNodeFlags...)
		n.grpcAddr, n.raftAddr = freeAddrOn(t, ip), freeAddrOn(t, ip)
		raftProxy := startFaultProxy(t, n.raftAddr, sources)
		n.raftAdvertise = raftProxy.Addr()
		n.grpcAdvertise = startFaultProxy(t, n.grpcAddr, sources).Addr()
		c.raftProxies[id] = raftProxy
		c.nodes = append(c.nodes, n)
	}
	startNodes(t, c.nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitVoters(t, ctx, c.nodes, "n1", "n2", "n3")

	for _, user := range []string{"u@acme.test", "v@acme.test"} {
		if user == "u@acme.test" {
			addClusterAccount(t, c.etcd)
		} else {
			clusterAdmin(t, c.etcd, "user", "add", user, "--password", "pw")
		}
		c.accounts = append(c.accounts, jepsenAccount{User: user, Password: "pw", Address: user})
	}

	s3Args := []string{"--blob", "s3", "--s3-endpoint", c.s3Proxy.Addr(), "--s3-bucket", fmt.Sprintf("jepsen-%d", seed),
		"--s3-insecure", "--s3-path-style"}
	for _, name := range []string{"A", "B"} {
		args := append([]string{"--imap-listen", freeAddr(t), "--lmtp-listen", freeAddr(t), "--managesieve-listen", freeAddr(t)}, s3Args...)
		c.frontends = append(c.frontends, startFrontend(t, name, etcdViaProxy, args...))
	}
	return c
}

func startFaultProxy(t *testing.T, target string, sources map[string]string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(faultproxy.Config{Listen: "127.0.0.1:0", Target: target, Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// IMAPAddrs are the frontends' IMAP addresses.
func (c *jepsenCluster) IMAPAddrs() []string {
	var addrs []string
	for _, f := range c.frontends {
		addrs = append(addrs, f.imapAddr)
	}
	return addrs
}

// LMTPAddrs are the frontends' LMTP addresses.
func (c *jepsenCluster) LMTPAddrs() []string {
	var addrs []string
	for _, f := range c.frontends {
		addrs = append(addrs, f.lmtpAddr)
	}
	return addrs
}

// Accounts are the accounts the workload uses.
func (c *jepsenCluster) Accounts() []jepsenAccount { return c.accounts }

// The nemesis.Cluster implementation.

func (c *jepsenCluster) MetaNodes() []string {
	var ids []string
	for _, n := range c.nodes {
		ids = append(ids, n.id)
	}
	return ids
}

func (c *jepsenCluster) Frontends() []string {
	var names []string
	for _, f := range c.frontends {
		names = append(names, f.name)
	}
	return names
}

func (c *jepsenCluster) node(id string) *metaNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func (c *jepsenCluster) frontend(name string) *frontendProcess {
	for _, f := range c.frontends {
		if f.name == name {
			return f
		}
	}
	return nil
}

// Leader asks every node directly, at once (a paused node does not hold up the others), and
// returns the leader of the highest term, waiting for one.
func (c *jepsenCluster) Leader(ctx context.Context) (string, error) {
	for {
		states := make([]*clusterpb.StatusResponse, len(c.nodes))
		var wg sync.WaitGroup
		for i, n := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				states[i], _ = n.status(sctx, false)
			}()
		}
		wg.Wait()
		var leader string
		var term uint64
		for i, st := range states {
			if st.GetState() == "Leader" && st.GetTerm() >= term {
				leader, term = c.nodes[i].id, st.GetTerm()
			}
		}
		if leader != "" {
			return leader, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *jepsenCluster) signal(target string, sig syscall.Signal) error {
	if n := c.node(target); n != nil {
		n.signal(sig)
		return nil
	}
	if f := c.frontend(target); f != nil {
		f.signal(sig)
		return nil
	}
	return fmt.Errorf("no node or frontend %q", target)
}

func (c *jepsenCluster) Kill(_ context.Context, target string) error {
	return c.signal(target, syscall.SIGKILL)
}

func (c *jepsenCluster) Pause(_ context.Context, target string) error {
	return c.signal(target, syscall.SIGSTOP)
}

func (c *jepsenCluster) Resume(_ context.Context, target string) error {
	return c.signal(target, syscall.SIGCONT)
}

func (c *jepsenCluster) Restart(_ context.Context, target string, clockOffset time.Duration) error {
	if n := c.node(target); n != nil {
		n.clockOffset = clockOffset
		return n.awaitReady(n.start())
	}
	if f := c.frontend(target); f != nil {
		return f.start()
	}
	return fmt.Errorf("no node or frontend %q", target)
}

// Cut makes each link lose its traffic: what From sends on connections it dialed to To's
// proxy, and what it answers on connections To dialed to From's proxy.
func (c *jepsenCluster) Cut(_ context.Context, links []nemesis.Link, mode nemesis.CutMode) error {
	for _, l := range links {
		from, to := c.raftProxies[l.From], c.raftProxies[l.To]
		if from == nil || to == nil {
			return fmt.Errorf("no link %s -> %s", l.From, l.To)
		}
		switch mode {
		case nemesis.Blackhole:
			to.Blackhole(l.From, faultproxy.ToTarget)
			from.Blackhole(l.To, faultproxy.FromTarget)
		case nemesis.Drop:
			to.Drop(l.From)
			from.Drop(l.To)
		default:
			return fmt.Errorf("unknown cut mode %q", mode)
		}
	}
	return nil
}

func (c *jepsenCluster) HealLinks(context.Context) error {
	if testing.Verbose() {
		c.t.Logf("strata cluster status before healing the partition:\n%s", c.clusterStatus())
	}
	for _, p := range c.raftProxies {
		p.HealAll()
	}
	return nil
}

// clusterStatus is the output of `strata cluster status` (through etcd and the gRPC proxies).
func (c *jepsenCluster) clusterStatus() string {
	out, err := exec.Command(strataBin, append([]string{"cluster", "status", "--etcd", c.etcd, "--timeout", "5s"}, c.adminArgs...)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(%v)", out, err)
	}
	return string(out)
}

// admin runs a cluster admin command through etcd; it finds the leader itself.
func (c *jepsenCluster) admin(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, strataBin, append(append(args, "--etcd", c.etcd, "--timeout", "20s"), c.adminArgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("strata %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *jepsenCluster) TransferLeader(ctx context.Context, to string) error {
	return c.admin(ctx, "cluster", "transfer-leader", to)
}

func (c *jepsenCluster) RemoveVoter(ctx context.Context, id string) error {
	if err := c.admin(ctx, "cluster", "remove", id); err != nil {
		return err
	}
	c.mu.Lock()
	c.removed[id] = true
	c.mu.Unlock()
	return nil
}

// AddVoter adds a removed node back (as a non-voter the leader promotes once it caught up)
// and waits until it is a voter.
func (c *jepsenCluster) AddVoter(ctx context.Context, id string) error {
	n := c.node(id)
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	if err := c.admin(ctx, "cluster", "add", id, n.raftAdvertise, n.grpcAdvertise); err != nil {
		return err
	}
	if err := c.waitMembers(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.removed, id)
	c.mu.Unlock()
	return nil
}

func (c *jepsenCluster) LastIndex(ctx context.Context, id string) (uint64, error) {
	n := c.node(id)
	if n == nil {
		return 0, fmt.Errorf("no node %q", id)
	}
	st, err := n.status(ctx, false)
	if err != nil {
		return 0, err
	}
	return st.GetLastIndex(), nil
}

func (c *jepsenCluster) SnapshotGap() uint64 { return jepsenSnapshotGap }

func (c *jepsenCluster) serviceProxy(service string) (*faultproxy.Proxy, error) {
	switch service {
	case "s3":
		return c.s3Proxy, nil
	case "etcd":
		return c.etcdProxy, nil
	}
	return nil, fmt.Errorf("no service %q", service)
}

func (c *jepsenCluster) ServiceFault(_ context.Context, service string, f nemesis.ServiceFault) error {
	p, err := c.serviceProxy(service)
	if err != nil {
		return err
	}
	switch f.Mode {
	case "drop":
		p.Drop(faultproxy.AnySource)
	case "blackhole":
		p.Blackhole(faultproxy.AnySource, faultproxy.Both)
	case "delay":
		p.Delay(faultproxy.AnySource, faultproxy.Both, f.Delay)
	default:
		return fmt.Errorf("unknown service fault %q", f.Mode)
	}
	return nil
}

func (c *jepsenCluster) HealService(_ context.Context, service string) error {
	p, err := c.serviceProxy(service)
	if err != nil {
		return err
	}
	p.HealAll()
	return nil
}

// waitMembers waits until a leader reports exactly the three nodes as voters.
func (c *jepsenCluster) waitMembers(ctx context.Context) error {
	want := c.MetaNodes()
	var last string
	for {
		for _, n := range c.nodes {
			st, err := n.status(ctx, false)
			if err != nil || st.GetState() != "Leader" {
				continue
			}
			var voters []string
			for _, s := range st.GetServers() {
				if s.GetSuffrage() == "voter" {
					voters = append(voters, s.GetId())
				}
			}
			slices.Sort(voters)
			if slices.Equal(voters, want) && len(st.GetServers()) == len(want) {
				return nil
			}
			last = fmt.Sprint(st.GetServers())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("voters are not %v; last membership seen: %s: %w", want, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Converge waits until every process runs, the group has a leader and its three voters, and
// every node has applied what the leader had applied.
func (c *jepsenCluster) Converge(ctx context.Context) error {
	for _, n := range c.nodes {
		n.mu.Lock()
		exited := n.exited
		n.mu.Unlock()
		select {
		case <-exited:
			return fmt.Errorf("metadata node %s is not running:\n%s", n.id, tail(n.logs(), 40))
		default:
		}
	}
	for _, f := range c.frontends {
		f.mu.Lock()
		exited := f.exited
		f.mu.Unlock()
		select {
		case <-exited:
			return fmt.Errorf("frontend %s is not running:\n%s", f.name, tail(f.logs(), 40))
		default:
		}
	}
	if err := c.waitMembers(ctx); err != nil {
		return err
	}
	leaderID, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	st, err := c.node(leaderID).status(ctx, false)
	if err != nil {
		return err
	}
	// The leader's state machine holds everything committed (a read barrier's guarantee is not
	// needed: nothing is being written once the nemesis is done but the workload's tail).
	target := st.GetAppliedIndex()
	for _, n := range c.nodes {
		for {
			st, err := n.status(ctx, false)
			if err == nil && st.GetAppliedIndex() >= target {
				break
			}
			select {
			case <-ctx.Done():
				return errors.Join(fmt.Errorf("%s has not applied the leader's applied index %d: %v", n.id, target, st), err, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
