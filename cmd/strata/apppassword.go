package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// appPasswordVerbs are `strata user app-password add|list|revoke`: per-device passwords
// the metadata service generates, shows once and keeps as a digest.
var appPasswordVerbs = []adminVerb{
	{
		use:   "add EMAIL NAME [--scope imap,managesieve,lmtp-submission]",
		short: "Generate an app password for one device or client; it is shown once",
		long: `Generate an app password named NAME (the device or client, unique in the account) that
logs in where the account password does (LOGIN, AUTHENTICATE PLAIN) but only to the services of
--scope. The password is printed once and stored as a digest; revoke it with 'revoke'.`,
		args: cobra.ExactArgs(2),
		flags: func(f *pflag.FlagSet) {
			f.StringSlice("scope", []string{"imap"}, "services it logs in to: imap, managesieve, lmtp-submission")
		},
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			scopes, _ := cmd.Flags().GetStringSlice("scope")
			resp, err := c.AddAppPassword(ctx, &metadatapb.AddAppPasswordRequest{
				RequestId: embedded.NewRequestID(), Email: args[0], Name: args[1], Scopes: scopes,
			})
			if err != nil {
				return fmt.Errorf("add app password %q of %s: %w", args[1], args[0], err)
			}
			ap := resp.GetAppPassword()
			fmt.Fprintf(cmd.OutOrStdout(), "app password %q (id %s, scopes %s) of %s:\n%s\nIt is shown only now.\n",
				ap.GetName(), ap.GetId(), strings.Join(ap.GetScopes(), ","), args[0], resp.GetPassword())
			return nil
		},
	},
	{
		use:   "list EMAIL",
		short: "List an account's app passwords with their scopes and last use",
		args:  cobra.ExactArgs(1),
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			resp, err := c.ListAppPasswords(ctx, &metadatapb.ListAppPasswordsRequest{Email: args[0]})
			if err != nil {
				return fmt.Errorf("list app passwords of %s: %w", args[0], err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tSCOPES\tCREATED\tLAST USED")
			for _, ap := range resp.GetAppPasswords() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ap.GetId(), ap.GetName(), strings.Join(ap.GetScopes(), ","),
					unixTime(ap.GetCreatedUnix()), unixTime(ap.GetLastUsedUnix()))
			}
			return w.Flush()
		},
	},
	{
		use:   "revoke EMAIL ID|NAME",
		short: "Revoke an app password: every frontend refuses it from its next login",
		args:  cobra.ExactArgs(2),
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			ap, err := c.RevokeAppPassword(ctx, &metadatapb.RevokeAppPasswordRequest{
				RequestId: embedded.NewRequestID(), Email: args[0], IdOrName: args[1],
			})
			if err != nil {
				return fmt.Errorf("revoke app password %q of %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked app password %q (id %s) of %s\n", ap.GetName(), ap.GetId(), args[0])
			return nil
		},
	},
}

// newAppPasswordCommand is `strata user app-password`; the --server and --etcd flags are
// the user command's.
func newAppPasswordCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "app-password", Short: "Manage an account's app passwords (per device, scoped, revocable)"}
	for _, v := range appPasswordVerbs {
		cmd.AddCommand(v.command())
	}
	return cmd
}

// unixTime renders a stored time, "never" for 0.
func unixTime(sec int64) string {
	if sec == 0 {
		return "never"
	}
	return time.Unix(sec, 0).UTC().Format(time.RFC3339)
}
