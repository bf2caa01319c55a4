package imap_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

func setTenantAdmin(t *testing.T, srv *embedded.Server, email string, on bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := srv.Metadata().SetAccountTenantAdmin(ctx, &metadatapb.SetAccountTenantAdminRequest{
		RequestId: embedded.NewRequestID(), Email: email, TenantAdmin: on,
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSetQuotaByTenantAdmin: RFC 9208 4.1.3 SETQUOTA by an account flagged tenant admin, on
// its own root and on the root of another account of its tenant; NO [NOPERM] for the tenant
// root, another tenant's account, and every user that is not (or no longer) a tenant admin.
func TestSetQuotaByTenantAdmin(t *testing.T) {
	srv := startTenants(t)
	setTenantAdmin(t, srv, alice, true)
	admin := loginRawAs(t, srv, alice)
	user := loginRawAs(t, srv, bob)

	if caps := admin.ok("CAPABILITY"); !contains(caps, " QUOTASET") {
		t.Errorf("a tenant admin's CAPABILITY lacks QUOTASET (RFC 9208 1): %q", caps)
	}
	if caps := user.ok("CAPABILITY"); contains(caps, "QUOTASET") {
		t.Errorf("a user's CAPABILITY has QUOTASET: %q", caps)
	}

	if got := admin.ok(`SETQUOTA "Bob@Example.com" (STORAGE 100 MESSAGE 5)`); !slices.Equal(got, []string{`* QUOTA bob@example.com (STORAGE 0 100 MESSAGE 0 5)`}) {
		t.Errorf("SETQUOTA on bob's root = %q", got)
	}
	if got := user.ok(`GETQUOTA ""`); !slices.Equal(got, []string{`* QUOTA "" (STORAGE 0 100 MESSAGE 0 5)`}) {
		t.Errorf("bob's GETQUOTA after the admin's SETQUOTA = %q", got)
	}
	// RFC 9208 4.1.3: limits not named are discarded.
	if got := admin.ok(`SETQUOTA bob@example.com (MESSAGE 7)`); !slices.Equal(got, []string{`* QUOTA bob@example.com (MESSAGE 0 7)`}) {
		t.Errorf("SETQUOTA MESSAGE only = %q", got)
	}
	if got := admin.ok(`SETQUOTA "" (STORAGE 2048)`); !slices.Equal(got, []string{`* QUOTA "" (STORAGE 0 2048)`}) {
		t.Errorf("SETQUOTA on its own root = %q", got)
	}
	if got := admin.ok(`SETQUOTA bob@example.com ()`); len(got) != 0 {
		t.Errorf("SETQUOTA () = %q, want no QUOTA (no resource left)", got)
	}
	user.expect(`GETQUOTA ""`, "NO [NONEXISTENT]")

	admin.expect(`SETQUOTA Tenant (MESSAGE 1000000)`, "NO [NOPERM]")
	admin.expect(`SETQUOTA eve@other.org (MESSAGE 1)`, "NO [NOPERM]")
	admin.expect(`SETQUOTA nobody@example.com (MESSAGE 1)`, "NO [NONEXISTENT]")
	admin.expect(`SETQUOTA other (MESSAGE 1)`, "NO [NONEXISTENT]")
	admin.expect(`SETQUOTA "" (ANNOTATION-STORAGE 1)`, "NO [CANNOT]")
	admin.expect(`SETQUOTA "" (STORAGE 18014398509481984)`, "NO [CANNOT]")
	admin.expect(`SETQUOTA "" (MESSAGE 1 MESSAGE 2)`, "BAD")
	admin.expect(`SETQUOTA "" (MESSAGE x)`, "BAD")
	user.expect(`SETQUOTA alice@example.com (MESSAGE 1)`, "NO [NOPERM]")
	user.expect(`SETQUOTA "" (MESSAGE 1000)`, "NO [NOPERM]")

	// The flag is checked by the metadata service as it is now: a session that logged in
	// as a tenant admin loses the right with the flag.
	setTenantAdmin(t, srv, alice, false)
	admin.expect(`SETQUOTA bob@example.com (MESSAGE 9)`, "NO [NOPERM]")
	plain := loginRawAs(t, srv, eve)
	plain.expect(`SETQUOTA bob@example.com (MESSAGE 9)`, "NO [NOPERM]")

	// An admin of the other tenant cannot reach this one either.
	setTenantAdmin(t, srv, eve, true)
	otherAdmin := loginRawAs(t, srv, eve)
	if _, tagged := otherAdmin.cmd(`SETQUOTA bob@example.com (MESSAGE 9)`); !strings.HasPrefix(tagged, "NO [NOPERM]") {
		t.Errorf("another tenant's admin: %s", tagged)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	q, err := srv.Metadata().GetQuota(ctx, &metadatapb.GetQuotaRequest{Account: bob})
	if err != nil {
		t.Fatal(err)
	}
	if l := q.GetRoots()[0].GetLimits(); l.Messages != nil || l.StorageBytes != nil {
		t.Errorf("bob's root has limits %v after the refused SETQUOTAs", l)
	}
}

// TestGetQuotaByTenantAdmin: RFC 9208 4.1.1 GETQUOTA and 4.1.2 GETQUOTAROOT by a tenant
// admin reach the root of another account of its tenant, named by its address (as SETQUOTA
// names it); for any other user, for an admin of another tenant and once the flag is off,
// that root does not exist.
func TestGetQuotaByTenantAdmin(t *testing.T) {
	srv := startTenants(t)
	setTenantAdmin(t, srv, alice, true)
	admin := loginRawAs(t, srv, alice)
	user := loginRawAs(t, srv, bob)
	admin.ok(`SETQUOTA bob@example.com (MESSAGE 5)`)

	if got := admin.ok(`GETQUOTA bob@example.com`); !slices.Equal(got, []string{`* QUOTA bob@example.com (MESSAGE 0 5)`}) {
		t.Errorf("the admin's GETQUOTA of bob's root = %q", got)
	}
	// bob shares his INBOX with alice: her GETQUOTAROOT of it names his root first.
	user.ok(`SETACL INBOX alice@example.com lr`)
	got := admin.ok(`GETQUOTAROOT "Other Users/bob@example.com/INBOX"`)
	if len(got) != 2 || got[0] != `* QUOTAROOT "Other Users/bob@example.com/INBOX" bob@example.com` || got[1] != `* QUOTA bob@example.com (MESSAGE 0 5)` {
		t.Errorf("the admin's GETQUOTAROOT of bob's INBOX = %q", got)
	}

	admin.expect(`GETQUOTA nobody@example.com`, "NO [NONEXISTENT]")
	admin.expect(`GETQUOTA eve@other.org`, "NO [NONEXISTENT]")
	user.expect(`GETQUOTA alice@example.com`, "NO [NONEXISTENT]")
	setTenantAdmin(t, srv, eve, true)
	loginRawAs(t, srv, eve).expect(`GETQUOTA bob@example.com`, "NO [NONEXISTENT]")
	// The flag as it is now, not as it was at login.
	setTenantAdmin(t, srv, alice, false)
	admin.expect(`GETQUOTA bob@example.com`, "NO [NONEXISTENT]")
	if got := admin.ok(`GETQUOTAROOT "Other Users/bob@example.com/INBOX"`); !slices.Equal(got, []string{`* QUOTAROOT "Other Users/bob@example.com/INBOX"`}) {
		t.Errorf("GETQUOTAROOT of bob's INBOX after the flag went = %q", got)
	}
}
