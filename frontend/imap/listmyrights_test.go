package imap_test

import (
	"slices"
	"testing"
)

// TestListMyRights: LIST ... RETURN (MYRIGHTS) (RFC 8440) follows each listed mailbox with
// the MYRIGHTS response MYRIGHTS would give (RFC 4314 3.5), none for placeholders.
func TestListMyRights(t *testing.T) {
	srv := startTenants(t)
	adminCreateMailbox(t, srv, alice, "Projects")
	adminSetACL(t, srv, alice, "Projects", bob, "lr")
	rc := loginRawAs(t, srv, bob)
	if got := rc.ok("CAPABILITY"); !contains(got, " LIST-MYRIGHTS ") {
		t.Errorf("CAPABILITY lacks LIST-MYRIGHTS: %q", got)
	}
	got := rc.ok(`LIST "" "*" RETURN (MYRIGHTS)`)
	for _, want := range []string{
		`* MYRIGHTS INBOX lrswipkxteacd`,
		`* MYRIGHTS "Other Users/alice@example.com/Projects" lr`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("LIST RETURN (MYRIGHTS) lacks %q: %q", want, got)
		}
	}
	// The \Noselect levels of the other users' namespace get no MYRIGHTS.
	if contains(got, `* MYRIGHTS "Other Users"`) || contains(got, `* MYRIGHTS "Other Users/alice@example.com" `) {
		t.Errorf("MYRIGHTS for a placeholder: %q", got)
	}
	// With STATUS too: LIST, MYRIGHTS, STATUS in that order.
	got = rc.ok(`LIST "" INBOX RETURN (MYRIGHTS STATUS (MESSAGES))`)
	if len(got) != 3 || got[1] != `* MYRIGHTS INBOX lrswipkxteacd` || got[2] != `* STATUS INBOX (MESSAGES 0)` {
		t.Errorf("LIST RETURN (MYRIGHTS STATUS): %q", got)
	}
}
