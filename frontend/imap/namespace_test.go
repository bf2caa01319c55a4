package imap_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// shareFixture builds the mailboxes of the namespace tests: alice shares Projects and
// Projects/2026 with bob and Secret with carol; the demo tenant has Shared/Support (for
// anyone) and Shared/Sales (for carol); the other tenant has Shared/Helpdesk for anyone
// of it.
func shareFixture(t *testing.T) (srv *embedded.Server, a, b *rawConn) {
	t.Helper()
	srv = startTenants(t)
	a = loginRawAs(t, srv, alice)
	for _, name := range []string{"Projects", "Projects/2026", "Secret"} {
		a.ok("CREATE " + name)
	}
	a.ok("SETACL Projects " + bob + " lr")
	a.ok("SETACL Projects/2026 " + bob + " lr")
	a.ok("SETACL Secret " + carol + " lr")
	adminCreateMailbox(t, srv, "tenant:"+embedded.DemoTenant, "Support")
	adminCreateMailbox(t, srv, "tenant:"+embedded.DemoTenant, "Sales")
	adminSetACL(t, srv, "tenant:"+embedded.DemoTenant, "Support", "anyone", "lrs")
	adminSetACL(t, srv, "tenant:"+embedded.DemoTenant, "Sales", carol, "lr")
	adminCreateMailbox(t, srv, "tenant:"+otherTenant, "Helpdesk")
	adminSetACL(t, srv, "tenant:"+otherTenant, "Helpdesk", "anyone", "lr")
	return srv, a, loginRawAs(t, srv, bob)
}

func TestNamespaceCommand(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	// RFC 2342 5, RFC 9051 6.3.10: personal, other users', shared.
	want := []string{`* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Shared/" "/"))`}
	if got := rc.ok("NAMESPACE"); !slices.Equal(got, want) {
		t.Errorf("NAMESPACE = %q, want %q", got, want)
	}
}

