package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/frontend/imap"
)

// TestIMAPLimitFlags: each row of imapLimitFlags sets its field of imap.Limits, an unset
// flag keeps the frontend's default, and a bound of zero or less is refused by name.
func TestIMAPLimitFlags(t *testing.T) {
	parse := func(args ...string) (imap.Limits, error) {
		f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		addIMAPLimitFlags(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		return imapLimitsFromFlags(f, imap.Limits{MaxConnections: 3})
	}
	l, err := parse("--max-multisearch-mailboxes=7", "--sort-timeout=2s", "--max-sort-messages=9", "--search-timeout=3s", "--max-body-scan=11")
	if err != nil {
		t.Fatal(err)
	}
	want := imap.Limits{MaxConnections: 3, MaxMultiSearchMailboxes: 7, MaxMultiSearchMessages: imap.DefaultMaxMultiSearchMessages,
		SortTimeout: 2 * time.Second, MaxSortMessages: 9, SearchTimeout: 3 * time.Second, MaxBodyScan: 11}
	if l != want {
		t.Fatalf("limits from the flags: %+v, want %+v", l, want)
	}
	l, err = parse()
	if err != nil {
		t.Fatal(err)
	}
	want = imap.Limits{MaxConnections: 3, MaxMultiSearchMailboxes: imap.DefaultMaxMultiSearchMailboxes, MaxMultiSearchMessages: imap.DefaultMaxMultiSearchMessages,
		SortTimeout: imap.DefaultSortTimeout, MaxSortMessages: imap.DefaultMaxSortMessages, SearchTimeout: imap.DefaultSearchTimeout, MaxBodyScan: imap.DefaultMaxBodyScan}
	if l != want {
		t.Fatalf("limits by default: %+v, want %+v", l, want)
	}
	for _, tc := range []struct{ arg, want string }{
		{"--sort-timeout=0s", "--sort-timeout must be a positive duration such as 30s or 2m, not 0s"},
		{"--search-timeout=-1m", "--search-timeout must be a positive duration such as 30s or 2m, not -1m0s"},
		{"--max-sort-messages=0", "--max-sort-messages must be a positive number of messages or mailboxes, not 0"},
		{"--max-body-scan=-5", "--max-body-scan must be a positive number of messages or mailboxes, not -5"},
		{"--max-multisearch-messages=0", "--max-multisearch-messages must be a positive"},
	} {
		if _, err := parse(tc.arg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.arg, err, tc.want)
		}
	}
}
