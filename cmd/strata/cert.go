package main

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/internal/clustertls"
)

// defaultCertDir is where `strata cert` keeps the CA and writes certificates.
const defaultCertDir = "strata-certs"

func newCertCommand() *cobra.Command {
	cmd := verbGroup("cert", "Make the private CA and the certificates of cluster mTLS",
		`cert makes a private certificate authority for the traffic inside a cluster (metadata
and cluster admin gRPC, Raft, frontends and admin commands calling metadata nodes) and the
certificates of its members, for a test or small cluster; a larger one may use any CA that
issues the same identities. Every certificate carries exactly one URI SAN, its identity:
strata://node/<name>, strata://frontend/<name>, strata://admin/cluster or
strata://admin/tenant/<tenant>. Keys are written readable by their owner only.`, certVerbs)
	cmd.PersistentFlags().String("dir", defaultCertDir, "directory of the CA (ca.pem, ca-key.pem) and of the files written")
	cmd.PersistentFlags().String("key-type", string(clustertls.KeyECDSAP256), "key algorithm: ecdsa-p256 or ed25519")
	return cmd
}

// certVerbs are the `strata cert` subcommands; they work on local files only.
var certVerbs = []adminVerb{
	{
		use:   "init [--dir DIR] [--name NAME]",
		short: "Make a new private CA in --dir (ca.pem, and ca-key.pem for the CA's host only)",
		args:  cobra.NoArgs,
		flags: func(f *pflag.FlagSet) {
			f.String("name", "Strata cluster CA", "the CA's common name")
			f.Duration("valid", clustertls.DefaultCAValidity, "how long the CA is valid")
		},
		local: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			dir, _ := f.GetString("dir")
			name, _ := f.GetString("name")
			keyType, _ := f.GetString("key-type")
			valid, _ := f.GetDuration("valid")
			ca, err := clustertls.InitCA(dir, name, clustertls.KeyType(keyType), valid)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created CA %q in %s (valid until %s)\n", name, dir, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
			return nil
		},
	},
	{
		use:   "issue --role node|frontend|admin|tenant-admin --name NAME [--tenant T] [--dns NAME]... [--ip IP]...",
		short: "Issue a key and a certificate signed by the CA in --dir",
		long: `issue writes <out>.pem and <out>-key.pem (default out: <dir>/<role>-<name>). Node and
frontend certificates serve and dial (serverAuth and clientAuth) and carry the --dns and --ip
names; admin and tenant-admin certificates only dial. --name is the node ID or frontend name
in its identity; for administrators it names the person or tool in the subject.`,
		args: cobra.NoArgs,
		flags: func(f *pflag.FlagSet) {
			f.String("role", "", "node, frontend, admin or tenant-admin (required)")
			f.String("name", "", "node ID, frontend name, or administrator name (required)")
			f.String("tenant", "", "the tenant of a tenant-admin certificate")
			f.StringSlice("dns", nil, "DNS names of a node or frontend")
			f.IPSlice("ip", nil, "IP addresses of a node or frontend")
			f.String("out", "", "path prefix of the files written (default <dir>/<role>-<name>)")
			f.Duration("valid", clustertls.DefaultCertValidity, "how long the certificate is valid")
		},
		local: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			dir, _ := f.GetString("dir")
			keyType, _ := f.GetString("key-type")
			role, _ := f.GetString("role")
			name, _ := f.GetString("name")
			tenant, _ := f.GetString("tenant")
			dns, _ := f.GetStringSlice("dns")
			ips, _ := f.GetIPSlice("ip")
			out, _ := f.GetString("out")
			valid, _ := f.GetDuration("valid")
			ca, err := clustertls.LoadCA(dir)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(dir, role+"-"+name)
			}
			req := clustertls.Request{
				Role: clustertls.Role(role), Name: name, Tenant: tenant, DNS: dns, IPs: ips,
				KeyType: clustertls.KeyType(keyType), NotAfter: time.Now().Add(valid),
			}
			if err := ca.IssueFiles(req, out+".pem", out+"-key.pem"); err != nil {
				return fmt.Errorf("issue %s certificate for %q: %w", role, name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s certificate for %s: %s.pem, %s-key.pem\n", role, name, out, out)
			return nil
		},
	},
	{
		use:   "revoke CERT.pem... [--crl FILE]",
		short: "Add certificates to the CA's CRL (give it to every process with --cluster-tls-crl, then SIGHUP)",
		args:  cobra.MinimumNArgs(1),
		flags: func(f *pflag.FlagSet) {
			f.String("crl", "", "the CRL file (default <dir>/crl.pem), made when missing")
			f.Duration("valid", 365*24*time.Hour, "nextUpdate of the CRL, after now")
		},
		local: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			dir, _ := f.GetString("dir")
			crl, _ := f.GetString("crl")
			valid, _ := f.GetDuration("valid")
			if crl == "" {
				crl = filepath.Join(dir, "crl.pem")
			}
			ca, err := clustertls.LoadCA(dir)
			if err != nil {
				return err
			}
			var certs []*x509.Certificate
			for _, path := range args {
				c, err := clustertls.ReadCertificate(path)
				if err != nil {
					return err
				}
				certs = append(certs, c)
			}
			if err := ca.Revoke(crl, certs, valid); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %d certificate(s); CRL %s\n", len(certs), crl)
			return nil
		},
	},
}