func TestNamespaceList(t *testing.T) {
	srv, _, b := shareFixture(t)
	shared := func(lines []string) []string { return linesWith(lines, `"Other Users`, " Shared") }
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{`LIST "" "*"`, []string{
			`* LIST (\Noselect \HasChildren) "/" "Other Users"`,
			`* LIST (\Noselect \HasChildren) "/" "Other Users/alice@example.com"`,
			`* LIST (\HasChildren) "/" "Other Users/alice@example.com/Projects"`,
			`* LIST (\HasNoChildren) "/" "Other Users/alice@example.com/Projects/2026"`,
			`* LIST (\Noselect \HasChildren) "/" Shared`,
			`* LIST (\HasNoChildren) "/" Shared/Support`,
		}},
		// RFC 9051 6.3.9: "%" stops at the delimiter, so the namespaces show as levels.
		{`LIST "" "%"`, []string{
			`* LIST (\Noselect \HasChildren) "/" "Other Users"`,
			`* LIST (\Noselect \HasChildren) "/" Shared`,
		}},
		{`LIST "" "Other Users/%"`, []string{`* LIST (\Noselect \HasChildren) "/" "Other Users/alice@example.com"`}},
		{`LIST "Other Users/" "%"`, []string{`* LIST (\Noselect \HasChildren) "/" "Other Users/alice@example.com"`}},
		{`LIST "" "Other Users/*"`, []string{
			`* LIST (\Noselect \HasChildren) "/" "Other Users/alice@example.com"`,
			`* LIST (\HasChildren) "/" "Other Users/alice@example.com/Projects"`,
			`* LIST (\HasNoChildren) "/" "Other Users/alice@example.com/Projects/2026"`,
		}},
		{`LIST "" "Other Users/alice@example.com/%"`, []string{`* LIST (\HasChildren) "/" "Other Users/alice@example.com/Projects"`}},
		{`LIST "" "Shared/%"`, []string{`* LIST (\HasNoChildren) "/" Shared/Support`}},
		// Nothing bob may not see, whatever the pattern.
		{`LIST "" "Other Users/carol@example.com/*"`, nil},
		{`LIST "" "*Secret*"`, nil},
		{`LIST "" "*Sales*"`, nil},
		{`LIST "" "*Helpdesk*"`, nil},
		{`LIST "" "Other Users/tenant:other/*"`, nil},
	} {
		if got := shared(b.ok(tc.cmd)); !slices.Equal(got, tc.want) {
			t.Errorf("bob %s = %q, want %q", tc.cmd, got, tc.want)
		}
	}
	if got := linesWith(b.ok(`LIST "" "*"`), "Secret", "Sales", "Helpdesk", "carol", "eve"); len(got) > 0 {
		t.Errorf("bob sees %q", got)
	}

	// carol sees alice's Secret and the tenant's two mailboxes, not Projects.
	c := loginRawAs(t, srv, carol)
	want := []string{
		`* LIST (\Noselect \HasChildren) "/" "Other Users"`,
		`* LIST (\Noselect \HasChildren) "/" "Other Users/alice@example.com"`,
		`* LIST (\HasNoChildren) "/" "Other Users/alice@example.com/Secret"`,
		`* LIST (\Noselect \HasChildren) "/" Shared`,
		`* LIST (\HasNoChildren) "/" Shared/Sales`,
		`* LIST (\HasNoChildren) "/" Shared/Support`,
	}
	if got := shared(c.ok(`LIST "" "*"`)); !slices.Equal(got, want) {
		t.Errorf("carol LIST = %q, want %q", got, want)
	}

	// eve, of the other tenant, sees her tenant's mailbox and nothing of example.com, not
	// even through "anyone".
	e := loginRawAs(t, srv, eve)
	want = []string{`* LIST (\Noselect \HasChildren) "/" Shared`, `* LIST (\HasNoChildren) "/" Shared/Helpdesk`}
	if got := shared(e.ok(`LIST "" "*"`)); !slices.Equal(got, want) {
		t.Errorf("eve LIST = %q, want %q", got, want)
	}

	// IMAP4rev2 and LIST-EXTENDED: a namespace level stays \Noselect (it is no deleted
	// parent, \NonExistent), and LIST-STATUS covers the shared mailboxes.
	b.ok("ENABLE IMAP4rev2")
	want = []string{
		`* LIST (\Noselect \HasChildren) "/" "Other Users/alice@example.com"`,
		`* LIST (\HasChildren) "/" "Other Users/alice@example.com/Projects"`,
		`* STATUS "Other Users/alice@example.com/Projects" (MESSAGES 0)`,
		`* LIST (\HasNoChildren) "/" "Other Users/alice@example.com/Projects/2026"`,
		`* STATUS "Other Users/alice@example.com/Projects/2026" (MESSAGES 0)`,
	}
	if got := b.ok(`LIST "" "Other Users/*" RETURN (STATUS (MESSAGES))`); !slices.Equal(got, want) {
		t.Errorf("bob LIST-STATUS = %q, want %q", got, want)
	}
}

func TestNamespaceSubscriptions(t *testing.T) {
	_, _, b := shareFixture(t)
	// Subscriptions of shared names are names in bob's own list (RFC 9051 6.3.7).
	b.ok(`SUBSCRIBE "Other Users/alice@example.com/Projects"`)
	b.ok("SUBSCRIBE Shared/Support")
	want := []string{`* LSUB (\HasChildren) "/" "Other Users/alice@example.com/Projects"`, `* LSUB (\HasNoChildren) "/" Shared/Support`}
	if got := linesWith(b.ok(`LSUB "" "*"`), "Other Users", "Shared"); !slices.Equal(got, want) {
		t.Errorf("LSUB = %q, want %q", got, want)
	}
	want = []string{`* LIST (\Subscribed \HasChildren) "/" "Other Users/alice@example.com/Projects"`}
	if got := b.ok(`LIST (SUBSCRIBED) "" "Other Users/*"`); !slices.Equal(got, want) {
		t.Errorf("LIST (SUBSCRIBED) = %q, want %q", got, want)
	}
	b.ok(`UNSUBSCRIBE "Other Users/alice@example.com/Projects"`)

}

