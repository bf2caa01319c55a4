package main

import (
	"fmt"
	"os"
	"path/filepath"
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

// TestSieveCommands: `strata sieve put|get|list|activate|rename|delete` for an account and,
// with --tenant, the tenant's global scripts; what they store is what delivery reads.
func TestSieveCommands(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	mustStrata(t, srv, "user", "add", "alice@acme.test", "--password", "pw")
	dir := t.TempDir()
	file := filepath.Join(dir, "main.sieve")
	script := "require \"fileinto\";\r\nif header :contains \"subject\" \"[list]\" { fileinto \"Lists\"; }\r\n"
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustStrata(t, srv, "sieve", "put", "alice@acme.test", "main", file); out != fmt.Sprintf("stored \"main\" of alice@acme.test (%d bytes)\n", len(script)) {
		t.Fatalf("sieve put: %q", out)
	}
	mustStrata(t, srv, "sieve", "put", "alice@acme.test", "spare", file)
	mustStrata(t, srv, "sieve", "put", "--tenant", "acme", "spam-first", file, "--phase", "before")
	if out := mustStrata(t, srv, "sieve", "get", "alice@acme.test", "main"); out != script {
		t.Fatalf("sieve get = %q, want the file", out)
	}
	if out := mustStrata(t, srv, "sieve", "activate", "alice@acme.test", "main"); out != "\"main\" of alice@acme.test is active\n" {
		t.Fatalf("sieve activate: %q", out)
	}
	out := mustStrata(t, srv, "sieve", "list", "alice@acme.test")
	if !strings.Contains(out, "main    yes") || !strings.Contains(out, "limits: 32 scripts of at most 65536 bytes") {
		t.Fatalf("sieve list: %q", out)
	}
	if out := mustStrata(t, srv, "sieve", "list", "--tenant", "acme"); !strings.Contains(out, "spam-first          before") {
		t.Fatalf("sieve list --tenant: %q", out)
	}
	broken := filepath.Join(dir, "broken.sieve")
	if err := os.WriteFile(broken, []byte("keep;\r\nkep;\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := strata(t, srv, "sieve", "put", "alice@acme.test", "broken", broken); err == nil || !strings.Contains(out+err.Error(), "broken:2:1") {
		t.Errorf("sieve put of a script that does not compile: %q, %v; want refused at line 2, column 1", out, err)
	}
	for _, bad := range [][]string{
		{"sieve", "delete", "alice@acme.test", "main"}, // active (RFC 5804 2.10)
		{"sieve", "put", "alice@acme.test", "x", filepath.Join(dir, "missing")},
		{"sieve", "put", "alice@acme.test", "x", file, "--phase", "after"},
		{"sieve", "put", "alice@acme.test", "bad\x01name", file},
		{"sieve", "get", "alice@acme.test", "nope"},
		{"sieve", "activate", "alice@acme.test", "nope"},
		{"sieve", "rename", "alice@acme.test", "main", "spare"},
		{"sieve", "list", "alice@acme.test", "--tenant", "acme"},
		{"sieve", "list", "ghost@acme.test"},
	} {
		if out, err := strata(t, srv, bad...); err == nil {
			t.Errorf("strata %q succeeded: %s", bad, out)
		}
	}
	mustStrata(t, srv, "sieve", "rename", "alice@acme.test", "main", "rules")
	mustStrata(t, srv, "sieve", "del", "alice@acme.test", "spare")
	act, err := srv.Metadata().GetActiveSieveScript(t.Context(), &metadatapb.GetActiveSieveScriptRequest{Account: "alice@acme.test"})
	if err != nil || act.GetScript().GetName() != "rules" || string(act.GetScript().GetContent()) != script || len(act.GetBefore()) != 1 {
		t.Fatalf("delivery scripts after the commands: %v, %v", act, err)
	}
	if out := mustStrata(t, srv, "sieve", "activate", "alice@acme.test"); out != "no script of alice@acme.test is active\n" {
		t.Fatalf("sieve activate without a script: %q", out)
	}
	mustStrata(t, srv, "sieve", "delete", "alice@acme.test", "rules")
	if out := mustStrata(t, srv, "sieve", "list", "alice@acme.test"); strings.Contains(out, "rules") {
		t.Fatalf("deleted script listed: %q", out)
	}
}
