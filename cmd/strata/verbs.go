package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Admin subcommands as data (STYLE.md: "dispatch is data"): each verb is a row with its
// usage, argument check, flags and the call it makes, and adminGroup turns a table into a
// command. The delivery verbs (delivery.go: alias, sieve, tenant delivery) are built this
// way; the older verbs (user, tenant, domain, quota, acl, mailbox) are still one
// hand-written cobra block each and can move into tables the same way.
type adminVerb struct {
	use     string
	aliases []string
	short   string
	long    string
	args    cobra.PositionalArgs
	flags   func(*pflag.FlagSet)
	// run makes the verb's calls against the metadata service (withAdmin).
	run func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error
	// local, instead of run, is a verb that works on local files only (cert.go).
	local func(cmd *cobra.Command, args []string) error
	// service, instead of run, is a verb that calls another service of the metadata
	// nodes (BlobAdmin, Backup) over conn, which follows NOT_LEADER to the leader. Its
	// calls may each last as long as the command's deadline, which is deadline when
	// --timeout is not given.
	service  func(ctx context.Context, conn grpc.ClientConnInterface, cmd *cobra.Command, args []string) error
	deadline time.Duration
}

// command builds the cobra command of one verb.
func (v adminVerb) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:     v.use,
		Aliases: v.aliases,
		Short:   v.short,
		Long:    v.long,
		Args:    v.args,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				return v.run(ctx, c, cmd, args)
			})
		},
	}
	if v.local != nil {
		cmd.RunE = v.local
	}
	if v.service != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error { return v.runService(cmd, args) }
	}
	if v.flags != nil {
		v.flags(cmd.Flags())
	}
	return cmd
}

// adminGroup builds a command with one subcommand per verb and the --server and --etcd
// flags every admin command has.
func adminGroup(use, short, long string, verbs []adminVerb) *cobra.Command {
	cmd := verbGroup(use, short, long, verbs)
	addServerFlag(cmd)
	return cmd
}

// verbGroup builds a command with one subcommand per verb.
func verbGroup(use, short, long string, verbs []adminVerb) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long}
	for _, v := range verbs {
		cmd.AddCommand(v.command())
	}
	return cmd
}

// runService runs a service verb with its deadline.
func (v adminVerb) runService(cmd *cobra.Command, args []string) error {
	timeout, _ := cmd.Flags().GetDuration("timeout")
	if !cmd.Flags().Changed("timeout") && v.deadline > 0 {
		timeout = v.deadline
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	conn, err := adminConn(ctx, cmd, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	return v.service(ctx, conn, cmd, args)
}
