package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/metaclient"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication/directory"
)

// defaultAdminAddr is where `strata serve` exposes the admin gRPC endpoint.
const defaultAdminAddr = "127.0.0.1:1144"

// adminTimeout bounds every admin call unless --timeout says otherwise.
const adminTimeout = 30 * time.Second

func addServerFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().String("server", defaultAdminAddr, "admin gRPC address of a running Strata (strata serve, or any metadata node)")
	cmd.PersistentFlags().String("etcd", "", "comma-separated etcd endpoints to find the metadata nodes of a cluster (instead of --server)")
	cmd.PersistentFlags().String("token-file", "", "file holding an admin token (strata admin token issue), sent with every call; needs a TLS connection")
	cmd.PersistentFlags().Duration("timeout", adminTimeout, "give up after this long (an unreachable node, or one that refuses this command's certificate, is retried until then)")
	addClusterTLSFlags(cmd.PersistentFlags())
}

// withAdmin runs fn with a deadline against the metadata service: the nodes registered in
// etcd when --etcd is given, else the endpoint named by --server. Calls follow NOT_LEADER
// answers to the leader of the group.
func withAdmin(cmd *cobra.Command, fn func(ctx context.Context, c metadatapb.MetadataClient) error) error {
	timeout, _ := cmd.Flags().GetDuration("timeout")
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	md, closeClient, err := adminClient(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeClient()
	return fn(ctx, md)
}

// adminClient connects to the metadata service --etcd or --server names; its calls follow
// NOT_LEADER answers to the leader of the group. closeClient releases the connections.
func adminClient(ctx context.Context, cmd *cobra.Command) (md metadatapb.MetadataClient, closeClient func() error, err error) {
	conn, err := adminConn(ctx, cmd, 0)
	if err != nil {
		return nil, nil, err
	}
	return metadatapb.NewMetadataClient(conn), conn.Close, nil
}

// adminConn is adminClient's connection, for any service of the metadata nodes; each
// attempt of a unary call may last attemptTimeout (metaclient's default if 0).
func adminConn(ctx context.Context, cmd *cobra.Command, attemptTimeout time.Duration) (*metaclient.Client, error) {
	creds, err := adminCreds(cmd.Flags())
	if err != nil {
		return nil, err
	}
	nodes, err := adminNodes(ctx, cmd)
	if err != nil {
		return nil, err
	}
	dialOptions := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	tokenOption, err := adminTokenOption(cmd)
	if err != nil {
		return nil, err
	}
	if tokenOption != nil {
		// gRPC refuses to send it over a plaintext connection (identity.TokenCredentials).
		dialOptions = append(dialOptions, tokenOption)
	}
	conn, err := metaclient.New(metaclient.Config{
		Nodes:          nodes,
		DialOptions:    dialOptions,
		AttemptTimeout: attemptTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the metadata service: %w", err)
	}
	return conn, nil
}

// adminNodes lists the metadata nodes an admin command talks to.
func adminNodes(ctx context.Context, cmd *cobra.Command) ([]metaclient.Node, error) {
	endpoints, _ := cmd.Flags().GetString("etcd")
	if endpoints == "" {
		addr, _ := cmd.Flags().GetString("server")
		return []metaclient.Node{{GRPCAddr: addr}}, nil
	}
	etcd, err := directory.Dial(endpoints)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", endpoints, err)
	}
	defer etcd.Close()
	list, err := directory.New(etcd, nil).Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list metadata nodes in etcd: %w", err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no metadata node is registered in etcd at %s", endpoints)
	}
	nodes := make([]metaclient.Node, 0, len(list))
	for _, n := range list {
		nodes = append(nodes, metaclient.Node{ID: n.ID, GRPCAddr: n.GRPCAddr, RaftAddr: n.RaftAddr})
	}
	return nodes, nil
}

func newUserCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage accounts (user@domain)"}
	addServerFlag(cmd)

	add := &cobra.Command{
		Use:   "add EMAIL [--password-file FILE]",
		Short: "Create an account; its domain must belong to a tenant ('strata tenant add')",
		Long: `Create an account. The password comes from --password-file, a prompt when standard input
is a terminal, or the first line of standard input (--password works but shows in ps).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pass, err := readPassword(cmd, "the account's password")
			if err != nil {
				return err
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				acct, err := c.CreateAccount(ctx, &metadatapb.CreateAccountRequest{
					RequestId: embedded.NewRequestID(), Email: args[0], Password: pass,
				})
				if err != nil {
					return fmt.Errorf("add user %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %s (tenant %s)\n", acct.Email, acct.Tenant)
				return nil
			})
		},
	}
	addPasswordFlags(add.Flags(), "the account's password")

	passwd := &cobra.Command{
		Use:   "passwd EMAIL [--password-file FILE]",
		Short: "Set an account's password (and derive its SCRAM keys)",
		Long: `Set an account's password. The password comes from --password-file, a prompt when standard
input is a terminal, or the first line of standard input (--password works but shows in ps).
The metadata service also derives the SCRAM-SHA-256 keys from it; accounts whose password was
set before Strata had SCRAM log in with SCRAM only after this.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pass, err := readPassword(cmd, "the new password")
			if err != nil {
				return err
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				if _, err := c.SetPassword(ctx, &metadatapb.SetPasswordRequest{
					RequestId: embedded.NewRequestID(), Email: args[0], Password: pass,
				}); err != nil {
					return fmt.Errorf("set password of %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", args[0])
				return nil
			})
		},
	}
	addPasswordFlags(passwd.Flags(), "the new password")

	del := &cobra.Command{
		Use:   "del EMAIL",
		Short: "Delete an account and its mail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				if _, err := c.DeleteAccount(ctx, &metadatapb.DeleteAccountRequest{
					RequestId: embedded.NewRequestID(), Email: args[0],
				}); err != nil {
					return fmt.Errorf("delete %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
				return nil
			})
		},
	}

	list := &cobra.Command{
		Use:   "list [--tenant NAME]",
		Short: "List accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				resp, err := c.ListAccounts(ctx, &metadatapb.ListAccountsRequest{Tenant: tenant})
				if err != nil {
					return fmt.Errorf("list accounts: %w", err)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "EMAIL\tTENANT\tDISABLED\tCREATED")
				for _, a := range resp.Accounts {
					fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", a.Email, a.Tenant, a.Disabled, time.Unix(a.CreatedUnix, 0).UTC().Format(time.RFC3339))
				}
				return w.Flush()
			})
		},
	}
	list.Flags().String("tenant", "", "only accounts of this tenant")

	cmd.AddCommand(add, passwd, del, list, newUserDisableCommand(true), newUserDisableCommand(false), newAppPasswordCommand(), tenantAdminVerb.command())
	return cmd
}

func newTenantCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants and the domains they own"}
	addServerFlag(cmd)

	add := &cobra.Command{
		Use:   "add NAME --domains D1,D2",
		Short: "Create a tenant owning the given domains",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domains, _ := cmd.Flags().GetStringSlice("domains")
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				t, err := c.CreateTenant(ctx, &metadatapb.CreateTenantRequest{
					RequestId: embedded.NewRequestID(), Name: args[0], Domains: domains,
				})
				if err != nil {
					return fmt.Errorf("add tenant %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created tenant %s (%s)\n", t.Name, strings.Join(t.Domains, ", "))
				return nil
			})
		},
	}
	add.Flags().StringSlice("domains", nil, "domains the tenant owns")

	list := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				resp, err := c.ListTenants(ctx, &metadatapb.ListTenantsRequest{})
				if err != nil {
					return fmt.Errorf("list tenants: %w", err)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TENANT\tDOMAINS")
				for _, t := range resp.Tenants {
					fmt.Fprintf(w, "%s\t%s\n", t.Name, strings.Join(t.Domains, ","))
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(add, list, newTenantDelCommand(), tenantDeliveryVerb.command(), newTenantOAuthCommand(), newTenantLdapCommand())
	return cmd
}
