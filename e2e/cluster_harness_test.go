package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/internal/testnet"
	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// metaNode is one `strata metadata` process; its addresses stay the same across restarts,
// as Raft's configuration names them. grpcAddr and raftAddr are where it listens; when the
// advertised addresses are set (a proxy in front of it), peers and clients use those.
type metaNode struct {
	t             testing.TB
	id            string
	dataDir       string
	etcd          string
	grpcAddr      string
	raftAddr      string
	grpcAdvertise string
	raftAdvertise string
	extra         []string
	clockOffset   time.Duration                    // --clock-offset of the next start
	tlsArgs       []string                         // its node identity (cluster mTLS)
	creds         credentials.TransportCredentials // the tests' calls to it, as the cluster administrator

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    strings.Builder
}

var metaReadyLine = regexp.MustCompile(`^Strata metadata node \S+ is ready\.`)

// freeAddr returns a loopback address for a server that may be restarted on it
// (testnet.Addr: below the ephemeral range, never handed out twice in this binary).
func freeAddr(t testing.TB) string {
	t.Helper()
	return testnet.Addr(t, "127.0.0.1")
}

// freeAddrOn is freeAddr on loopback address ip (any of 127.0.0.0/8).
func freeAddrOn(t testing.TB, ip string) string {
	t.Helper()
	return testnet.Addr(t, ip)
}

func newMetaNode(t testing.TB, id, etcd string, extra ...string) *metaNode {
	return &metaNode{t: t, id: id, dataDir: t.TempDir(), etcd: etcd, grpcAddr: freeAddr(t), raftAddr: freeAddr(t), extra: extra,
		tlsArgs: clusterTLSArgs(t, "node", id), creds: adminCreds(t)}
}

// start runs the process and returns a channel closed once it printed its ready line.
func (n *metaNode) start() <-chan struct{} {
	t := n.t
	args := slices.Concat([]string{"metadata", "--node-id", n.id, "--data", n.dataDir, "--grpc-listen", n.grpcAddr,
		"--raft-listen", n.raftAddr, "--etcd", n.etcd, "--etcd-ttl", "2"}, n.tlsArgs, n.extra)
	if n.grpcAdvertise != "" {
		args = append(args, "--grpc-advertise", n.grpcAdvertise)
	}
	if n.raftAdvertise != "" {
		args = append(args, "--raft-advertise", n.raftAdvertise)
	}
	if n.clockOffset != 0 {
		args = append(args, "--clock-offset", n.clockOffset.String())
	}
	cmd := exec.Command(strataBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &nodeLog{n: n}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start strata metadata %s: %v", n.id, err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if metaReadyLine.MatchString(sc.Text()) {
				close(ready)
			}
		}
	}()
	go func() { cmd.Wait(); close(exited) }()
	return ready
}

// startNodes starts nodes all at once (the bootstrap election lets exactly one bootstrap),
// waits until each is ready, and kills them when the test ends (resumed first, in case a
// test left one SIGSTOPped), with the tail of each log if the test failed.
func startNodes(t testing.TB, nodes []*metaNode) {
	t.Helper()
	var readies []<-chan struct{}
	for _, n := range nodes {
		t.Cleanup(func() {
			n.signal(syscall.SIGCONT)
			n.signal(syscall.SIGKILL)
			if t.Failed() {
				t.Logf("node %s log:\n%s", n.id, tail(n.logs(), 60))
			}
		})
		readies = append(readies, n.start())
	}
	for i, n := range nodes {
		n.waitReady(readies[i])
	}
}

// waitReady waits for a ready channel from start.
func (n *metaNode) waitReady(ready <-chan struct{}) {
	n.t.Helper()
	if err := n.awaitReady(ready); err != nil {
		n.t.Fatal(err)
	}
}

// awaitReady is waitReady returning the failure, for goroutines other than the test's.
func (n *metaNode) awaitReady(ready <-chan struct{}) error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("metadata node %s exited before it was ready:\n%s", n.id, tail(n.logs(), 60))
	case <-time.After(60 * time.Second):
		return fmt.Errorf("metadata node %s not ready after 60s:\n%s", n.id, tail(n.logs(), 60))
	}
}

type nodeLog struct{ n *metaNode }

func (w *nodeLog) Write(b []byte) (int, error) {
	w.n.mu.Lock()
	defer w.n.mu.Unlock()
	return w.n.log.Write(b)
}

