package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/identity"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Authorization of admin calls (docs/admin-authorization.md): the audit log of servers,
// admin tokens for tools, and the tenant-admin flag of accounts.

func addAuditLogFlag(f *pflag.FlagSet) {
	f.String("audit-log", "", "append the audit log of admin calls to this file, as JSON lines (default: the process log, with log=audit)")
}

// openAuditLog returns the audit logger --audit-log names, or logger with log=audit, and
// what closes it.
func openAuditLog(f *pflag.FlagSet, logger *slog.Logger) (*slog.Logger, func(), error) {
	path, _ := f.GetString("audit-log")
	if path == "" {
		return logger.With("log", "audit"), func() {}, nil
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open audit log: %w", err)
	}
	return slog.New(slog.NewJSONHandler(file, nil)), func() { _ = file.Close() }, nil
}

// tokenVerifier reads the --admin-token-keys files; nil when none are given.
func tokenVerifier(f *pflag.FlagSet) (*identity.Verifier, error) {
	paths, _ := f.GetStringSlice("admin-token-keys")
	if len(paths) == 0 {
		return nil, nil
	}
	keys, err := identity.LoadVerifyKeys(paths...)
	if err != nil {
		return nil, err
	}
	return identity.NewVerifier(keys...), nil
}

// adminTokenOption is the dial option that sends the token of --token-file with every
// admin call, or nil without one. The token is a bearer secret: gRPC sends it over TLS
// only, so a plaintext connection fails before any call.
func adminTokenOption(cmd *cobra.Command) (grpc.DialOption, error) {
	path, _ := cmd.Flags().GetString("token-file")
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read admin token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return nil, fmt.Errorf("admin token file %s is empty", path)
	}
	return grpc.WithPerRPCCredentials(identity.TokenCredentials{Token: token}), nil
}

func newAdminCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Administrator credentials: admin tokens for tools without a client certificate"}
	token := &cobra.Command{
		Use:   "token",
		Short: "Make the token key and issue admin tokens",
		Long: `Admin tokens let a tool act as the cluster administrator or as one tenant's
administrator without a client certificate. 'keygen' makes an Ed25519 key pair: keep the
private key with whoever issues tokens, and give the public key to every metadata node
(--admin-token-keys). 'issue' prints a token; a tool sends it with --token-file, over TLS.`,
	}
	keygen := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Write a new token signing key to FILE (mode 0600) and its public key to FILE.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return errors.New("--out is required")
			}
			return writeTokenKey(out, cmd.OutOrStdout())
		},
	}
	keygen.Flags().String("out", "", "the private key file to create")

	issue := &cobra.Command{
		Use:   "issue --key FILE (--tenant NAME | --cluster) [--ttl D]",
		Short: "Print an admin token for a tenant's administrator or the cluster administrator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			keyPath, _ := f.GetString("key")
			tenant, _ := f.GetString("tenant")
			cluster, _ := f.GetBool("cluster")
			ttl, _ := f.GetDuration("ttl")
			if keyPath == "" {
				return errors.New("--key is required")
			}
			var id identity.Identity
			switch {
			case cluster && tenant == "":
				id = identity.Identity{Kind: identity.ClusterAdmin}
			case !cluster && tenant != "":
				id = identity.Identity{Kind: identity.TenantAdmin, Tenant: tenant}
			default:
				return errors.New("give --tenant NAME or --cluster")
			}
			priv, err := identity.LoadSigningKey(keyPath)
			if err != nil {
				return err
			}
			token, claims, err := identity.IssueToken(priv, id, ttl, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), token)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s for %s, valid until %s\n", claims.ID, claims.Subject, time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
			return nil
		},
	}
	issue.Flags().String("key", "", "the token signing key (strata admin token keygen)")
	issue.Flags().String("tenant", "", "the tenant whose administrator the token names")
	issue.Flags().Bool("cluster", false, "a token for the cluster administrator")
	issue.Flags().Duration("ttl", 24*time.Hour, "how long the token is valid (at most 2160h)")

	token.AddCommand(keygen, issue)
	cmd.AddCommand(token)
	return cmd
}

// writeTokenKey creates a signing key at path (never overwriting one) and its public key
// at path.pub.
func writeTokenKey(path string, out io.Writer) error {
	priv, err := identity.GenerateTokenKey()
	if err != nil {
		return err
	}
	privPEM, err := identity.MarshalSigningKey(priv)
	if err != nil {
		return err
	}
	pubPEM, err := identity.MarshalVerifyKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create token key: %w", err)
	}
	if _, err := file.Write(privPEM); err != nil {
		file.Close()
		return fmt.Errorf("write token key: %w", err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("write token key: %w", err)
	}
	if err := os.WriteFile(path+".pub", pubPEM, 0o644); err != nil {
		return fmt.Errorf("write token public key: %w", err)
	}
	fmt.Fprintf(out, "wrote %s and %s (key id %s)\n", path, path+".pub", identity.KeyID(priv.Public().(ed25519.PublicKey)))
	return nil
}

// tenantAdminVerb flags an account as its tenant's administrator in IMAP (SETQUOTA).
var tenantAdminVerb = adminVerb{
	use:   "tenant-admin EMAIL on|off",
	short: "Let an account set the quotas of its tenant's accounts with IMAP SETQUOTA (on), or stop it (off)",
	args:  cobra.ExactArgs(2),
	run: func(ctx context.Context, c metadatapb.MetadataClient, cmd *cobra.Command, args []string) error {
		var on bool
		switch args[1] {
		case "on":
			on = true
		case "off":
		default:
			return fmt.Errorf("tenant-admin %s: say on or off, not %q", args[0], args[1])
		}
		acct, err := c.SetAccountTenantAdmin(ctx, &metadatapb.SetAccountTenantAdminRequest{RequestId: embedded.NewRequestID(), Email: args[0], TenantAdmin: on})
		if err != nil {
			return fmt.Errorf("tenant-admin %s: %w", args[0], err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: tenant admin %s\n", acct.GetEmail(), map[bool]string{true: "on", false: "off"}[acct.GetTenantAdmin()])
		return nil
	},
}
