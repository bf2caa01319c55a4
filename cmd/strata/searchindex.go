package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// newIndexCommand: `strata index`, the text-search index (package searchindex).
func newIndexCommand() *cobra.Command {
	return adminGroup("index", "The text-search index of SEARCH BODY, TEXT and the header keys",
		`The search index is derived data, built as mail arrives and kept in step with expunges,
moves and deletions; "rebuild" recreates it from the stored messages. While an account's
index is rebuilt, SEARCH stays exact: it scans what is not indexed yet. "thread-numbers"
gives the Message-ID numbers THREAD links by to the mailboxes stored before they existed.`,
		indexVerbs)
}

var indexVerbs = []adminVerb{
	{
		use:   "rebuild [EMAIL] [--tenant T]",
		short: "Rebuild the search index of one account, or of every account of a tenant, with a progress bar",
		long: `Each metadata node keeps its own index of the accounts its group holds (package
searchindex, "Where it runs"); a rebuild recreates the index of the node it reaches. With
--etcd the command rebuilds on every metadata node registered there, one after the
other, each with its own progress bar ("EMAIL on NODE"), so no replica keeps an index the
rebuild was meant to replace; a node started without --search-index is skipped and named.
With --server it rebuilds on that one node only: strata serve's, or in a cluster the
node named (give --etcd there).`,
		args: cobra.MaximumNArgs(1),
		flags: func(f *pflag.FlagSet) {
			f.String("tenant", "", "rebuild every account of this tenant")
		},
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			accounts, err := namedAccounts(ctx, c, cmd, args)
			if err != nil {
				return err
			}
			nodes, closeNodes, err := indexNodes(ctx, cmd, c)
			if err != nil {
				return err
			}
			defer closeNodes()
			rebuilt := 0
			for _, n := range nodes {
				err := rebuildOnNode(ctx, n, cmd.ErrOrStderr(), accounts)
				if status.Code(err) == codes.FailedPrecondition && len(nodes) > 1 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s keeps no search index: skipped\n", n.id)
					continue
				}
				if err != nil {
					return err
				}
				rebuilt++
			}
			if rebuilt == 0 {
				return errors.New("no metadata node keeps a search index (strata metadata --search-index)")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rebuilt the search index of %d account(s) on %d node(s)\n", len(accounts), rebuilt)
			return nil
		},
	},
	{
		use:   "thread-numbers [EMAIL] [--tenant T]",
		short: "Give the Message-ID numbers THREAD links by to the mailboxes of one account, or of every account of a tenant, stored before they existed",
		long: `The leader numbers such mailboxes in the background after an upgrade, at a tenth
of its time; this does it now for the accounts named, at full speed, and reports each
account's progress. Each call to the service works for about 2 seconds; give --timeout
for large accounts. Interrupted, it resumes where it stopped (metadata/numberfill.go).
The same commands then fill the dates SORT reads, the column a SELECT lists from, the
thread keys THREAD reads, the subject numbers SORT (SUBJECT) ranks by and the subject
records it reads them from; "entries numbered" counts the first stage only, "fill
commands" every stage's.`,
		args: cobra.MaximumNArgs(1),
		flags: func(f *pflag.FlagSet) {
			f.String("tenant", "", "every account of this tenant")
		},
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			accounts, err := namedAccounts(ctx, c, cmd, args)
			if err != nil {
				return err
			}
			for _, account := range accounts {
				var numbered, commands uint64
				for {
					p, err := c.NumberAccountMessages(ctx, &metadatapb.NumberAccountMessagesRequest{Account: account})
					if err != nil {
						return fmt.Errorf("number the Message-IDs of %s: %w", account, err)
					}
					numbered += p.GetNumbered()
					commands += uint64(p.GetCommands())
					if p.GetDone() {
						break
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d entries numbered, %d fill commands so far\n", account, numbered, commands)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d entries numbered, %d fill commands, every mailbox numbered\n", account, numbered, commands)
			}
			return nil
		},
	},
}

