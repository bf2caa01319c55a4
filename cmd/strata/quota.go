package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// The admin commands of issue 7: tenant del, domain add|del, user disable|enable,
// quota set|get.

func newTenantDelCommand() *cobra.Command {
	del := &cobra.Command{
		Use:   "del NAME [--force]",
		Short: "Delete a tenant and free its domains; refused while it has accounts unless --force deletes them and their mail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			force, _ := cmd.Flags().GetBool("force")
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				resp, err := c.DeleteTenant(ctx, &metadatapb.DeleteTenantRequest{
					RequestId: embedded.NewRequestID(), Name: args[0], Force: force,
				})
				if err != nil {
					return fmt.Errorf("delete tenant %s: %w", args[0], err)
				}
				for _, a := range resp.GetDeletedAccounts() {
					fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", a)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted tenant %s\n", args[0])
				return nil
			})
		},
	}
	del.Flags().Bool("force", false, "also delete the tenant's accounts and all their mail")
	return del
}

func newDomainCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "domain", Short: "Manage the domains of tenants"}
	addServerFlag(cmd)
	run := func(remove bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			if tenant == "" {
				return fmt.Errorf("--tenant is required")
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				var t *metadatapb.Tenant
				var err error
				if remove {
					t, err = c.RemoveDomain(ctx, &metadatapb.RemoveDomainRequest{RequestId: embedded.NewRequestID(), Tenant: tenant, Domain: args[0]})
				} else {
					t, err = c.AddDomain(ctx, &metadatapb.AddDomainRequest{RequestId: embedded.NewRequestID(), Tenant: tenant, Domain: args[0]})
				}
				if err != nil {
					return fmt.Errorf("domain %s of tenant %s: %w", args[0], tenant, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tenant %s: %s\n", t.GetName(), strings.Join(t.GetDomains(), ", "))
				return nil
			})
		}
	}
	add := &cobra.Command{
		Use:   "add DOMAIN --tenant NAME",
		Short: "Give a tenant a domain (a domain belongs to one tenant)",
		Args:  cobra.ExactArgs(1),
		RunE:  run(false),
	}
	del := &cobra.Command{
		Use:   "del DOMAIN --tenant NAME",
		Short: "Take a domain from its tenant; refused while accounts use it",
		Args:  cobra.ExactArgs(1),
		RunE:  run(true),
	}
	for _, c := range []*cobra.Command{add, del} {
		c.Flags().String("tenant", "", "the tenant that owns the domain")
	}
	cmd.AddCommand(add, del)
	return cmd
}

// newUserDisableCommand is `user disable` (disabled) or `user enable`.
func newUserDisableCommand(disabled bool) *cobra.Command {
	verb, short := "enable", "Enable a disabled account"
	if disabled {
		verb, short = "disable", "Disable an account: it cannot log in, and its open IMAP sessions end with BYE"
	}
	return &cobra.Command{
		Use:   verb + " EMAIL",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				if _, err := c.SetAccountDisabled(ctx, &metadatapb.SetAccountDisabledRequest{
					RequestId: embedded.NewRequestID(), Email: args[0], Disabled: disabled,
				}); err != nil {
					return fmt.Errorf("%s %s: %w", verb, args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sd %s\n", verb, args[0])
				return nil
			})
		},
	}
}

// quotaTarget reads EMAIL or --tenant NAME, exactly one of them.
func quotaTarget(cmd *cobra.Command, args []string) (account, tenant string, err error) {
	tenant, _ = cmd.Flags().GetString("tenant")
	if len(args) == 1 {
		account = args[0]
	}
	if (account == "") == (tenant == "") {
		return "", "", fmt.Errorf("give an account EMAIL or --tenant NAME")
	}
	return account, tenant, nil
}

// parseLimit reads a limit flag: a number, or "none" for no limit.
func parseLimit(flag, value string) (*uint64, error) {
	if strings.EqualFold(value, "none") {
		return nil, nil
	}
	n, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("--%s: want a number or none, got %q", flag, value)
	}
	return proto.Uint64(n), nil
}

func newQuotaCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "quota", Short: "Quota limits and usage of accounts and tenants (RFC 9208)"}
	addServerFlag(cmd)

	set := &cobra.Command{
		Use:   "set (EMAIL | --tenant NAME) [--storage BYTES|none] [--messages N|none]",
		Short: "Set the limits of an account or a tenant; a limit not given stays as it is",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			account, tenant, err := quotaTarget(cmd, args)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("storage") && !cmd.Flags().Changed("messages") {
				return fmt.Errorf("give --storage, --messages or both")
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				cur, err := c.GetQuota(ctx, &metadatapb.GetQuotaRequest{Account: account, Tenant: tenant})
				if err != nil {
					return fmt.Errorf("read quota: %w", err)
				}
				limits := proto.Clone(cur.GetRoots()[0].GetLimits()).(*metadatapb.QuotaLimits)
				if limits == nil {
					limits = &metadatapb.QuotaLimits{}
				}
				if cmd.Flags().Changed("storage") {
					v, _ := cmd.Flags().GetString("storage")
					if limits.StorageBytes, err = parseLimit("storage", v); err != nil {
						return err
					}
				}
				if cmd.Flags().Changed("messages") {
					v, _ := cmd.Flags().GetString("messages")
					if limits.Messages, err = parseLimit("messages", v); err != nil {
						return err
					}
				}
				root, err := c.SetQuota(ctx, &metadatapb.SetQuotaRequest{
					RequestId: embedded.NewRequestID(), Account: account, Tenant: tenant, Limits: limits,
				})
				if err != nil {
					return fmt.Errorf("set quota: %w", err)
				}
				return printQuota(cmd, []*metadatapb.QuotaRoot{root})
			})
		},
	}
	set.Flags().String("storage", "", "STORAGE limit in bytes (RFC822.SIZE of all messages), or none")
	set.Flags().String("messages", "", "MESSAGE limit (number of messages), or none")

	get := &cobra.Command{
		Use:   "get (EMAIL | --tenant NAME)",
		Short: "Show the limits and usage of an account (and its tenant) or of a tenant",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			account, tenant, err := quotaTarget(cmd, args)
			if err != nil {
				return err
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				resp, err := c.GetQuota(ctx, &metadatapb.GetQuotaRequest{Account: account, Tenant: tenant})
				if err != nil {
					return fmt.Errorf("get quota: %w", err)
				}
				return printQuota(cmd, resp.GetRoots())
			})
		},
	}
	for _, c := range []*cobra.Command{set, get} {
		c.Flags().String("tenant", "", "a tenant instead of an account")
	}
	cmd.AddCommand(set, get)
	return cmd
}

func printQuota(cmd *cobra.Command, roots []*metadatapb.QuotaRoot) error {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ROOT\tRESOURCE\tUSAGE\tLIMIT")
	limit := func(v *uint64) string {
		if v == nil {
			return "none"
		}
		return strconv.FormatUint(*v, 10)
	}
	for _, r := range roots {
		name := "account " + r.GetAccount()
		if r.GetTenant() != "" {
			name = "tenant " + r.GetTenant()
		}
		fmt.Fprintf(w, "%s\tSTORAGE\t%d\t%s\n", name, r.GetUsage().GetStorageBytes(), limit(r.GetLimits().StorageBytes))
		fmt.Fprintf(w, "%s\tMESSAGE\t%d\t%s\n", name, r.GetUsage().GetMessages(), limit(r.GetLimits().Messages))
	}
	return w.Flush()
}
