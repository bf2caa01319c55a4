package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
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
