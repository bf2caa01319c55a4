package main

import (
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestAliasCommands: `strata alias add|del|list` and `strata tenant delivery` against a
// running server; what they set is what ResolveRecipient answers.
func TestAliasCommands(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test,acme.example")
	mustStrata(t, srv, "tenant", "add", "globex", "--domains", "globex.test")
	for _, u := range []string{"alice@acme.test", "bob@acme.test", "mallory@globex.test"} {
		mustStrata(t, srv, "user", "add", u, "--password", "pw")
	}
	if out := mustStrata(t, srv, "alias", "add", "Sales@acme.test", "bob@acme.test", "alice@acme.test"); out != "sales@acme.test -> alice@acme.test, bob@acme.test\n" {
		t.Fatalf("alias add: %q", out)
	}
	mustStrata(t, srv, "alias", "add", "@acme.example", "alice@acme.test")
	out := mustStrata(t, srv, "alias", "list", "--tenant", "acme")
	for _, want := range []string{"@acme.example    acme    alice@acme.test\n", "sales@acme.test  acme    alice@acme.test,bob@acme.test\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("alias list = %q, want a line %q", out, want)
		}
	}
	if out := mustStrata(t, srv, "alias", "del", "sales@acme.test", "alice@acme.test"); out != "sales@acme.test -> bob@acme.test\n" {
		t.Fatalf("alias del of a target: %q", out)
	}
	for _, bad := range [][]string{
		{"alias", "add", "team@acme.test", "mallory@globex.test"}, // another tenant
		{"alias", "add", "team@acme.test"},                        // no target
		{"alias", "add", "bob@acme.test", "alice@acme.test"},      // an account
		{"alias", "del", "nobody@acme.test"},
		{"alias", "list", "--tenant", "acme", "--domain", "acme.test"},
		{"tenant", "delivery", "acme", "--spam-action", "burn"},
		{"tenant", "delivery", "acme", "--dedup-window", "800h"},
		{"tenant", "delivery", "ghost"},
	} {
		if out, err := strata(t, srv, bad...); err == nil {
			t.Errorf("strata %s succeeded: %s", strings.Join(bad, " "), out)
		}
	}

	if out := mustStrata(t, srv, "tenant", "delivery", "acme"); !strings.Contains(out, `subaddress-delimiter    "+"`) || !strings.Contains(out, "dedup-window            24h0m0s") {
		t.Fatalf("tenant delivery: %q", out)
	}
	out = mustStrata(t, srv, "tenant", "delivery", "acme", "--subaddress-delimiter", "-", "--spam-action", "reject", "--spam-reject-score", "15", "--dedup-window", "2h")
	for _, want := range []string{`subaddress-delimiter    "-"`, "spam-action             reject", "spam-reject-score       15", "dedup-window            2h0m0s", "sieve-max-scripts       32"} {
		if !strings.Contains(out, want) {
			t.Fatalf("tenant delivery after changes = %q, want %q", out, want)
		}
	}
	// A second change keeps the first.
	mustStrata(t, srv, "tenant", "delivery", "acme", "--quota-permanent")
	r, err := srv.Metadata().ResolveRecipient(t.Context(), &metadatapb.ResolveRecipientRequest{Address: "sales-crm@acme.test"})
	if err != nil || r.GetAccount() != "bob@acme.test" || r.GetDetail() != "crm" || !r.GetSettings().GetQuotaPermanent() || r.GetSettings().GetSpamAction() != "reject" {
		t.Fatalf("resolve after the commands: %v, %v", r, err)
	}
	if r, err := srv.Metadata().ResolveRecipient(t.Context(), &metadatapb.ResolveRecipientRequest{Address: "anyone@acme.example"}); err != nil || r.GetVia() != "catchall" {
		t.Fatalf("catch-all: %v, %v", r, err)
	}
	mustStrata(t, srv, "alias", "del", "@acme.example")
	if out := mustStrata(t, srv, "alias", "list", "--domain", "acme.example"); out != "ALIAS  TENANT  TARGETS\n" {
		t.Fatalf("aliases of acme.example after del: %q", out)
	}
}
