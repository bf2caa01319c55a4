package main

import (
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/frontend/imap"
)

// imapLimitFlags are the bounds of imap.Limits that `strata serve` and `strata frontend`
// take as flags, one row each: the flag, its default (the frontend's), its usage and the
// field it sets. A value of 0 or less takes the default (imap.Limits).
var imapLimitFlags = []struct {
	name  string
	def   int
	usage string
	field func(*imap.Limits) *int
}{
	{"max-multisearch-mailboxes", imap.DefaultMaxMultiSearchMailboxes,
		"most mailboxes one ESEARCH (RFC 7377 MULTISEARCH) searches; one naming more is refused NO [LIMIT] before any is read",
		func(l *imap.Limits) *int { return &l.MaxMultiSearchMailboxes }},
	{"max-multisearch-messages", imap.DefaultMaxMultiSearchMessages,
		"most messages, over all its mailboxes, one ESEARCH (RFC 7377 MULTISEARCH) searches; more are refused NO [LIMIT] up front",
		func(l *imap.Limits) *int { return &l.MaxMultiSearchMessages }},
}

// addIMAPLimitFlags registers imapLimitFlags.
func addIMAPLimitFlags(f *pflag.FlagSet) {
	for _, row := range imapLimitFlags {
		f.Int(row.name, row.def, row.usage)
	}
}

// imapLimitsFromFlags returns l with the fields of imapLimitFlags set from f.
func imapLimitsFromFlags(f *pflag.FlagSet, l imap.Limits) imap.Limits {
	for _, row := range imapLimitFlags {
		*row.field(&l), _ = f.GetInt(row.name)
	}
	return l
}