func (n *metaNode) logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// signal sends sig; for SIGKILL and SIGTERM it waits for the exit.
func (n *metaNode) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
}

// status asks the node for its ClusterAdmin status.
func (n *metaNode) status(ctx context.Context, digest bool) (*clusterpb.StatusResponse, error) {
	conn, err := grpc.NewClient(n.grpcAddr, grpc.WithTransportCredentials(n.creds))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return clusterpb.NewClusterAdminClient(conn).Status(ctx, &clusterpb.StatusRequest{Digest: digest})
}

// leaderClient calls the metadata API on the group's leader, following NOT_LEADER hints and
// retrying UNAVAILABLE with backoff (callers keep the request ID across retries).
type leaderClient struct {
	mu     sync.Mutex
	byID   map[string]string // node ID -> gRPC address
	order  []string
	conns  map[string]*grpc.ClientConn
	leader string
}

func newLeaderClient(t *testing.T, nodes ...*metaNode) *leaderClient {
	c := &leaderClient{byID: map[string]string{}, conns: map[string]*grpc.ClientConn{}}
	for _, n := range nodes {
		c.add(t, n)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, conn := range c.conns {
			conn.Close()
		}
	})
	return c
}

func (c *leaderClient) add(t *testing.T, n *metaNode) {
	conn, err := grpc.NewClient(n.grpcAddr, grpc.WithTransportCredentials(n.creds))
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byID[n.id] = n.grpcAddr
	c.order = append(c.order, n.grpcAddr)
	c.conns[n.grpcAddr] = conn
	if c.leader == "" {
		c.leader = n.grpcAddr
	}
}

// do calls fn until it succeeds, fails with an error other than UNAVAILABLE, or ctx ends.
func (c *leaderClient) do(ctx context.Context, fn func(context.Context, metadatapb.MetadataClient) error) error {
	backoff := 10 * time.Millisecond
	for {
		c.mu.Lock()
		addr := c.leader
		conn := c.conns[addr]
		c.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := fn(rctx, metadatapb.NewMetadataClient(conn))
		cancel()
		if err == nil {
			return nil
		}
		code := status.Code(err)
		if code != codes.Unavailable && code != codes.DeadlineExceeded {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		c.mu.Lock()
		if next := c.byID[notLeaderID(err)]; next != "" && next != addr {
			c.leader = next
			c.mu.Unlock()
			continue
		}
		if c.leader == addr { // unknown leader or unreachable node: try the next one
			for i, a := range c.order {
				if a == addr {
					c.leader = c.order[(i+1)%len(c.order)]
					break
				}
			}
		}
		c.mu.Unlock()
		time.Sleep(backoff)
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

// notLeaderID returns the leader ID a NOT_LEADER refusal names, "" otherwise.
func notLeaderID(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "NOT_LEADER" {
			return info.GetMetadata()["leader_id"]
		}
	}
	return ""
}

// clusterAdmin runs `strata ARGS --etcd etcd`, an admin command that finds the cluster in
// etcd and follows NOT_LEADER, retrying for up to 10 s while the nodes elect a leader and
// register.
func clusterAdmin(t testing.TB, etcd string, args ...string) {
	t.Helper()
	var out []byte
	var err error
	for range 20 {
		if out, err = exec.Command(strataBin, append(append(args, "--etcd", etcd), adminTLSArgs(t)...)...).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
}

// addClusterAccount makes the tenant acme (domain acme.test) and its account u@acme.test with
// password pw, which the cluster tests log in as.
func addClusterAccount(t testing.TB, etcd string) {
	t.Helper()
	clusterAdmin(t, etcd, "tenant", "add", "acme", "--domains", "acme.test")
	clusterAdmin(t, etcd, "user", "add", "u@acme.test", "--password", "pw")
}

// startVoters starts etcd and three `strata metadata` nodes, n1 to n3 with clusterNodeFlags,
// all at once (the bootstrap election lets exactly one bootstrap), and waits under ctx until
// they form a group of three voters. It returns etcd's address and the nodes.
func startVoters(t *testing.T, ctx context.Context) (etcd string, nodes []*metaNode) {
	t.Helper()
	etcd = etcdtest.Start(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, newMetaNode(t, id, etcd, clusterNodeFlags...))
	}
	startNodes(t, nodes)
	waitVoters(t, ctx, nodes, "n1", "n2", "n3")
	return etcd, nodes
}
