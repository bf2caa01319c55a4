package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// The admin commands of RFC 4314 access control (issue 7): `strata acl set|del|list` on a
// mailbox of an account, or of a tenant's shared namespace with --tenant, and `strata
// mailbox create|del` so that an operator can create the tenant's shared mailboxes (which
// users see under "Shared/"). They are admin calls: the metadata service checks no rights.

// ownerRights are the rights the owner of a personal mailbox always has (RFC 4314 2.1).
const ownerRights = "lrswipkxtea"

// mailboxOwner reads (EMAIL | --tenant NAME) followed by want more arguments, and returns
// the owner the metadata service knows ("tenant:NAME" for a tenant) and the rest.
func mailboxOwner(cmd *cobra.Command, args []string, want int) (owner string, rest []string, err error) {
	tenant, _ := cmd.Flags().GetString("tenant")
	switch {
	case tenant != "" && len(args) == want:
		return "tenant:" + tenant, args, nil
	case tenant == "" && len(args) == want+1:
		return args[0], args[1:], nil
	}
	return "", nil, fmt.Errorf("give an account EMAIL or --tenant NAME, then %d more arguments (see --help)", want)
}

// lenientArgs parses the arguments of a command whose arguments may start with "-" (RFC
// 4314 negative rights "-w", negative identifiers "-bob@example.com"), which pflag would
// take for shorthand flags: long flags of the command and its parents (--name VALUE or
// --name=VALUE, anywhere) are flags, every other word is an argument. It then applies the
// environment and configuration file as for any command; help reports that it printed
// the help.
func lenientArgs(cmd *cobra.Command, args []string) (positional []string, help bool, err error) {
	// cmd.Flags() holds the parents' persistent flags too: cobra merges them before it
	// runs any hook, also without flag parsing.
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if arg == "-h" || arg == "--help" {
			return nil, true, cmd.Help()
		}
		name, isFlag := strings.CutPrefix(arg, "--")
		if !isFlag {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(name, "=")
		f := cmd.Flags().Lookup(name)
		if f == nil {
			return nil, false, fmt.Errorf("unknown flag --%s", name)
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil, false, fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := cmd.Flags().Set(name, value); err != nil {
			return nil, false, fmt.Errorf("--%s: %w", name, err)
		}
	}
	return positional, false, applyConfig(cmd)
}

// describeOwner names an owner for messages.
func describeOwner(owner string) string {
	if tenant, isTenant := strings.CutPrefix(owner, "tenant:"); isTenant {
		return "tenant " + tenant
	}
	return owner
}

func newACLCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Access control lists of mailboxes (RFC 4314)",
		Long: `Access control lists of mailboxes (RFC 4314). A mailbox is named by its owner's
account EMAIL and its name, or by --tenant NAME and the name of a mailbox of the tenant's
shared namespace ("Shared/" in IMAP). Identifiers are "anyone" or an account of the
owner's tenant, optionally with a leading "-" for negative rights. Rights are letters of
lrswipkxtea (c and d stand for kx and et).`,
	}
	addServerFlag(cmd)

	set := &cobra.Command{
		Use:                "set (EMAIL | --tenant NAME) MAILBOX IDENTIFIER RIGHTS",
		Short:              "Set an identifier's rights; +RIGHTS adds to them, -RIGHTS removes from them (RFC 4314 3.1)",
		DisableFlagParsing: true, // -RIGHTS and -IDENTIFIER are arguments: lenientArgs
		RunE: func(cmd *cobra.Command, args []string) error {
			args, help, err := lenientArgs(cmd, args)
			if err != nil || help {
				return err
			}
			owner, rest, err := mailboxOwner(cmd, args, 3)
			if err != nil {
				return err
			}
			mailbox, identifier, rights := rest[0], rest[1], rest[2]
			mode := metadatapb.AclMode_ACL_MODE_REPLACE
			switch {
			case strings.HasPrefix(rights, "+"):
				mode, rights = metadatapb.AclMode_ACL_MODE_ADD, rights[1:]
			case strings.HasPrefix(rights, "-"):
				mode, rights = metadatapb.AclMode_ACL_MODE_REMOVE, rights[1:]
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				resp, err := c.SetAcl(ctx, &metadatapb.SetAclRequest{
					RequestId: embedded.NewRequestID(), Account: owner, Name: mailbox,
					Identifier: identifier, Rights: rights, Mode: mode,
				})
				if err != nil {
					return fmt.Errorf("set ACL of %s on %q of %s: %w", identifier, mailbox, describeOwner(owner), err)
				}
				return printACL(cmd, owner, resp)
			})
		},
	}
	del := &cobra.Command{
		Use:                "del (EMAIL | --tenant NAME) MAILBOX IDENTIFIER",
		Short:              "Remove an identifier's entry (RFC 4314 3.2)",
		DisableFlagParsing: true, // a -IDENTIFIER is an argument: lenientArgs
		RunE: func(cmd *cobra.Command, args []string) error {
			args, help, err := lenientArgs(cmd, args)
			if err != nil || help {
				return err
			}
			owner, rest, err := mailboxOwner(cmd, args, 2)
			if err != nil {
				return err
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				resp, err := c.DeleteAcl(ctx, &metadatapb.DeleteAclRequest{
					RequestId: embedded.NewRequestID(), Account: owner, Name: rest[0], Identifier: rest[1],
				})
				if err != nil {
					return fmt.Errorf("delete ACL entry %s on %q of %s: %w", rest[1], rest[0], describeOwner(owner), err)
				}
				return printACL(cmd, owner, resp)
			})
		},
	}
	list := &cobra.Command{
		Use:   "list (EMAIL | --tenant NAME) MAILBOX",
		Short: "Show a mailbox's ACL (RFC 4314 3.3)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			owner, rest, err := mailboxOwner(cmd, args, 1)
			if err != nil {
				return err
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				resp, err := c.GetAcl(ctx, &metadatapb.GetAclRequest{Account: owner, Name: rest[0]})
				if err != nil {
					return fmt.Errorf("ACL of %q of %s: %w", rest[0], describeOwner(owner), err)
				}
				return printACL(cmd, owner, resp)
			})
		},
	}
	for _, c := range []*cobra.Command{set, del, list} {
		c.Flags().String("tenant", "", "a mailbox of this tenant's shared namespace instead of an account's")
	}
	cmd.AddCommand(set, del, list)
	return cmd
}

