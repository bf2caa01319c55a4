package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// tenantLdapVerbs are `strata tenant ldap set|show|clear`: a tenant's LDAP account source
// (issue 15, frontend/ldapauth, docs/ldap.md).
var tenantLdapVerbs = []adminVerb{
	{
		use:   "set TENANT --url URL --mode bind|search [flags]",
		short: "Make a directory the tenant's account source (replaces the tenant's LDAP settings whole)",
		long: `Logins of the tenant's accounts are checked against the directory; an account is
provisioned in Strata at its first successful login, its quota and aliases taken from the
mapped attributes. In templates and filters {user} is the local part of the login name and
{email} the whole login name, escaped by the frontend. The service account's password is
never given here: --bind-password-file names a file each frontend host reads.`,
		args: cobra.ExactArgs(1),
		flags: func(f *pflag.FlagSet) {
			f.String("url", "", "ldaps://host[:port], or ldap://host[:port] upgraded with StartTLS")
			f.Bool("allow-plaintext", false, "ldap:// without StartTLS (loopback hosts only, for tests)")
			f.String("ca-file", "", "PEM CA certificates on the frontend hosts (default: the system roots)")
			f.String("mode", "", "bind (bind as the user, --user-dn) or search (--bind-dn, --base-dn, --filter)")
			f.String("user-dn", "", `mode bind: the user's DN, e.g. "uid={user},ou=people,dc=example,dc=org"`)
			f.String("bind-dn", "", "mode search: the service account's DN")
			f.String("bind-password-file", "", "mode search: absolute path of the file with the service account's password, on each frontend host")
			f.String("base-dn", "", "mode search: where users are searched")
			f.String("filter", "", `mode search: e.g. "(&(objectClass=inetOrgPerson)(mail={email}))"`)
			f.String("mail-attr", "", "attribute with the account's address (default: the login name)")
			f.String("quota-attr", "", "attribute with the account's storage limit in bytes (default: quota not managed)")
			f.String("alias-attr", "", "attribute with addresses delivered to the account (default: none)")
			f.Duration("timeout", 5*time.Second, "limit of each LDAP exchange (at most 60s)")
		},
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			str := func(name string) string { v, _ := f.GetString(name); return v }
			plaintext, _ := f.GetBool("allow-plaintext")
			timeout, _ := f.GetDuration("timeout")
			if timeout < time.Millisecond || timeout > time.Minute {
				return fmt.Errorf("--timeout %s: from 1ms to 60s", timeout)
			}
			s := &metadatapb.LdapSettings{
				Url: str("url"), AllowPlaintext: plaintext, CaFile: str("ca-file"), Mode: str("mode"),
				UserDnTemplate: str("user-dn"), BindDn: str("bind-dn"), BindPasswordFile: str("bind-password-file"),
				BaseDn: str("base-dn"), Filter: str("filter"),
				MailAttribute: str("mail-attr"), QuotaAttribute: str("quota-attr"), AliasAttribute: str("alias-attr"),
				TimeoutMs: uint32(timeout / time.Millisecond),
			}
			return setLdapSettings(ctx, c, cmd, args[0], s)
		},
	},
	{
		use:   "show TENANT",
		short: "Show the tenant's LDAP settings",
		args:  cobra.ExactArgs(1),
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			resp, err := c.GetLdapSettings(ctx, &metadatapb.GetLdapSettingsRequest{Tenant: args[0]})
			if err != nil {
				return fmt.Errorf("LDAP settings of %s: %w", args[0], err)
			}
			return printLdapSettings(cmd, resp)
		},
	},
	{
		use:   "clear TENANT",
		short: "Stop using a directory: the tenant's passwords are Strata's again (accounts provisioned from LDAP have none until set)",
		args:  cobra.ExactArgs(1),
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			return setLdapSettings(ctx, c, cmd, args[0], nil)
		},
	},
}

func newTenantLdapCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "ldap", Short: "A tenant's LDAP account source (bind-as-user or search-then-bind)"}
	for _, v := range tenantLdapVerbs {
		cmd.AddCommand(v.command())
	}
	return cmd
}

// setLdapSettings replaces the tenant's settings (nil: clears them) and prints the result.
func setLdapSettings(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, tenant string, s *metadatapb.LdapSettings) error {
	resp, err := c.SetLdapSettings(ctx, &metadatapb.SetLdapSettingsRequest{RequestId: embedded.NewRequestID(), Tenant: tenant, Settings: s})
	if err != nil {
		return fmt.Errorf("set LDAP settings of %s: %w", tenant, err)
	}
	return printLdapSettings(cmd, resp)
}

func printLdapSettings(cmd *cobra.Command, resp *metadatapb.LdapSettingsResponse) error {
	s := resp.GetSettings()
	if s == nil {
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "tenant %s: no LDAP (passwords kept by Strata)\n", resp.GetTenant())
		return err
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"tenant", resp.GetTenant()},
		{"url", s.GetUrl()},
		{"allow-plaintext", fmt.Sprint(s.GetAllowPlaintext())},
		{"ca-file", s.GetCaFile()},
		{"mode", s.GetMode()},
		{"user-dn", s.GetUserDnTemplate()},
		{"bind-dn", s.GetBindDn()},
		{"bind-password-file", s.GetBindPasswordFile()},
		{"base-dn", s.GetBaseDn()},
		{"filter", s.GetFilter()},
		{"mail-attr", s.GetMailAttribute()},
		{"quota-attr", s.GetQuotaAttribute()},
		{"alias-attr", s.GetAliasAttribute()},
		{"timeout", (time.Duration(s.GetTimeoutMs()) * time.Millisecond).String()},
	} {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	return w.Flush()
}
