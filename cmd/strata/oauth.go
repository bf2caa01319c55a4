package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// `strata tenant oauth set|show|clear` (issue 15): the token issuer a tenant trusts for
// SASL OAUTHBEARER (RFC 7628) and XOAUTH2, built from a table of verbs (verbs.go). The
// verbs are added under `strata tenant`, which has the --server and --etcd flags.

func newTenantOAuthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oauth",
		Short: "The OAuth token issuer a tenant trusts for IMAP and ManageSieve (OAUTHBEARER, XOAUTH2)",
		Long: `A tenant that has an issuer lets its accounts log in with an OAuth 2.0 bearer token (a
JWT) through SASL OAUTHBEARER (RFC 7628) or XOAUTH2. A frontend accepts a token signed by
a key of the issuer's JWKS (fetched over HTTPS from --jwks-uri or the issuer's discovery
document), with "iss" the issuer, "aud" naming the audience, not expired, and whose
account claim names an enabled account of the tenant.`,
	}
	for _, v := range tenantOAuthVerbs {
		cmd.AddCommand(v.command())
	}
	return cmd
}

var tenantOAuthVerbs = []adminVerb{
	{
		use:   "set TENANT --issuer URL --audience AUD [flags]",
		short: "Trust an issuer for the tenant's accounts (replaces the tenant's OAuth settings)",
		args:  cobra.ExactArgs(1),
		flags: func(f *pflag.FlagSet) {
			f.String("issuer", "", `the issuer identifier tokens carry in "iss" (an https URL)`)
			f.String("audience", "", `the audience tokens must name in "aud" (e.g. the client id)`)
			f.String("account-claim", "email", "the claim whose value is the account's address")
			f.StringSlice("algorithms", nil, "accepted JWS algorithms (default RS256,ES256,EdDSA)")
			f.String("jwks-uri", "", "the issuer's JWKS (https); default: from its discovery document")
		},
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			s := &metadatapb.OAuthSettings{}
			s.Issuer, _ = f.GetString("issuer")
			s.Audience, _ = f.GetString("audience")
			s.AccountClaim, _ = f.GetString("account-claim")
			s.Algorithms, _ = f.GetStringSlice("algorithms")
			s.JwksUri, _ = f.GetString("jwks-uri")
			got, err := c.SetOAuthSettings(ctx, &metadatapb.SetOAuthSettingsRequest{RequestId: embedded.NewRequestID(), Tenant: args[0], Settings: s})
			if err != nil {
				return fmt.Errorf("set OAuth settings of %s: %w", args[0], err)
			}
			return printOAuthSettings(cmd, got)
		},
	},
	tenantOAuthVerb("show TENANT", "Show the tenant's OAuth settings", "OAuth settings of",
		func(ctx context.Context, c metadatapb.MetadataClient, tenant string) (*metadatapb.TenantOAuthSettings, error) {
			return c.GetOAuthSettings(ctx, &metadatapb.GetOAuthSettingsRequest{Tenant: tenant})
		}),
	tenantOAuthVerb("clear TENANT", "Stop accepting OAuth tokens for the tenant's accounts", "clear OAuth settings of",
		func(ctx context.Context, c metadatapb.MetadataClient, tenant string) (*metadatapb.TenantOAuthSettings, error) {
			return c.SetOAuthSettings(ctx, &metadatapb.SetOAuthSettingsRequest{RequestId: embedded.NewRequestID(), Tenant: tenant})
		}),
}

// tenantOAuthVerb is a verb of one TENANT argument that makes call and prints the
// settings it answers.
func tenantOAuthVerb(use, short, what string, call func(ctx context.Context, c metadatapb.MetadataClient, tenant string) (*metadatapb.TenantOAuthSettings, error)) adminVerb {
	return adminVerb{
		use:   use,
		short: short,
		args:  cobra.ExactArgs(1),
		run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
			got, err := call(ctx, c, args[0])
			if err != nil {
				return fmt.Errorf("%s %s: %w", what, args[0], err)
			}
			return printOAuthSettings(cmd, got)
		},
	}
}

func printOAuthSettings(cmd *cobra.Command, t *metadatapb.TenantOAuthSettings) error {
	s := t.GetSettings()
	if s == nil {
		fmt.Fprintf(cmd.OutOrStdout(), "tenant %s has no OAuth issuer\n", t.GetTenant())
		return nil
	}
	algorithms, jwks := strings.Join(s.GetAlgorithms(), ","), s.GetJwksUri()
	if algorithms == "" {
		algorithms = "RS256,ES256,EdDSA (default)"
	}
	if jwks == "" {
		jwks = "(from discovery)"
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "issuer\t%s\n", s.GetIssuer())
	fmt.Fprintf(w, "audience\t%s\n", s.GetAudience())
	fmt.Fprintf(w, "account-claim\t%s\n", s.GetAccountClaim())
	fmt.Fprintf(w, "algorithms\t%s\n", algorithms)
	fmt.Fprintf(w, "jwks-uri\t%s\n", jwks)
	return w.Flush()
}

// addOAuthFlags registers the OAuth flags of `strata serve` and `strata frontend`.
func addOAuthFlags(f *pflag.FlagSet) {
	f.String("oauth-ca-file", "", "PEM certificates trusted, beside the system roots, for the HTTPS of the tenants' OAuth issuers (discovery and JWKS)")
}

// oauthRootCAsFromFlags reads --oauth-ca-file: nil (the system roots) without it.
func oauthRootCAsFromFlags(f *pflag.FlagSet) (*x509.CertPool, error) {
	return rootCAsFromFlag(f, "oauth-ca-file")
}

// rootCAsFromFlag reads the PEM file the flag name gives into a pool with the system roots:
// nil (the system roots) without it.
func rootCAsFromFlag(f *pflag.FlagSet, name string) (*x509.CertPool, error) {
	path, _ := f.GetString(name)
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", name, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--%s %s: no PEM certificate", name, path)
	}
	return pool, nil
}
