package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// startAdminServer runs the whole of Strata in-process with its admin gRPC endpoint on a
// loopback port, and returns it.
func startAdminServer(t *testing.T) *embedded.Server {
	t.Helper()
	return startAdminServerWith(t, func(*embedded.Config) {})
}

// startAdminServerWith is startAdminServer with the configuration changed by edit first.
func startAdminServerWith(t *testing.T, edit func(*embedded.Config)) *embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := embedded.Config{
		DataDir:        t.TempDir(),
		IMAPListen:     "127.0.0.1:0",
		GRPCListen:     "127.0.0.1:0",
		BlobGCInterval: -1,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	edit(&cfg)
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// runStrataIn runs the command line args with stdin as its standard input and returns its
// standard output and error apart.
func runStrataIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// strata runs the command line args against srv and returns its output (standard output,
// then standard error).
func strata(t *testing.T, srv *embedded.Server, args ...string) (string, error) {
	t.Helper()
	return strataIn(t, srv, "", args...)
}

// strataIn is strata with stdin as the command's standard input.
func strataIn(t *testing.T, srv *embedded.Server, stdin string, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runStrataIn(t, stdin, append(args, "--server", srv.GRPCAddr())...)
	return out + errOut, err
}

func mustStrata(t *testing.T, srv *embedded.Server, args ...string) string {
	t.Helper()
	out, err := strata(t, srv, args...)
	if err != nil {
		t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestACLCommands: `strata acl set|del|list` on an account's mailbox and, with --tenant,
// on a tenant's shared mailbox that `strata mailbox create` made; +RIGHTS, -RIGHTS and
// negative identifiers reach the server as such.
func TestACLCommands(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	mustStrata(t, srv, "tenant", "add", "globex", "--domains", "globex.test")
	for _, u := range []string{"alice@acme.test", "bob@acme.test", "mallory@globex.test"} {
		mustStrata(t, srv, "user", "add", u, "--password", "pw")
	}
	if out := mustStrata(t, srv, "mailbox", "create", "--tenant", "acme", "Support"); !strings.Contains(out, `created "Support" of tenant acme`) {
		t.Fatalf("mailbox create: %q", out)
	}
	if out := mustStrata(t, srv, "acl", "set", "--tenant", "acme", "Support", "anyone", "lrs"); !strings.Contains(out, "anyone      lrs") {
		t.Fatalf("acl set on Support: %q", out)
	}
	mustStrata(t, srv, "acl", "set", "alice@acme.test", "INBOX", "bob@acme.test", "lrw")
	mustStrata(t, srv, "acl", "set", "alice@acme.test", "INBOX", "bob@acme.test", "-w")
	mustStrata(t, srv, "acl", "set", "alice@acme.test", "INBOX", "bob@acme.test", "+ie")
	mustStrata(t, srv, "acl", "set", "alice@acme.test", "INBOX", "-anyone", "c")
	out := mustStrata(t, srv, "acl", "list", "alice@acme.test", "INBOX")
	for _, want := range []string{"alice@acme.test  lrswipkxtea (owner)", "-anyone          kx", "bob@acme.test    lrie"} {
		if !strings.Contains(out, want) {
			t.Fatalf("acl list = %q, want a line %q", out, want)
		}
	}
	mustStrata(t, srv, "acl", "del", "alice@acme.test", "INBOX", "-anyone")
	acl, err := srv.Metadata().GetAcl(t.Context(), &metadatapb.GetAclRequest{Account: "alice@acme.test", Name: "INBOX"})
	if err != nil || len(acl.GetAcl()) != 1 || acl.GetAcl()[0].GetRights() != "lrie" {
		t.Fatalf("ACL after the commands = %v, %v", acl, err)
	}
	shared, err := srv.Metadata().ListMailboxes(t.Context(), &metadatapb.ListMailboxesRequest{User: "bob@acme.test", Account: "bob@acme.test"})
	if err != nil || len(shared.GetShared()) != 2 {
		t.Fatalf("bob's shared mailboxes = %v, %v", shared.GetShared(), err)
	}
	for _, bad := range [][]string{
		{"acl", "set", "alice@acme.test", "INBOX", "mallory@globex.test", "lr"}, // another tenant
		{"acl", "set", "alice@acme.test", "INBOX", "bob@acme.test", "lrz"},      // unknown right
		{"acl", "set", "alice@acme.test", "INBOX", "bob@acme.test"},             // no rights
		{"acl", "set", "--tenant", "acme", "alice@acme.test", "Support", "anyone", "l"},
		{"acl", "list", "--tenant", "acme", "NoSuchBox"},
		{"acl", "set", "alice@acme.test", "INBOX", "bob@acme.test", "l", "--bogus", "x"},
	} {
		if out, err := strata(t, srv, bad...); err == nil {
			t.Errorf("strata %s succeeded: %s", strings.Join(bad, " "), out)
		}
	}
	mustStrata(t, srv, "mailbox", "del", "--tenant", "acme", "Support")
	if _, err := strata(t, srv, "acl", "list", "--tenant", "acme", "Support"); err == nil {
		t.Fatal("ACL of a deleted mailbox listed")
	}
	if out := mustStrata(t, srv, "mailbox", "create", "bob@acme.test", "Projects/2026"); !strings.Contains(out, `"Projects/2026" of bob@acme.test`) {
		t.Fatalf("mailbox create for an account: %q", out)
	}
}

// TestACLCommandsConfig: acl set, which parses its own arguments, still takes --server from
// the configuration file and the environment like every other command.
func TestACLCommandsConfig(t *testing.T) {
	srv := startAdminServer(t)
	if _, err := srv.Metadata().CreateTenant(t.Context(), &metadatapb.CreateTenantRequest{RequestId: "t", Name: "acme", Domains: []string{"acme.test"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Metadata().CreateAccount(t.Context(), &metadatapb.CreateAccountRequest{RequestId: "a", Email: "alice@acme.test"}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(file, []byte("server: "+srv.GRPCAddr()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range []struct{ name, value string }{{"STRATA_CONFIG", file}, {"STRATA_SERVER", srv.GRPCAddr()}} {
		t.Run(env.name, func(t *testing.T) {
			t.Setenv(env.name, env.value)
			root := newRootCommand()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs([]string{"acl", "set", "alice@acme.test", "INBOX", "anyone", "-w"})
			if err := root.ExecuteContext(t.Context()); err != nil {
				t.Fatalf("acl set with %s: %v\n%s", env.name, err, out.String())
			}
		})
	}
}
