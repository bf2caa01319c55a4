package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
		args:  cobra.MaximumNArgs(1),
		flags: func(f *pflag.FlagSet) {
			f.String("tenant", "", "rebuild every account of this tenant")
		},
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			accounts, err := namedAccounts(ctx, c, cmd, args)
			if err != nil {
				return err
			}
			for _, account := range accounts {
				if err := rebuildIndex(ctx, c, cmd.ErrOrStderr(), account); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rebuilt the search index of %d account(s)\n", len(accounts))
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
The same commands then fill the dates SORT reads and the column a SELECT lists from.`,
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
				var numbered uint64
				for {
					p, err := c.NumberAccountMessages(ctx, &metadatapb.NumberAccountMessagesRequest{Account: account})
					if err != nil {
						return fmt.Errorf("number the Message-IDs of %s: %w", account, err)
					}
					numbered += p.GetNumbered()
					if p.GetDone() {
						break
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d entries numbered so far\n", account, numbered)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d entries numbered, every mailbox numbered\n", account, numbered)
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

// rebuildIndex rebuilds one account's index, drawing its progress on out.
func rebuildIndex(ctx context.Context, c metadatapb.MetadataClient, out io.Writer, account string) error {
	stream, err := c.RebuildSearchIndex(ctx, &metadatapb.RebuildSearchIndexRequest{Account: account})
	if err != nil {
		return fmt.Errorf("rebuild the search index of %s: %w", account, err)
	}
	var bar *progressbar.ProgressBar
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("rebuild the search index of %s: %w", account, err)
		}
		if bar == nil {
			bar = progressbar.NewOptions64(int64(p.GetTotal()), progressbar.OptionSetWriter(out),
				progressbar.OptionSetDescription(account), progressbar.OptionShowCount(), progressbar.OptionThrottle(0))
		}
		_ = bar.Set64(int64(p.GetDone()))
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(out)
	}
	return nil
}
