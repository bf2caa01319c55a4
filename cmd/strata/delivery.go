package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/sieve"
)

// The admin commands of mail delivery (issue 12): `strata alias add|del|list`, `strata
// tenant delivery` and `strata sieve`, built from tables of verbs (verbs.go).

func newAliasCommand() *cobra.Command {
	return adminGroup("alias", "Aliases and catch-all addresses of a tenant's domains",
		`Aliases deliver the mail of an address of a tenant's domain to accounts of the same
tenant. "@domain" is the domain's catch-all: it takes the mail of every address of the
domain that is neither an account nor an alias. Subaddresses (user+detail@domain, RFC 5233)
resolve like their address without the detail.`,
		aliasVerbs)
}

var aliasVerbs = []adminVerb{
	{
		use:   "add ADDRESS TARGET...",
		short: "Deliver ADDRESS (local@domain, or @domain for the catch-all) to the TARGET accounts, in addition to its current targets",
		args:  cobra.MinimumNArgs(2),
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			a, err := c.AddAlias(ctx, &metadatapb.AddAliasRequest{RequestId: embedded.NewRequestID(), Address: args[0], Targets: args[1:]})
			if err != nil {
				return fmt.Errorf("add alias %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s\n", a.GetAddress(), strings.Join(a.GetTargets(), ", "))
			return nil
		},
	},
	{
		use:   "del ADDRESS [TARGET...]",
		short: "Remove TARGET accounts from an alias, or the whole alias without TARGET",
		args:  cobra.MinimumNArgs(1),
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			resp, err := c.DeleteAlias(ctx, &metadatapb.DeleteAliasRequest{RequestId: embedded.NewRequestID(), Address: args[0], Targets: args[1:]})
			if err != nil {
				return fmt.Errorf("delete alias %s: %w", args[0], err)
			}
			if left := resp.GetAlias(); left != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s\n", left.GetAddress(), strings.Join(left.GetTargets(), ", "))
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "deleted alias %s\n", args[0])
			}
			return nil
		},
	},
	{
		use:   "list [--tenant NAME | --domain DOMAIN]",
		short: "List aliases: all, a tenant's or a domain's",
		args:  cobra.NoArgs,
		flags: func(f *pflag.FlagSet) {
			f.String("tenant", "", "only the aliases of this tenant's domains")
			f.String("domain", "", "only the aliases of this domain")
		},
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, _ []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			domain, _ := cmd.Flags().GetString("domain")
			resp, err := c.ListAliases(ctx, &metadatapb.ListAliasesRequest{Tenant: tenant, Domain: domain})
			if err != nil {
				return fmt.Errorf("list aliases: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ALIAS\tTENANT\tTARGETS")
			for _, a := range resp.GetAliases() {
				fmt.Fprintf(w, "%s\t%s\t%s\n", a.GetAddress(), a.GetTenant(), strings.Join(a.GetTargets(), ","))
			}
			return w.Flush()
		},
	},
}

