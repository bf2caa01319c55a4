package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/frontend/outbound"
)

// outboundFlags runs the root command with args on `serve` or `frontend` and returns the
// outbound settings its flags (and environment, and config file) give.
func outboundFlags(t *testing.T, sub string, args ...string) (outbound.Config, bool, error) {
	t.Helper()
	var (
		cfg     outbound.Config
		ok      bool
		flagErr error
	)
	root := newRootCommand()
	cmd, _, err := root.Find([]string{sub})
	if err != nil {
		t.Fatal(err)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, ok, flagErr = outboundConfigFromFlags(cmd.Flags(), "/default/spool", slog.New(slog.DiscardHandler))
		return nil
	}
	root.SetArgs(append([]string{sub}, args...))
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	return cfg, ok, flagErr
}

func TestOutboundFlags(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(relayPasswordEnv, "")

	for _, sub := range []string{"serve", "frontend"} {
		if _, ok, err := outboundFlags(t, sub); ok || err != nil {
			t.Errorf("%s without --smtp-relay: ok=%v err=%v, want no queue", sub, ok, err)
		}
		cfg, ok, err := outboundFlags(t, sub, "--smtp-relay", "mail.example.com:587", "--smtp-relay-tls", "starttls",
			"--smtp-relay-user", "strata", "--smtp-relay-password-file", pwFile, "--outbound-spool", dir)
		if err != nil || !ok {
			t.Fatalf("%s: ok=%v err=%v", sub, ok, err)
		}
		if cfg.Relay != "mail.example.com:587" || cfg.TLS != outbound.TLSStartTLS || cfg.Username != "strata" || cfg.Password != "from-file" || cfg.SpoolDir != dir {
			t.Errorf("%s: %+v", sub, cfg)
		}
	}

	cfg, _, err := outboundFlags(t, "serve", "--smtp-relay", "127.0.0.1:25")
	if err != nil || cfg.TLS != outbound.TLSMay || cfg.SpoolDir != "/default/spool" || cfg.Username != "" {
		t.Errorf("defaults: %+v %v", cfg, err)
	}

	t.Setenv(relayPasswordEnv, "from-env")
	cfg, _, err = outboundFlags(t, "serve", "--smtp-relay", "127.0.0.1:25", "--smtp-relay-user", "strata")
	if err != nil || cfg.Password != "from-env" {
		t.Errorf("password from %s: %q %v", relayPasswordEnv, cfg.Password, err)
	}
	t.Setenv(relayPasswordEnv, "")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--smtp-relay-tls", "sometimes"}, "--smtp-relay-tls"},
		{[]string{"--smtp-relay-user", "strata"}, "needs a password"},
		{[]string{"--smtp-relay-password-file", pwFile}, "no --smtp-relay-user"},
		{[]string{"--smtp-relay-user", "strata", "--smtp-relay-password-file", filepath.Join(dir, "missing")}, "--smtp-relay-password-file"},
		{[]string{"--smtp-relay-ca", pwFile}, "no PEM certificate"},
	} {
		_, _, err := outboundFlags(t, "serve", append([]string{"--smtp-relay", "127.0.0.1:25"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error about %s", tc.args, err, tc.want)
		}
	}
}

// The password is never a flag: it must not be settable where a process list shows it.
func TestOutboundPasswordIsNoFlag(t *testing.T) {
	for _, sub := range []string{"serve", "frontend"} {
		cmd, _, err := newRootCommand().Find([]string{sub})
		if err != nil {
			t.Fatal(err)
		}
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Name, "password") && !strings.HasSuffix(f.Name, "-file") {
				t.Errorf("%s has flag --%s", sub, f.Name)
			}
		})
	}
}
