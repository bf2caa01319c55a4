package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/replication/cluster"
	"github.com/strata-mail/strata/replication/directory"
)

func newClusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show and change the membership of the metadata Raft group",
		Long: `cluster talks to the metadata nodes found in etcd (--etcd) or to one node
(--server); membership changes are sent to the leader, following NOT_LEADER redirects.`,
	}
	pf := cmd.PersistentFlags()
	pf.String("etcd", "127.0.0.1:2379", "comma-separated etcd endpoints, to find the metadata nodes")
	pf.String("server", "", "gRPC address of one metadata node (instead of looking them up in etcd)")
	pf.String("group", defaultGroup, "name of the Raft group in etcd")
	pf.Duration("timeout", 30*time.Second, "give up after this long")
	addClusterTLSFlags(pf)

	status := &cobra.Command{
		Use:   "status",
		Short: "List the group's members, the leader and each node's progress",
		Args:  cobra.NoArgs,
		RunE:  runClusterStatus,
	}
	status.Flags().Bool("digest", false, "also show each node's state machine digest (reads all its state)")
	add := &cobra.Command{
		Use:   "add ID RAFT_ADDR [GRPC_ADDR]",
		Short: "Add a node (as a non-voter promoted once caught up, or --voter at once)",
		Args:  cobra.RangeArgs(2, 3),
		RunE:  runClusterAdd,
	}
	add.Flags().Bool("voter", false, "add as a voter at once instead of a non-voter")
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a node from the group",
		Args:  cobra.ExactArgs(1),
		RunE:  runClusterRemove,
	}
	transfer := &cobra.Command{
		Use:   "transfer-leader [ID]",
		Short: "Hand Raft leadership to voter ID (or to the most up-to-date voter)",
		Long: `transfer-leader asks the leader to hand leadership over: to voter ID when given,
else to the voter raft finds most up to date. Writes pause for about one round trip, not an
election timeout; use it before taking the leader's host down.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runClusterTransferLeader,
	}
	cmd.AddCommand(status, add, remove, transfer)
	return cmd
}

// clusterTarget is how a cluster subcommand reaches the nodes.
type clusterTarget struct {
	creds  credentials.TransportCredentials
	server string
	dir    *directory.Directory
	group  string
	close  func()
}

func newClusterTarget(cmd *cobra.Command) (*clusterTarget, error) {
	f := cmd.Flags()
	server, _ := f.GetString("server")
	group, _ := f.GetString("group")
	creds, err := adminCreds(f)
	if err != nil {
		return nil, err
	}
	t := &clusterTarget{creds: creds, server: server, group: group, close: func() {}}
	if server != "" {
		return t, nil
	}
	endpoints, _ := f.GetString("etcd")
	c, err := directory.Dial(endpoints)
	if err != nil {
		return nil, err
	}
	t.dir = directory.New(c, nil)
	t.close = func() { c.Close() }
	return t, nil
}

// addrs lists the gRPC addresses to try, the leader hint first.
func (t *clusterTarget) addrs(ctx context.Context) []string {
	if t.dir == nil {
		return []string{t.server}
	}
	var addrs []string
	if l, ok, err := t.dir.Leader(ctx, t.group); err == nil && ok {
		addrs = append(addrs, l.GRPCAddr)
	}
	nodes, _ := t.dir.Nodes(ctx)
	for _, n := range nodes {
		addrs = append(addrs, n.GRPCAddr)
	}
	return addrs
}

func (t *clusterTarget) onLeader(ctx context.Context, fn func(context.Context, clusterpb.ClusterAdminClient) error) error {
	// A node whose etcd lease lapsed (etcd unreachable or slow for a TTL) registers again
	// within moments, so an empty registry is waited out until the command's deadline.
	first := t.addrs(ctx)
	for len(first) == 0 {
		select {
		case <-ctx.Done():
			return errors.New("no metadata node is registered in etcd")
		case <-time.After(200 * time.Millisecond):
		}
		first = t.addrs(ctx)
	}
	return cluster.OnLeader(ctx, t.creds, first[0], t.addrs, fn)
}

func clusterContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	timeout, _ := cmd.Flags().GetDuration("timeout")
	return context.WithTimeout(cmd.Context(), timeout)
}

func runClusterAdd(cmd *cobra.Command, args []string) error {
	t, err := newClusterTarget(cmd)
	if err != nil {
		return err
	}
	defer t.close()
	ctx, cancel := clusterContext(cmd)
	defer cancel()
	voter, _ := cmd.Flags().GetBool("voter")
	req := &clusterpb.JoinRequest{Id: args[0], RaftAddr: args[1], Voter: voter}
	if len(args) == 3 {
		req.GrpcAddr = args[2]
	}
	err = t.onLeader(ctx, func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
		_, err := c.Join(ctx, req)
		return err
	})
	if err != nil {
		return fmt.Errorf("add %s: %w", args[0], err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "added %s at %s\n", args[0], args[1])
	return nil
}

func runClusterRemove(cmd *cobra.Command, args []string) error {
	t, err := newClusterTarget(cmd)
	if err != nil {
		return err
	}
	defer t.close()
	ctx, cancel := clusterContext(cmd)
	defer cancel()
	err = t.onLeader(ctx, func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
		_, err := c.Remove(ctx, &clusterpb.RemoveRequest{Id: args[0]})
		return err
	})
	if err != nil {
		return fmt.Errorf("remove %s: %w", args[0], err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
	return nil
}

func runClusterTransferLeader(cmd *cobra.Command, args []string) error {
	t, err := newClusterTarget(cmd)
	if err != nil {
		return err
	}
	defer t.close()
	ctx, cancel := clusterContext(cmd)
	defer cancel()
	req := &clusterpb.TransferLeadershipRequest{}
	if len(args) == 1 {
		req.Id = args[0]
	}
	var leader string
	err = t.onLeader(ctx, func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
		if _, err := c.TransferLeadership(ctx, req); err != nil {
			return err
		}
		// Ask the former leader who leads now, so the output names the new leader.
		st, err := c.Status(ctx, &clusterpb.StatusRequest{})
		if err == nil {
			leader = st.GetLeaderId()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	if leader == "" {
		leader = "(not known yet)"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "leadership transferred; leader: %s\n", leader)
	return nil
}

func runClusterStatus(cmd *cobra.Command, _ []string) error {
	t, err := newClusterTarget(cmd)
	if err != nil {
		return err
	}
	defer t.close()
	ctx, cancel := clusterContext(cmd)
	defer cancel()
	digest, _ := cmd.Flags().GetBool("digest")
	// The membership as the leader sees it, then each member's own progress.
	var group *clusterpb.StatusResponse
	err = t.onLeader(ctx, func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
		st, err := c.Status(ctx, &clusterpb.StatusRequest{})
		if err != nil {
			return err
		}
		if st.GetState() != "Leader" && st.GetLeaderId() != "" {
			// Ask again where the leader is: its view of membership is the latest.
			for _, s := range st.GetServers() {
				if s.GetId() == st.GetLeaderId() && s.GetGrpcAddr() != "" {
					if ls, err := statusOf(ctx, t.creds, s.GetGrpcAddr(), false); err == nil {
						st = ls
					}
				}
			}
		}
		group = st
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "leader: %s  term: %d\n", group.GetLeaderId(), group.GetTerm())
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	header := "ID\tSUFFRAGE\tSTATE\tRAFT\tGRPC\tLAST\tCOMMIT\tAPPLIED\tVERSION"
	if digest {
		header += "\tDIGEST"
	}
	fmt.Fprintln(w, header)
	var answered []*clusterpb.StatusResponse
	for _, s := range group.GetServers() {
		line := fmt.Sprintf("%s\t%s", s.GetId(), s.GetSuffrage())
		st, err := statusOf(ctx, t.creds, s.GetGrpcAddr(), digest)
		if s.GetGrpcAddr() == "" || err != nil {
			line += fmt.Sprintf("\tunreachable\t%s\t%s\t-\t-\t-\t-", s.GetRaftAddr(), s.GetGrpcAddr())
			if digest {
				line += "\t-"
			}
		} else {
			answered = append(answered, st)
			version := st.GetVersion()
			if version == "" {
				version = "-" // a build from before Status reported one
			}
			line += fmt.Sprintf("\t%s\t%s\t%s\t%d\t%d\t%d\t%s", st.GetState(), s.GetRaftAddr(), s.GetGrpcAddr(),
				st.GetLastIndex(), st.GetCommitIndex(), st.GetAppliedIndex(), version)
			if digest {
				line += "\t" + st.GetDigest()
			}
		}
		fmt.Fprintln(w, line)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if digest {
		// Replicas of different versions may store the same state in different layouts:
		// their digests differ without a divergence (docs/operations.md, "Upgrades").
		_, why := cluster.CompareDigests(answered)
		fmt.Fprintln(out, why)
	}
	return nil
}

// statusOf asks the node at addr for its status.
func statusOf(ctx context.Context, creds credentials.TransportCredentials, addr string, digest bool) (*clusterpb.StatusResponse, error) {
	if addr == "" {
		return nil, errors.New("no gRPC address")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return clusterpb.NewClusterAdminClient(conn).Status(ctx, &clusterpb.StatusRequest{Digest: digest})
}