// tenantDeliveryVerb shows a tenant's delivery settings and changes those named by flags.
var tenantDeliveryVerb = adminVerb{
	use:   "delivery NAME [flags]",
	short: "Show a tenant's delivery settings (LMTP, Sieve), and change those given as flags",
	args:  cobra.ExactArgs(1),
	flags: func(f *pflag.FlagSet) {
		f.String("subaddress-delimiter", "+", `characters that split user+detail (RFC 5233); "" turns subaddressing off`)
		f.Bool("quota-permanent", false, "refuse recipients over quota with 552 5.2.2 instead of 452 4.2.2")
		f.String("spam-action", "file", "what delivery does with spam: file (into Junk), tag or reject")
		f.Float64("spam-reject-score", 0, "with --spam-action reject: refuse mail at or above this score")
		f.Duration("dedup-window", 24*time.Hour, "how long a delivered message is remembered, so that an MTA's retry is not stored twice (at most 720h)")
		f.Uint32("sieve-max-script-bytes", 65536, "the largest Sieve script an account may store")
		f.Uint32("sieve-max-scripts", 32, "how many Sieve scripts an account may store")
	},
	run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
		if d, _ := cmd.Flags().GetDuration("dedup-window"); d < time.Second || d > 720*time.Hour {
			return fmt.Errorf("--dedup-window %s: from 1s to 720h", d)
		}
		s, err := c.GetDeliverySettings(ctx, &metadatapb.GetDeliverySettingsRequest{Tenant: args[0]})
		if err != nil {
			return fmt.Errorf("delivery settings of %s: %w", args[0], err)
		}
		f := cmd.Flags()
		changed := false
		for _, set := range []struct {
			flag  string
			apply func()
		}{
			{"subaddress-delimiter", func() { d, _ := f.GetString("subaddress-delimiter"); s.SubaddressDelimiter = proto.String(d) }},
			{"quota-permanent", func() { s.QuotaPermanent, _ = f.GetBool("quota-permanent") }},
			{"spam-action", func() { s.SpamAction, _ = f.GetString("spam-action") }},
			{"spam-reject-score", func() { s.SpamRejectScore, _ = f.GetFloat64("spam-reject-score") }},
			{"dedup-window", func() { d, _ := f.GetDuration("dedup-window"); s.DedupWindowSeconds = uint32(d / time.Second) }},
			{"sieve-max-script-bytes", func() { s.SieveMaxScriptBytes, _ = f.GetUint32("sieve-max-script-bytes") }},
			{"sieve-max-scripts", func() { s.SieveMaxScripts, _ = f.GetUint32("sieve-max-scripts") }},
		} {
			if f.Changed(set.flag) {
				set.apply()
				changed = true
			}
		}
		if changed {
			if s, err = c.SetDeliverySettings(ctx, &metadatapb.SetDeliverySettingsRequest{RequestId: embedded.NewRequestID(), Tenant: args[0], Settings: s}); err != nil {
				return fmt.Errorf("set delivery settings of %s: %w", args[0], err)
			}
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "subaddress-delimiter\t%q\n", s.GetSubaddressDelimiter())
		fmt.Fprintf(w, "quota-permanent\t%v\n", s.GetQuotaPermanent())
		fmt.Fprintf(w, "spam-action\t%s\n", s.GetSpamAction())
		fmt.Fprintf(w, "spam-reject-score\t%g\n", s.GetSpamRejectScore())
		fmt.Fprintf(w, "dedup-window\t%s\n", time.Duration(s.GetDedupWindowSeconds())*time.Second)
		fmt.Fprintf(w, "sieve-max-script-bytes\t%d\n", s.GetSieveMaxScriptBytes())
		fmt.Fprintf(w, "sieve-max-scripts\t%d\n", s.GetSieveMaxScripts())
		return w.Flush()
	},
}

func newSieveCommand() *cobra.Command {
	return adminGroup("sieve", "Sieve scripts of accounts, and the global scripts of tenants (RFC 5228, RFC 5804)",
		`Sieve scripts (RFC 5228) filter an account's mail at delivery. An account may store
several and has at most one active (RFC 5804). With --tenant NAME in place of EMAIL the
commands manage the tenant's global scripts: those put with --phase before or after run
before and after every user's script, the others can be included with :global (RFC 6609).
The server stores scripts as given; it does not compile them (ManageSieve does, at upload).
The tenant's limits are set with 'strata tenant delivery'.`,
		sieveVerbs)
}

// sieveOwnerArgs reads (EMAIL | --tenant NAME) followed by want more arguments.
func sieveOwnerArgs(cmd *cobra.Command, args []string, want int) (account, tenant string, rest []string, err error) {
	owner, rest, err := mailboxOwner(cmd, args, want)
	if err != nil {
		return "", "", nil, err
	}
	if t, isTenant := strings.CutPrefix(owner, "tenant:"); isTenant {
		return "", t, rest, nil
	}
	return owner, "", rest, nil
}

func tenantFlag(f *pflag.FlagSet) {
	f.String("tenant", "", "the global scripts of this tenant instead of an account's")
}

// readScript reads a script file, or standard input for "-"; the server enforces the size
// limit, so one byte past the largest limit is enough to be refused.
func readScript(cmd *cobra.Command, file string) ([]byte, error) {
	var r io.Reader = cmd.InOrStdin()
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	return io.ReadAll(io.LimitReader(r, maxScriptBytes+1))
}

// maxScriptBytes is the largest script size limit a tenant can set (metadata.proto).
const maxScriptBytes = 1 << 20

func describeScriptOwner(account, tenant string) string {
	if tenant != "" {
		return "tenant " + tenant
	}
	return account
}

