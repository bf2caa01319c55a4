package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/frontend/outbound"
)

// relayPasswordEnv holds the relay password when no --smtp-relay-password-file is given;
// the password is never a flag, so it shows in no process list.
const relayPasswordEnv = "STRATA_SMTP_RELAY_PASSWORD"

// addOutboundFlags defines the flags of the queue for the mail delivery generates (Sieve
// redirect, vacation, reject); spoolHelp says where --outbound-spool defaults to.
func addOutboundFlags(f *pflag.FlagSet, spoolHelp string) {
	f.String("smtp-relay", "", "HOST:PORT of the submission server that sends redirects, vacation replies and reject notices (empty: none are sent)")
	f.String("smtp-relay-tls", string(outbound.TLSMay), "TLS to the relay: none, may (STARTTLS when offered), starttls (required) or tls (implicit, port 465); certificates are verified")
	f.String("smtp-relay-ca", "", "PEM file of the certificate authorities that sign the relay's certificate (default: the system roots)")
	f.String("smtp-relay-user", "", "user name for AUTH PLAIN at the relay (password from --smtp-relay-password-file or "+relayPasswordEnv+")")
	f.String("smtp-relay-password-file", "", "file holding the relay password (one line)")
	f.String("outbound-spool", "", "directory of the outbound queue, kept across restarts (default: "+spoolHelp+")")
}

// outboundConfigFromFlags returns the queue settings of addOutboundFlags; ok is false
// when no relay is configured. The spool defaults to defaultSpool.
func outboundConfigFromFlags(f *pflag.FlagSet, defaultSpool string, logger *slog.Logger) (cfg outbound.Config, ok bool, err error) {
	cfg.Relay, _ = f.GetString("smtp-relay")
	if cfg.Relay == "" {
		return cfg, false, nil
	}
	mode, _ := f.GetString("smtp-relay-tls")
	if cfg.TLS, err = outbound.ParseTLSMode(mode); err != nil {
		return cfg, false, fmt.Errorf("--smtp-relay-tls: %w", err)
	}
	if caFile, _ := f.GetString("smtp-relay-ca"); caFile != "" {
		if cfg.RootCAs, err = outbound.LoadCAFile(caFile); err != nil {
			return cfg, false, err
		}
	}
	cfg.Username, _ = f.GetString("smtp-relay-user")
	passwordFile, _ := f.GetString("smtp-relay-password-file")
	switch {
	case passwordFile != "":
		raw, err := os.ReadFile(passwordFile)
		if err != nil {
			return cfg, false, fmt.Errorf("--smtp-relay-password-file: %w", err)
		}
		cfg.Password = strings.TrimRight(string(raw), "\r\n")
	default:
		cfg.Password = os.Getenv(relayPasswordEnv)
	}
	if cfg.Username != "" && cfg.Password == "" {
		return cfg, false, fmt.Errorf("--smtp-relay-user needs a password: --smtp-relay-password-file or %s", relayPasswordEnv)
	}
	if cfg.Username == "" && cfg.Password != "" {
		return cfg, false, fmt.Errorf("a relay password is given but no --smtp-relay-user")
	}
	cfg.SpoolDir, _ = f.GetString("outbound-spool")
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = defaultSpool
	}
	cfg.Logger = logger
	return cfg, true, nil
}

// startOutbound starts the outbound queue the flags configure, nil when --smtp-relay is
// empty; the caller closes it.
func startOutbound(f *pflag.FlagSet, defaultSpool string, logger *slog.Logger) (*outbound.Queue, error) {
	cfg, ok, err := outboundConfigFromFlags(f, defaultSpool, logger)
	if err != nil || !ok {
		return nil, err
	}
	q, err := outbound.New(cfg)
	if err != nil {
		return nil, err
	}
	logger.Info("outbound mail through relay", "relay", cfg.Relay, "tls", cfg.TLS, "spool", cfg.SpoolDir)
	return q, nil
}
