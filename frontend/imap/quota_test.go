package imap_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

func setQuota(t *testing.T, srv *embedded.Server, req *metadatapb.SetQuotaRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req.RequestId = embedded.NewRequestID()
	if _, err := srv.Metadata().SetQuota(ctx, req); err != nil {
		t.Fatalf("set quota: %v", err)
	}
}

// rawAppend sends APPEND with a non-synchronising literal (RFC 7888) and returns the
// tagged response.
func (rc *rawConn) rawAppend(mailbox, msg string) string {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("x%d", rc.n)
	rc.write(fmt.Sprintf("%s APPEND %s {%d+}\r\n%s\r\n", tag, mailbox, len(msg), msg))
	_, tagged := rc.until(tag)
	return tagged
}

func TestQuota(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	caps := rc.ok("CAPABILITY")
	for _, want := range []string{" QUOTA ", " QUOTA=RES-STORAGE", " QUOTA=RES-MESSAGE"} {
		if !contains(caps, want) {
			t.Errorf("CAPABILITY %q lacks %q", caps, want)
		}
	}
	// RFC 9208 4.1.2: no limits, so the mailbox is in no root.
	if got := rc.ok("GETQUOTAROOT INBOX"); !slices.Equal(got, []string{"* QUOTAROOT INBOX"}) {
		t.Errorf("GETQUOTAROOT without limits = %q", got)
	}
	rc.expect(`GETQUOTA ""`, "NO [NONEXISTENT]")

	setQuota(t, srv, &metadatapb.SetQuotaRequest{Account: embedded.DemoAccount, Limits: &metadatapb.QuotaLimits{
		Messages: proto.Uint64(2), StorageBytes: proto.Uint64(100 * 1024),
	}})
	setQuota(t, srv, &metadatapb.SetQuotaRequest{Tenant: embedded.DemoTenant, Limits: &metadatapb.QuotaLimits{Messages: proto.Uint64(50)}})
	got := rc.ok("GETQUOTAROOT inbox")
	want := []string{`* QUOTAROOT INBOX "" Tenant`, `* QUOTA "" (STORAGE 0 100 MESSAGE 0 2)`, `* QUOTA Tenant (MESSAGE 0 50)`}
	if !slices.Equal(got, want) {
		t.Errorf("GETQUOTAROOT = %q, want %q", got, want)
	}

	msg := testMessage("quota", strings.Repeat("x", 1500))
	for i := range 2 {
		if tagged := rc.rawAppend("INBOX", msg); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("APPEND %d: %s", i, tagged)
		}
	}
	// RFC 9208 5.1: STORAGE in units of 1024 octets, usage rounded up.
	kib := (2*len(msg) + 1023) / 1024
	if got := rc.ok(`GETQUOTA ""`); !slices.Equal(got, []string{fmt.Sprintf(`* QUOTA "" (STORAGE %d 100 MESSAGE 2 2)`, kib)}) {
		t.Errorf("GETQUOTA = %q", got)
	}
	if tagged := rc.rawAppend("INBOX", msg); !strings.HasPrefix(tagged, "NO [OVERQUOTA]") {
		t.Errorf("APPEND over quota: %s", tagged)
	}
	rc.ok("SELECT INBOX")
	rc.expect("COPY 1 Archive", "NO [OVERQUOTA]")
	rc.expect("UID COPY 1:* INBOX", "NO [OVERQUOTA]")
	// MOVE keeps the account's usage, so it is allowed at the limit.
	rc.expect("MOVE 1 Archive", "OK")
	if got := rc.ok("GETQUOTA Tenant"); !slices.Equal(got, []string{"* QUOTA Tenant (MESSAGE 2 50)"}) {
		t.Errorf("GETQUOTA Tenant = %q", got)
	}

	// A lowered STORAGE limit refuses the next APPEND too; expunging frees room.
	setQuota(t, srv, &metadatapb.SetQuotaRequest{Account: embedded.DemoAccount, Limits: &metadatapb.QuotaLimits{StorageBytes: proto.Uint64(uint64(2*len(msg) + 10))}})
	if tagged := rc.rawAppend("INBOX", msg); !strings.HasPrefix(tagged, "NO [OVERQUOTA]") {
		t.Errorf("APPEND over STORAGE quota: %s", tagged)
	}
	rc.ok("STORE 1 +FLAGS (\\Deleted)")
	rc.ok("EXPUNGE")
	if tagged := rc.rawAppend("INBOX", msg); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("APPEND after EXPUNGE: %s", tagged)
	}

	rc.expect(`SETQUOTA "" (STORAGE 1)`, "NO [NOPERM]")
	rc.expect(`SETQUOTA Tenant ()`, "NO [NOPERM]")
	rc.expect("GETQUOTA other", "NO [NONEXISTENT]")
	rc.expect("GETQUOTAROOT Missing", "NO [NONEXISTENT]")
	rc.expect("SETQUOTA", "BAD")
}

// TestDisabledAccountSessionEnds disables the account of an open session, which
// gets BYE at a command within accountCheckInterval, and can no longer log in.
func TestDisabledAccountSessionEnds(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := srv.Metadata().SetAccountDisabled(ctx, &metadatapb.SetAccountDisabledRequest{
		RequestId: embedded.NewRequestID(), Email: embedded.DemoAccount, Disabled: true,
	}); err != nil {
		t.Fatal(err)
	}
	n := 0
	testwait.Until(t, 10*time.Second, func() error {
		n++
		tag := fmt.Sprintf("n%d", n)
		rc.write(tag + " NOOP\r\n")
		line := rc.readLine()
		for !strings.HasPrefix(line, tag+" ") && !strings.HasPrefix(line, "* BYE") {
			line = rc.readLine()
		}
		if !strings.HasPrefix(line, "* BYE") {
			return fmt.Errorf("no BYE after disabling the account: NOOP answered %q", line)
		}
		return nil
	})
	other := dialRaw(t, srv)
	other.expect("LOGIN "+embedded.DemoAccount+" "+embedded.DemoPassword, "NO [AUTHENTICATIONFAILED]")
}
