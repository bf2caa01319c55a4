package main

import (
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/spam"
)

// addRspamdFlags registers the rspamd flags of `strata serve` and `strata frontend`:
// scanning at delivery and learning from what users file as spam (package spam).
func addRspamdFlags(f *pflag.FlagSet) {
	f.String("rspamd-url", "", "rspamd normal worker, e.g. http://127.0.0.1:11333: scan delivered mail with /checkv2 (empty: off)")
	f.Duration("rspamd-timeout", spam.DefaultTimeout, "time limit of each rspamd check and learn request")
	f.Bool("rspamd-fail-closed", false, "refuse delivery temporarily when rspamd gives no verdict (default: deliver unscanned)")
	f.String("rspamd-controller-url", "", "rspamd controller worker, e.g. http://127.0.0.1:11334: learn spam and ham from IMAP moves into and out of Junk and $Junk/$NotJunk (empty: off)")
	f.String("rspamd-password-file", "", "file whose first line is the rspamd controller's enable password")
}

// rspamdConfigFromFlags returns the configuration the rspamd flags give.
func rspamdConfigFromFlags(f *pflag.FlagSet) spam.Config {
	var c spam.Config
	c.URL, _ = f.GetString("rspamd-url")
	c.Timeout, _ = f.GetDuration("rspamd-timeout")
	c.FailClosed, _ = f.GetBool("rspamd-fail-closed")
	c.ControllerURL, _ = f.GetString("rspamd-controller-url")
	c.PasswordFile, _ = f.GetString("rspamd-password-file")
	return c
}