// printACL prints an ACL: the owner of a personal mailbox first, with its fixed rights,
// then the entries.
func printACL(cmd *cobra.Command, owner string, resp *metadatapb.AclResponse) error {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "IDENTIFIER\tRIGHTS")
	if !strings.HasPrefix(owner, "tenant:") {
		fmt.Fprintf(w, "%s\t%s (owner)\n", owner, ownerRights)
	}
	for _, e := range resp.GetAcl() {
		fmt.Fprintf(w, "%s\t%s\n", e.GetIdentifier(), e.GetRights())
	}
	return w.Flush()
}

func newMailboxCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mailbox",
		Short: "Create and delete mailboxes of accounts and of tenants' shared namespaces",
	}
	addServerFlag(cmd)
	create := &cobra.Command{
		Use:   "create (EMAIL | --tenant NAME) MAILBOX",
		Short: `Create a mailbox (with --tenant, one users of the tenant see under "Shared/" once an ACL grants it)`,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			owner, rest, err := mailboxOwner(cmd, args, 1)
			if err != nil {
				return err
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				mb, err := c.CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{RequestId: embedded.NewRequestID(), Account: owner, Name: rest[0]})
				if err != nil {
					return fmt.Errorf("create %q of %s: %w", rest[0], describeOwner(owner), err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %q of %s\n", mb.GetName(), describeOwner(owner))
				return nil
			})
		},
	}
	del := &cobra.Command{
		Use:   "del (EMAIL | --tenant NAME) MAILBOX",
		Short: "Delete a mailbox and its messages (its inferiors stay, RFC 9051 6.3.5)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			owner, rest, err := mailboxOwner(cmd, args, 1)
			if err != nil {
				return err
			}
			return withAdmin(cmd, func(ctx context.Context, c metadatapb.MetadataClient) error {
				if _, err := c.DeleteMailbox(ctx, &metadatapb.DeleteMailboxRequest{RequestId: embedded.NewRequestID(), Account: owner, Name: rest[0]}); err != nil {
					return fmt.Errorf("delete %q of %s: %w", rest[0], describeOwner(owner), err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %q of %s\n", rest[0], describeOwner(owner))
				return nil
			})
		},
	}
	for _, c := range []*cobra.Command{create, del} {
		c.Flags().String("tenant", "", "a mailbox of this tenant's shared namespace instead of an account's")
	}
	cmd.AddCommand(create, del)
	return cmd
}
