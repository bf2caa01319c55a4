package main

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/metadata"
)

// addAuthGuardFlags registers the brute-force guard flags of `strata metadata` and `strata
// serve` (metadata/authguard.go, docs/security.md).
func addAuthGuardFlags(f *pflag.FlagSet) {
	d := metadata.DefaultAuthGuardConfig
	f.Bool("auth-guard-off", false, "turn the brute-force guard off: every login attempt is checked at once")
	f.Int("auth-free-failures", d.FreeFailures, "failed logins of an (account, address) pair, an address or an account that cost no delay")
	f.Duration("auth-delay", d.BaseDelay, "first delay after the free failures; each further failure doubles it")
	f.Duration("auth-max-delay", d.MaxDelay, "largest delay of an (account, address) pair or an address")
	f.Duration("auth-account-max-delay", d.AccountMaxDelay, "largest delay of an account from untrusted addresses (an account is throttled, never locked)")
	f.Int("auth-pair-lockout-failures", d.PairLockoutFailures, "failures of one account from one address that lock that pair out")
	f.Duration("auth-pair-lockout", d.PairLockout, "how long an (account, address) pair stays locked out")
	f.Int("auth-ip-lockout-failures", d.IPLockoutFailures, "failures from one address (any accounts) that lock it out, except for accounts it logged in to")
	f.Duration("auth-ip-lockout", d.IPLockout, "how long an address stays locked out")
	f.Duration("auth-failure-window", d.FailureWindow, "how long a counter remembers failures after its last one")
	f.Duration("auth-trust-window", d.TrustWindow, "how long a successful login trusts its (account, address) pair past the address and account limits")
}

// authGuardFromFlags reads the flags of addAuthGuardFlags.
func authGuardFromFlags(f *pflag.FlagSet) (metadata.AuthGuardConfig, error) {
	var c metadata.AuthGuardConfig
	c.Disabled, _ = f.GetBool("auth-guard-off")
	c.FreeFailures, _ = f.GetInt("auth-free-failures")
	c.BaseDelay, _ = f.GetDuration("auth-delay")
	c.MaxDelay, _ = f.GetDuration("auth-max-delay")
	c.AccountMaxDelay, _ = f.GetDuration("auth-account-max-delay")
	c.PairLockoutFailures, _ = f.GetInt("auth-pair-lockout-failures")
	c.PairLockout, _ = f.GetDuration("auth-pair-lockout")
	c.IPLockoutFailures, _ = f.GetInt("auth-ip-lockout-failures")
	c.IPLockout, _ = f.GetDuration("auth-ip-lockout")
	c.FailureWindow, _ = f.GetDuration("auth-failure-window")
	c.TrustWindow, _ = f.GetDuration("auth-trust-window")
	if c.BaseDelay <= 0 || c.MaxDelay < c.BaseDelay || c.AccountMaxDelay <= 0 || c.PairLockoutFailures <= 0 ||
		c.PairLockout <= 0 || c.IPLockoutFailures <= 0 || c.IPLockout <= 0 || c.FailureWindow <= 0 || c.TrustWindow <= 0 {
		return c, errors.New("the --auth-* guard settings must be positive and --auth-max-delay at least --auth-delay (--auth-guard-off turns the guard off)")
	}
	if c.FreeFailures == 0 {
		c.FreeFailures = -1 // AuthGuardConfig: negative is none, zero the default
	}
	return c, nil
}

// addFrontendSecurityFlags registers the PROXY protocol, login and TLS flags of `strata
// frontend` and `strata serve`.
func addFrontendSecurityFlags(f *pflag.FlagSet) {
	f.String("proxy-trusted", "", "comma-separated networks (CIDR) or addresses of load balancers that send a PROXY protocol v1/v2 header on the IMAP, IMAPS, LMTP and ManageSieve listeners; connections from them must send one, others are taken as they come")
	f.Duration("proxy-header-timeout", connserver.DefaultProxyHeaderTimeout, "how long a trusted proxy has to send its PROXY header")
	f.Int("max-connections-per-account", 100, "most authenticated IMAP sessions of one account on this frontend; more logins are told NO [LIMIT]")
	f.Duration("auth-max-wait", auth.DefaultMaxWait, "longest brute-force delay a login waits out before its password is checked; a longer one is refused")
	f.Duration("auth-locked-reply-delay", auth.DefaultLockedReplyDelay, "how long the refusal of a locked-out login is held")
	f.Bool("tls13-only", false, "accept TLS 1.3 only on IMAPS, STARTTLS and ManageSieve (default: TLS 1.2 with ECDHE and AEAD ciphers, or 1.3)")
	f.String("tls-ocsp", "", "DER OCSP response for --tls-cert to staple in TLS handshakes, read again on SIGHUP (fetch it with openssl ocsp or a cron job)")
}

// frontendSecurity is what addFrontendSecurityFlags configures.
type frontendSecurity struct {
	proxy              *connserver.Proxy
	maxConnsPerAccount int
	logins             *auth.Logins
	tlsPolicy          imap.TLSPolicy
}

func frontendSecurityFromFlags(f *pflag.FlagSet) (frontendSecurity, error) {
	var s frontendSecurity
	trusted, _ := f.GetString("proxy-trusted")
	nets, err := connserver.ParseTrustedNetworks(trusted)
	if err != nil {
		return s, err
	}
	if len(nets) > 0 {
		timeout, _ := f.GetDuration("proxy-header-timeout")
		s.proxy = &connserver.Proxy{Trusted: nets, HeaderTimeout: timeout}
	}
	s.maxConnsPerAccount, _ = f.GetInt("max-connections-per-account")
	s.logins = auth.NewLogins()
	s.logins.MaxWait, _ = f.GetDuration("auth-max-wait")
	s.logins.LockedReplyDelay, _ = f.GetDuration("auth-locked-reply-delay")
	s.tlsPolicy.TLS13Only, _ = f.GetBool("tls13-only")
	s.tlsPolicy.OCSPFile, _ = f.GetString("tls-ocsp")
	return s, nil
}
