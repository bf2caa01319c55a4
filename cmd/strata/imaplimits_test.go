package main

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/frontend/imap"
)

// TestIMAPLimitFlags: each row of imapLimitFlags sets its field of imap.Limits, and an
// unset flag keeps the frontend's default.
func TestIMAPLimitFlags(t *testing.T) {
	f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addIMAPLimitFlags(f)
	if err := f.Parse([]string{"--max-multisearch-mailboxes=7"}); err != nil {
		t.Fatal(err)
	}
	l := imapLimitsFromFlags(f, imap.Limits{MaxConnections: 3})
	if l.MaxMultiSearchMailboxes != 7 || l.MaxMultiSearchMessages != imap.DefaultMaxMultiSearchMessages || l.MaxConnections != 3 {
		t.Fatalf("limits from the flags: %+v", l)
	}
}