// namedAccounts returns the account a verb names (EMAIL), or every account of its
// --tenant.
func namedAccounts(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) ([]string, error) {
	tenant, _ := cmd.Flags().GetString("tenant")
	switch {
	case len(args) == 1 && tenant == "":
		return args, nil
	case len(args) == 0 && tenant != "":
		list, err := c.ListAccounts(ctx, &metadatapb.ListAccountsRequest{Tenant: tenant})
		if err != nil {
			return nil, fmt.Errorf("list accounts of %s: %w", tenant, err)
		}
		var accounts []string
		for _, a := range list.GetAccounts() {
			accounts = append(accounts, a.GetEmail())
		}
		return accounts, nil
	}
	return nil, errors.New("name one EMAIL or --tenant T")
}

// indexNode is a metadata node whose own index a rebuild reaches; id is empty for the
// one node --server names.
type indexNode struct {
	id     string
	client metadatapb.MetadataClient
}

// indexNodes returns the nodes `index rebuild` rebuilds on: with --etcd every metadata
// node registered there, each dialed on its own (not routed to the leader: each keeps
// its own index), else the node c reaches.
func indexNodes(ctx context.Context, cmd *cobra.Command, c metadatapb.MetadataClient) (nodes []indexNode, closeNodes func(), err error) {
	if etcd, _ := cmd.Flags().GetString("etcd"); etcd == "" {
		return []indexNode{{client: c}}, func() {}, nil
	}
	registered, err := adminNodes(ctx, cmd)
	if err != nil {
		return nil, nil, err
	}
	creds, err := adminCreds(cmd.Flags())
	if err != nil {
		return nil, nil, err
	}
	dialOptions := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	tokenOption, err := adminTokenOption(cmd)
	if err != nil {
		return nil, nil, err
	}
	if tokenOption != nil {
		dialOptions = append(dialOptions, tokenOption)
	}
	var conns []*grpc.ClientConn
	closeNodes = func() {
		for _, conn := range conns {
			conn.Close()
		}
	}
	for _, n := range registered {
		conn, err := grpc.NewClient(n.GRPCAddr, dialOptions...)
		if err != nil {
			closeNodes()
			return nil, nil, fmt.Errorf("dial metadata node %s at %s: %w", n.ID, n.GRPCAddr, err)
		}
		conns = append(conns, conn)
		nodes = append(nodes, indexNode{id: n.ID, client: metadatapb.NewMetadataClient(conn)})
	}
	return nodes, closeNodes, nil
}

// rebuildOnNode rebuilds the index of each of accounts on node n.
func rebuildOnNode(ctx context.Context, n indexNode, out io.Writer, accounts []string) error {
	for _, account := range accounts {
		label := account
		if n.id != "" {
			label += " on " + n.id
		}
		if err := rebuildIndex(ctx, n.client, out, label, account); err != nil {
			return err
		}
	}
	return nil
}

// rebuildIndex rebuilds one account's index on the node c reaches, drawing its progress
// on out as label.
func rebuildIndex(ctx context.Context, c metadatapb.MetadataClient, out io.Writer, label, account string) error {
	stream, err := c.RebuildSearchIndex(ctx, &metadatapb.RebuildSearchIndexRequest{Account: account})
	if err != nil {
		return fmt.Errorf("rebuild the search index of %s: %w", label, err)
	}
	var bar *progressbar.ProgressBar
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("rebuild the search index of %s: %w", label, err)
		}
		if bar == nil {
			bar = progressbar.NewOptions64(int64(p.GetTotal()), progressbar.OptionSetWriter(out),
				progressbar.OptionSetDescription(label), progressbar.OptionShowCount(), progressbar.OptionThrottle(0))
		}
		_ = bar.Set64(int64(p.GetDone()))
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(out)
	}
	return nil
}
