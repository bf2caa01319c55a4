package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/frontend/imap"
)

// imapLimitFlag is one bound of imap.Limits that `strata serve` and `strata frontend` take
// as a flag: a count (count, countDef) or a duration (span, spanDef), with the frontend's
// default. Each must be positive: zero and negative values are refused at start (in
// imap.Limits they would silently take the default).
type imapLimitFlag struct {
	name     string
	usage    string
	count    func(*imap.Limits) *int
	countDef int
	span     func(*imap.Limits) *time.Duration
	spanDef  time.Duration
}

// imapLimitFlags are the bounds on SEARCH, SORT and THREAD, one row each. Past each the
// client gets a tagged NO [LIMIT] (RFC 5530 3) for that command only; the session goes on.
var imapLimitFlags = []imapLimitFlag{
	{name: "max-multisearch-mailboxes", countDef: imap.DefaultMaxMultiSearchMailboxes,
		usage: "most mailboxes one ESEARCH (RFC 7377 MULTISEARCH) searches; one naming more is refused NO [LIMIT] before any is read",
		count: func(l *imap.Limits) *int { return &l.MaxMultiSearchMailboxes }},
	{name: "max-multisearch-messages", countDef: imap.DefaultMaxMultiSearchMessages,
		usage: "most messages, over all its mailboxes, one ESEARCH (RFC 7377 MULTISEARCH) searches; more are refused NO [LIMIT] up front",
		count: func(l *imap.Limits) *int { return &l.MaxMultiSearchMessages }},
	{name: "search-timeout", spanDef: imap.DefaultSearchTimeout,
		usage: `longest one SEARCH may scan (an ESEARCH over several mailboxes: all of them together); past it the command ends "NO [LIMIT] SEARCH took longer than this server allows; narrow it" (ESEARCH: "... search fewer mailboxes")`,
		span:  func(l *imap.Limits) *time.Duration { return &l.SearchTimeout }},
	{name: "max-body-scan", countDef: imap.DefaultMaxBodyScan,
		usage: `most message bodies one SEARCH BODY or TEXT reads after the search index narrowed it; a larger scan is refused up front, "NO [LIMIT] SEARCH would read N message bodies, more than this server allows (M); use a longer word"`,
		count: func(l *imap.Limits) *int { return &l.MaxBodyScan }},
	{name: "max-sort-messages", countDef: imap.DefaultMaxSortMessages,
		usage: `most messages one SORT or THREAD orders; one whose search matches more is refused "NO [LIMIT] More than N messages to order" before any sort key is read`,
		count: func(l *imap.Limits) *int { return &l.MaxSortMessages }},
	{name: "sort-timeout", spanDef: imap.DefaultSortTimeout,
		usage: `longest one SORT or THREAD may read sort keys and order; past it the command ends "NO [LIMIT] Ordering took longer than D"`,
		span:  func(l *imap.Limits) *time.Duration { return &l.SortTimeout }},
}

// addIMAPLimitFlags registers imapLimitFlags.
func addIMAPLimitFlags(f *pflag.FlagSet) {
	for _, row := range imapLimitFlags {
		if row.count != nil {
			f.Int(row.name, row.countDef, row.usage)
		} else {
			f.Duration(row.name, row.spanDef, row.usage)
		}
	}
}

// imapLimitsFromFlags returns l with the fields of imapLimitFlags set from f, or an error
// naming the first flag that is not positive.
func imapLimitsFromFlags(f *pflag.FlagSet, l imap.Limits) (imap.Limits, error) {
	for _, row := range imapLimitFlags {
		if row.count != nil {
			n, _ := f.GetInt(row.name)
			if n <= 0 {
				return l, fmt.Errorf("--%s must be a positive number of messages or mailboxes, not %d", row.name, n)
			}
			*row.count(&l) = n
			continue
		}
		d, _ := f.GetDuration(row.name)
		if d <= 0 {
			return l, fmt.Errorf("--%s must be a positive duration such as 30s or 2m, not %v", row.name, d)
		}
		*row.span(&l) = d
	}
	return l, nil
}
