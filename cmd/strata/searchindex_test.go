package main

import (
	"strings"
	"testing"
)

// TestThreadNumbersCommand: `strata index thread-numbers` reaches NumberAccountMessages
// for an account and for every account of a tenant (mailboxes made by this build are
// numbered from the start, so nothing is left to number), and refuses to guess which.
func TestThreadNumbersCommand(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	mustStrata(t, srv, "user", "add", "alice@acme.test", "--password", "pw")
	mustStrata(t, srv, "user", "add", "bob@acme.test", "--password", "pw")
	if out := mustStrata(t, srv, "index", "thread-numbers", "alice@acme.test"); out != "alice@acme.test: 0 entries numbered, every mailbox numbered\n" {
		t.Fatalf("one account: %q", out)
	}
	out := mustStrata(t, srv, "index", "thread-numbers", "--tenant", "acme")
	if !strings.Contains(out, "alice@acme.test: 0 entries") || !strings.Contains(out, "bob@acme.test: 0 entries") {
		t.Fatalf("tenant: %q", out)
	}
	if out, err := strata(t, srv, "index", "thread-numbers"); err == nil || !strings.Contains(out+err.Error(), "name one EMAIL or --tenant T") {
		t.Fatalf("no account: %q, %v", out, err)
	}
}