var sieveVerbs = []adminVerb{
	{
		use:   "put (EMAIL | --tenant NAME) SCRIPT FILE",
		short: "Store a script from FILE ('-': standard input), replacing one of that name",
		args:  cobra.RangeArgs(2, 3),
		flags: func(f *pflag.FlagSet) {
			tenantFlag(f)
			f.String("phase", "", "with --tenant: before or after, to run the script before or after every user's")
		},
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			account, tenant, rest, err := sieveOwnerArgs(cmd, args, 2)
			if err != nil {
				return err
			}
			content, err := readScript(cmd, rest[1])
			if err != nil {
				return fmt.Errorf("read script %s: %w", rest[1], err)
			}
			// RFC 5804 2.6: a script that does not compile is never stored, whoever puts it.
			if _, err := sieve.Compile(rest[0], content, sieve.Options{}); err != nil {
				return fmt.Errorf("script %s does not compile: %w", rest[0], err)
			}
			phase, _ := cmd.Flags().GetString("phase")
			s, err := c.PutSieveScript(ctx, &metadatapb.PutSieveScriptRequest{
				RequestId: embedded.NewRequestID(), Account: account, Tenant: tenant, Name: rest[0], Content: content, Phase: phase,
			})
			if err != nil {
				return fmt.Errorf("put sieve script %q of %s: %w", rest[0], describeScriptOwner(account, tenant), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %q of %s (%d bytes)\n", s.GetName(), describeScriptOwner(account, tenant), s.GetSize())
			return nil
		},
	},
	{
		use:   "get (EMAIL | --tenant NAME) SCRIPT",
		short: "Print a script",
		args:  cobra.RangeArgs(1, 2),
		flags: tenantFlag,
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			account, tenant, rest, err := sieveOwnerArgs(cmd, args, 1)
			if err != nil {
				return err
			}
			s, err := c.GetSieveScript(ctx, &metadatapb.GetSieveScriptRequest{Account: account, Tenant: tenant, Name: rest[0]})
			if err != nil {
				return fmt.Errorf("get sieve script %q of %s: %w", rest[0], describeScriptOwner(account, tenant), err)
			}
			_, err = cmd.OutOrStdout().Write(s.GetContent())
			return err
		},
	},
	{
		use:   "list (EMAIL | --tenant NAME)",
		short: "List scripts with the active one (or the phases of global scripts) and the limits",
		args:  cobra.MaximumNArgs(1),
		flags: tenantFlag,
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			account, tenant, _, err := sieveOwnerArgs(cmd, args, 0)
			if err != nil {
				return err
			}
			resp, err := c.ListSieveScripts(ctx, &metadatapb.ListSieveScriptsRequest{Account: account, Tenant: tenant})
			if err != nil {
				return fmt.Errorf("list sieve scripts of %s: %w", describeScriptOwner(account, tenant), err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SCRIPT\tACTIVE\tPHASE\tBYTES\tUPDATED")
			for _, s := range resp.GetScripts() {
				active := ""
				if s.GetActive() {
					active = "yes"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", s.GetName(), active, s.GetPhase(), s.GetSize(), time.Unix(s.GetUpdatedUnix(), 0).UTC().Format(time.RFC3339))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "limits: %d scripts of at most %d bytes\n", resp.GetMaxScripts(), resp.GetMaxScriptBytes())
			return nil
		},
	},
	{
		use:   "activate EMAIL [SCRIPT]",
		short: "Make SCRIPT the account's active script; without SCRIPT, none is active (RFC 5804 2.8)",
		args:  cobra.RangeArgs(1, 2),
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			if _, err := c.SetActiveSieveScript(ctx, &metadatapb.SetActiveSieveScriptRequest{RequestId: embedded.NewRequestID(), Account: args[0], Name: name}); err != nil {
				return fmt.Errorf("activate sieve script %q of %s: %w", name, args[0], err)
			}
			if name == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "no script of %s is active\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%q of %s is active\n", name, args[0])
			}
			return nil
		},
	},
	{
		use:   "rename (EMAIL | --tenant NAME) SCRIPT NEWNAME",
		short: "Rename a script (the active one stays active)",
		args:  cobra.RangeArgs(2, 3),
		flags: tenantFlag,
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			account, tenant, rest, err := sieveOwnerArgs(cmd, args, 2)
			if err != nil {
				return err
			}
			if _, err := c.RenameSieveScript(ctx, &metadatapb.RenameSieveScriptRequest{RequestId: embedded.NewRequestID(), Account: account, Tenant: tenant, Name: rest[0], NewName: rest[1]}); err != nil {
				return fmt.Errorf("rename sieve script %q of %s: %w", rest[0], describeScriptOwner(account, tenant), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "renamed %q of %s to %q\n", rest[0], describeScriptOwner(account, tenant), rest[1])
			return nil
		},
	},
	{
		use:     "delete (EMAIL | --tenant NAME) SCRIPT",
		aliases: []string{"del"},
		short:   "Delete a script; the active script cannot be deleted (RFC 5804 2.10)",
		args:    cobra.RangeArgs(1, 2),
		flags:   tenantFlag,
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			account, tenant, rest, err := sieveOwnerArgs(cmd, args, 1)
			if err != nil {
				return err
			}
			if _, err := c.DeleteSieveScript(ctx, &metadatapb.DeleteSieveScriptRequest{RequestId: embedded.NewRequestID(), Account: account, Tenant: tenant, Name: rest[0]}); err != nil {
				return fmt.Errorf("delete sieve script %q of %s: %w", rest[0], describeScriptOwner(account, tenant), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %q of %s\n", rest[0], describeScriptOwner(account, tenant))
			return nil
		},
	},
}