func TestNamespaceNames(t *testing.T) {
	srv, a, b := shareFixture(t)
	a.ok("APPEND Projects {5+}\r\nhello")

	// Every command takes the names of the other namespaces.
	b.ok(`STATUS "Other Users/alice@example.com/Projects" (MESSAGES)`)
	b.ok(`EXAMINE "Other Users/alice@example.com/Projects"`)
	b.ok("UNSELECT")
	b.ok("STATUS Shared/Support (MESSAGES)")
	b.ok(`MYRIGHTS "Other Users/ALICE@example.com/Projects"`)

	// RFC 4314 6: a mailbox bob may not see answers like one that does not exist; so do
	// the namespace levels, bob's own name in Other Users, and anything of another tenant.
	same := func(c *rawConn, cmd, name, like, args string) {
		t.Helper()
		_, got := c.cmd(cmd + ` "` + name + `"` + args)
		_, want := c.cmd(cmd + ` "` + like + `"` + args)
		if !strings.HasPrefix(got, "NO [NONEXISTENT]") || strings.ReplaceAll(got, name, like) != want {
			t.Errorf("%s %s%s = %q; %s = %q", cmd, name, args, got, like, want)
		}
	}
	const nope = "Other Users/alice@example.com/Nope"
	for _, name := range []string{
		"Other Users/alice@example.com/Secret", "Shared/Sales", "Other Users", "Other Users/alice@example.com",
		"Shared", "Other Users/bob@example.com/INBOX", "Other Users/tenant:example/Support",
	} {
		for _, cmd := range []string{"SELECT", "EXAMINE", "GETACL", "MYRIGHTS", "DELETE", "GETQUOTAROOT"} {
			same(b, cmd, name, nope, "")
		}
		same(b, "STATUS", name, nope, " (MESSAGES)")
		same(b, "LISTRIGHTS", name, nope, " anyone")
		same(b, "SETACL", name, nope, " anyone lr")
		same(b, "DELETEACL", name, nope, " anyone")
	}
	e := loginRawAs(t, srv, eve)
	for _, name := range []string{"Other Users/alice@example.com/Projects", "Other Users/alice@example.com/INBOX", "Shared/Support"} {
		same(e, "SELECT", name, nope, "")
	}
	e.ok("EXAMINE Shared/Helpdesk")

	// The namespaces' names cannot be personal mailboxes any more (RFC 2342).
	for _, name := range []string{`"Other Users"`, "Shared", `"Other Users/alice@example.com"`, `"Other Users/"`, "Shared/"} {
		b.expect("CREATE "+name, "NO [CANNOT]")
		b.expect("RENAME Archive "+name, "NO [CANNOT]")
	}
	// A mailbox stays in its owner's space.
	b.expect(`RENAME "Other Users/alice@example.com/Projects" Mine`, "NO [CANNOT]")
	b.expect(`RENAME Archive "Other Users/alice@example.com/Archive"`, "NO [CANNOT]")

	// RFC 9208 4.1.2: for bob, alice's mailbox is under the tenant's root only.
	setQuota(t, srv, &metadatapb.SetQuotaRequest{Account: alice, Limits: &metadatapb.QuotaLimits{Messages: proto.Uint64(10)}})
	setQuota(t, srv, &metadatapb.SetQuotaRequest{Tenant: embedded.DemoTenant, Limits: &metadatapb.QuotaLimits{Messages: proto.Uint64(100)}})
	got := b.ok(`GETQUOTAROOT "Other Users/alice@example.com/Projects"`)
	if len(got) != 2 || got[0] != `* QUOTAROOT "Other Users/alice@example.com/Projects" Tenant` || !strings.HasPrefix(got[1], "* QUOTA Tenant (MESSAGE ") {
		t.Errorf("GETQUOTAROOT of alice's mailbox = %q", got)
	}
}
