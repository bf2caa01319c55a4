package metaclient_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/metaclient"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

const testWait = 20 * time.Second

// member is one metadata node of a test group: a Raft node, its FSM and the Metadata
// service on a real gRPC listener.
type member struct {
	id     string
	fsm    *metadata.FSM
	node   *replication.Node
	srv    *grpc.Server
	ln     net.Listener
	served chan error
	dead   bool
}

// group is a 3-voter metadata group in this process, on 127.0.0.1.
type group struct {
	t       testing.TB
	members []*member
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startGroup bootstraps member 1, adds members 2 and 3 as voters and serves the Metadata
// service on every member.
func startGroup(t testing.TB) *group {
	t.Helper()
	g := &group{t: t}
	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	defer cancel()
	for i := range 3 {
		dir := t.TempDir()
		m := &member{id: "meta-" + strconv.Itoa(i+1), served: make(chan error, 1)}
		var err error
		if m.fsm, err = metadata.OpenFSM(filepath.Join(dir, "fsm"), quietLogger()); err != nil {
			t.Fatalf("open fsm: %v", err)
		}
		m.node, err = replication.Open(replication.Config{
			NodeID:             m.id,
			DataDir:            filepath.Join(dir, "raft"),
			RaftBind:           "127.0.0.1:0",
			Bootstrap:          i == 0,
			FSM:                m.fsm,
			Logger:             quietLogger(),
			HeartbeatTimeout:   100 * time.Millisecond,
			ElectionTimeout:    100 * time.Millisecond,
			LeaderLeaseTimeout: 50 * time.Millisecond,
			CommitTimeout:      2 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("open raft node %s: %v", m.id, err)
		}
		if i == 0 {
			if err := m.node.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := g.members[0].node.AddVoter(ctx, m.id, m.node.Addr()); err != nil {
			t.Fatalf("add voter %s: %v", m.id, err)
		}
		if m.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		m.srv = grpc.NewServer()
		metadatapb.RegisterMetadataServer(m.srv, metadata.NewService(m.node, m.fsm, quietLogger()))
		go func() { m.served <- m.srv.Serve(m.ln) }()
		g.members = append(g.members, m)
	}
	t.Cleanup(func() {
		for _, m := range g.members {
			g.kill(m)
		}
	})
	return g
}

// nodes lists the members as a directory would.
func (g *group) nodes() []metaclient.Node {
	var out []metaclient.Node
	for _, m := range g.members {
		out = append(out, metaclient.Node{ID: m.id, GRPCAddr: m.ln.Addr().String(), RaftAddr: m.node.Addr()})
	}
	return out
}

// leader waits until a live member leads the group and returns it.
func (g *group) leader() *member {
	g.t.Helper()
	deadline := time.Now().Add(testWait)
	for time.Now().Before(deadline) {
		for _, m := range g.members {
			if !m.dead && m.node.IsLeader() {
				return m
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	g.t.Fatal("no leader elected")
	return nil
}

// kill stops m as a crash would: its gRPC server drops every connection and Raft stops
// without handing leadership over.
func (g *group) kill(m *member) {
	if m.dead {
		return
	}
	m.dead = true
	m.srv.Stop()
	if err := <-m.served; err != nil {
		g.t.Errorf("grpc serve on %s: %v", m.id, err)
	}
	if err := m.node.Raft().Shutdown().Error(); err != nil {
		g.t.Errorf("shut down raft on %s: %v", m.id, err)
	}
	if err := m.node.Close(); err != nil {
		g.t.Errorf("close raft node %s: %v", m.id, err)
	}
	if err := m.fsm.Close(); err != nil {
		g.t.Errorf("close fsm on %s: %v", m.id, err)
	}
}

// newClient returns a metaclient over nodes, closed when the test ends.
func newClient(t testing.TB, nodes []metaclient.Node) *metaclient.Client {
	t.Helper()
	c, err := metaclient.New(metaclient.Config{
		Nodes:       nodes,
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Logger:      quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// createDemo creates the demo tenant and account through md.
func createDemo(t testing.TB, md metadatapb.MetadataClient) {
	t.Helper()
	if err := embedded.EnsureDemo(t.Context(), md); err != nil {
		t.Fatalf("create demo account: %v", err)
	}
}
