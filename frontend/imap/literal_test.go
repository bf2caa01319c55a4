package imap_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestNonSyncLiterals: Strata announces LITERAL+, and not LITERAL- beside it (RFC 7888 5:
// never both), so a non-synchronizing literal may exceed LITERAL-'s 4096 octets; only the
// server's own bounds apply (maxLiteralSize outside APPEND, APPENDLIMIT in APPEND).
func TestNonSyncLiterals(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	caps := rc.ok("CAPABILITY")
	if !contains(caps, " LITERAL+") || contains(caps, "LITERAL-") {
		t.Fatalf("CAPABILITY %q: want LITERAL+ without LITERAL-", caps)
	}

	body := strings.Repeat("0123456789abcdef", 1000)
	msg := testMessage("above 4096", body)
	rc.ok(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg))
	rc.ok("SELECT INBOX")
	if untagged := rc.ok("FETCH 1 RFC822.SIZE"); !contains(untagged, fmt.Sprintf("RFC822.SIZE %d", len(msg))) {
		t.Fatalf("FETCH RFC822.SIZE after a %d-octet LITERAL+ APPEND: %q", len(msg), untagged)
	}
	// In a command other than APPEND: a 5000-octet search string, found, and not found.
	needle := body[:5000]
	if untagged := rc.ok(fmt.Sprintf("SEARCH TEXT {%d+}\r\n%s", len(needle), needle)); !contains(untagged, "SEARCH 1") {
		t.Fatalf("SEARCH with a 5000-octet LITERAL+ string: %q", untagged)
	}
	if untagged := rc.ok(fmt.Sprintf("SEARCH TEXT {5000+}\r\n%s", strings.Repeat("z", 5000))); !contains(untagged, "* SEARCH") || contains(untagged, "SEARCH 1") {
		t.Fatalf("SEARCH for an absent 5000-octet string: %q", untagged)
	}
	// Beyond the server's bound outside APPEND the command is refused and its literal,
	// sent anyway, skipped.
	rc.expect(fmt.Sprintf("SEARCH TEXT {%d+}\r\n%s", 70<<10, strings.Repeat("z", 70<<10)), "BAD [LIMIT]")
	rc.ok("NOOP")
}
