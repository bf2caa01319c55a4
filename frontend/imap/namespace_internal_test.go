package imap

import (
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestLocate checks the resolver of session mailbox names (RFC 2342 namespaces) and its
// inverse on every kind of name, for bob of tenant example.
func TestLocate(t *testing.T) {
	c := &conn{account: &metadatapb.Account{Email: "bob@example.com", Tenant: "example"}}
	for _, tc := range []struct {
		name string
		want mailboxRef
	}{
		{"INBOX", mailboxRef{owner: "bob@example.com", name: "INBOX"}},
		{"Work/2026", mailboxRef{owner: "bob@example.com", name: "Work/2026"}},
		{"shared/x", mailboxRef{owner: "bob@example.com", name: "shared/x"}}, // prefixes are case-sensitive
		{"Other Users/alice@example.com/Projects", mailboxRef{owner: "alice@example.com", name: "Projects"}},
		{"Other Users/Alice@Example.COM/inbox/x", mailboxRef{owner: "alice@example.com", name: "INBOX/x"}},
		{"Other Users/alice@example.com/a/b/c", mailboxRef{owner: "alice@example.com", name: "a/b/c"}},
		{"Shared/Support", mailboxRef{owner: "tenant:example", name: "Support"}},
		{"Shared/Support/Tier 2", mailboxRef{owner: "tenant:example", name: "Support/Tier 2"}},
		// Levels of the namespaces, and names no account can own, are no mailbox.
		{"Other Users", mailboxRef{node: true}},
		{"Other Users/alice@example.com", mailboxRef{owner: "alice@example.com", node: true}},
		{"Other Users/alice@example.com/", mailboxRef{owner: "alice@example.com", node: true}},
		{"Other Users/bob@example.com/INBOX", mailboxRef{owner: "bob@example.com", name: "INBOX", node: true}},
		{"Other Users/tenant:other/Support", mailboxRef{owner: "tenant:other", name: "Support", node: true}},
		{"Other Users/nobody/x", mailboxRef{owner: "nobody", name: "x", node: true}},
		{"Other Users/@example.com/x", mailboxRef{owner: "@example.com", name: "x", node: true}},
		{"Shared", mailboxRef{owner: "tenant:example", node: true}},
		{"Shared/", mailboxRef{owner: "tenant:example", node: true}},
	} {
		tc.want.full = tc.name
		if got := c.locate(tc.name); got != tc.want {
			t.Errorf("locate(%q) = %+v, want %+v", tc.name, got, tc.want)
		}
		if tc.want.node || tc.name == "Other Users/Alice@Example.COM/inbox/x" {
			continue
		}
		if got := c.external(tc.want.owner, tc.want.name); got != tc.name {
			t.Errorf("external(%q, %q) = %q, want %q", tc.want.owner, tc.want.name, got, tc.name)
		}
	}
	for name, want := range map[string]bool{
		"Other Users": true, "Shared": true, "Other Users/alice@example.com": true,
		"Other Users/alice@example.com/x": false, "Shared/x": false, "INBOX": false, "Other Users/": false,
	} {
		if got := isNamespaceNode(name); got != want {
			t.Errorf("isNamespaceNode(%q) = %v, want %v", name, got, want)
		}
	}
}
