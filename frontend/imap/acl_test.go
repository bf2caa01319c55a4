package imap_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// team is alice's mailbox Team as bob and carol name it.
const team = `"Other Users/alice@example.com/Team"`

// teamFixture starts the multi-user server; alice has a mailbox Team holding one message.
func teamFixture(t *testing.T) (srv *embedded.Server, a, b *rawConn) {
	t.Helper()
	srv = startTenants(t)
	a = loginRawAs(t, srv, alice)
	a.ok("CREATE Team")
	if tagged := a.rawAppend("Team", testMessage("team", "for the team")); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("APPEND: %s", tagged)
	}
	return srv, a, loginRawAs(t, srv, bob)
}

// grant sets bob's rights on Team, as alice.
func grant(a *rawConn, rights string) {
	a.t.Helper()
	a.ok(`SETACL Team ` + bob + ` "` + rights + `"`)
}

func TestACLCapabilities(t *testing.T) {
	srv := startServer(t)
	caps := strings.Join(loginRaw(t, srv).ok("CAPABILITY"), " ") + " "
	// RFC 4314 2 and 2.1: ACL, and the rights beyond RFC 2086's.
	for _, want := range []string{" ACL ", " RIGHTS=texk "} {
		if !strings.Contains(caps, want) {
			t.Errorf("CAPABILITY %q lacks %q", caps, want)
		}
	}
}

func TestACLCommands(t *testing.T) {
	_, a, b := teamFixture(t)
	grant(a, "lrs")
	// RFC 4314 3.3 / 3.6; the owner first, with its fixed rights; c and d added for k x and
	// e t (RFC 4314 2.1.1).
	want := []string{"* ACL Team alice@example.com lrswipkxteacd bob@example.com lrs"}
	if got := a.ok("GETACL Team"); !slices.Equal(got, want) {
		t.Errorf("GETACL = %q, want %q", got, want)
	}
	a.ok("SETACL Team bob@example.com +wx")
	a.ok("SETACL Team bob@example.com -s")
	a.ok("SETACL Team anyone l")
	want = []string{"* ACL Team alice@example.com lrswipkxteacd anyone l bob@example.com lrwxc"}
	if got := a.ok("GETACL Team"); !slices.Equal(got, want) {
		t.Errorf("GETACL after +wx -s = %q, want %q", got, want)
	}
	// RFC 4314 3.5 / 3.8.
	want = []string{`* MYRIGHTS "Other Users/alice@example.com/Team" lrwxc`}
	if got := b.ok("MYRIGHTS " + team); !slices.Equal(got, want) {
		t.Errorf("bob MYRIGHTS = %q, want %q", got, want)
	}
	if got := a.ok("MYRIGHTS inbox"); !slices.Equal(got, []string{"* MYRIGHTS INBOX lrswipkxteacd"}) {
		t.Errorf("alice MYRIGHTS INBOX = %q", got)
	}
	// RFC 4314 3.4 / 3.7: the owner is always granted everything; anyone else may be
	// granted each right alone.
	want = []string{"* LISTRIGHTS Team alice@example.com lrswipkxteacd"}
	if got := a.ok("LISTRIGHTS Team alice@example.com"); !slices.Equal(got, want) {
		t.Errorf("LISTRIGHTS owner = %q, want %q", got, want)
	}
	want = []string{`* LISTRIGHTS Team bob@example.com "" l r s w i p k x t e a c d`}
	if got := a.ok("LISTRIGHTS Team bob@example.com"); !slices.Equal(got, want) {
		t.Errorf("LISTRIGHTS = %q, want %q", got, want)
	}
	// A negative entry takes rights away from what the others grant (RFC 4314 2).
	a.ok(`SETACL Team -bob@example.com r`)
	if got := b.ok("MYRIGHTS " + team); !slices.Equal(got, []string{`* MYRIGHTS "Other Users/alice@example.com/Team" lwxc`}) {
		t.Errorf("bob MYRIGHTS with -bob r = %q", got)
	}
	a.ok(`DELETEACL Team -bob@example.com`)

	// Without the a right bob may read rights but not see or change the ACL (RFC 4314 4).
	for _, cmd := range []string{"GETACL " + team, "LISTRIGHTS " + team + " anyone", "SETACL " + team + " anyone lr", "DELETEACL " + team + " anyone"} {
		b.expect(cmd, "NO [NOPERM]")
	}
	grant(a, "lra")
	b.ok("SETACL " + team + " carol@example.com lr")
	if got := b.ok("GETACL " + team); len(got) != 1 || !strings.Contains(got[0], " carol@example.com lr") {
		t.Errorf("bob GETACL with a = %q", got)
	}
	b.ok("DELETEACL " + team + " carol@example.com")

	// Bad input.
	a.expect("SETACL Team bob@example.com lrz", "BAD")  // RFC 4314 3.1: unknown right
	a.expect("SETACL Team bob@example.com +lr9", "BAD") // no implementation-defined rights
	a.expect("SETACL Team alice@example.com lr", "NO [CANNOT]")
	a.expect("DELETEACL Team -alice@example.com", "NO [CANNOT]")
	a.expect("SETACL Team eve@other.org lr", "NO") // another tenant's account (RFC 4314 2)
	a.expect("SETACL Team nobody lr", "NO")
	a.expect("SETACL Nope bob@example.com lr", "NO [NONEXISTENT]")
	a.expect("GETACL Nope", "NO [NONEXISTENT]")
	if got := a.ok("GETACL Team"); len(got) != 1 || strings.Contains(got[0], "other.org") || strings.Contains(got[0], "nobody") {
		t.Errorf("GETACL after refused SETACLs = %q", got)
	}
}

func TestACLSelectRights(t *testing.T) {
	_, a, b := teamFixture(t)
	a.ok("SELECT Team")
	a.ok(`STORE 1 +FLAGS ($Work)`)
	grant(a, "l")
	// RFC 4314 4: SELECT, EXAMINE and STATUS need r; with l the mailbox is visible.
	b.expect("SELECT "+team, "NO [NOPERM]")
	b.expect("EXAMINE "+team, "NO [NOPERM]")
	b.expect("STATUS "+team+" (MESSAGES)", "NO [NOPERM]")
	if got := b.ok(`LIST "" ` + team); !slices.Equal(got, []string{`* LIST (\HasNoChildren) "/" ` + team}) {
		t.Errorf("LIST with l = %q", got)
	}
	// RFC 4314 5.2: read-write with any of i e s w t; PERMANENTFLAGS lists what the rights
	// allow setting (RFC 4314 4).
	for _, tc := range []struct{ rights, tagged, permanent string }{
		{"lr", "OK [READ-ONLY]", `()`},
		{"lrs", "OK [READ-WRITE]", `(\Seen)`},
		{"lrt", "OK [READ-WRITE]", `(\Deleted)`},
		{"lrw", "OK [READ-WRITE]", `(\Answered \Flagged \Draft $Work \*)`},
		{"lri", "OK [READ-WRITE]", `()`},
		{"lre", "OK [READ-WRITE]", `()`},
		{"lrswt", "OK [READ-WRITE]", `(\Answered \Flagged \Deleted \Seen \Draft $Work \*)`},
	} {
		grant(a, tc.rights)
		untagged := b.expect("SELECT "+team, tc.tagged)
		if !contains(untagged, "* OK [PERMANENTFLAGS "+tc.permanent+"]") {
			t.Errorf("%s: SELECT = %q, want PERMANENTFLAGS %s", tc.rights, untagged, tc.permanent)
		}
		b.ok("UNSELECT")
	}

	// FETCH BODY[] sets \Seen only with s (RFC 4314 4).
	grant(a, "lrw")
	b.ok("SELECT " + team)
	if got := b.ok("FETCH 1 (BODY[])"); contains(got, `\Seen`) {
		t.Errorf("FETCH BODY[] without s = %q", got)
	}
	if got := b.ok("FETCH 1 (FLAGS)"); contains(got, `\Seen`) {
		t.Errorf("FLAGS after FETCH BODY[] without s = %q", got)
	}
	grant(a, "lrws")
	if got := b.ok("FETCH 1 (BODY[])"); !contains(got, `\Seen`) {
		t.Errorf("FETCH BODY[] with s = %q", got)
	}
}

func TestACLStoreExpunge(t *testing.T) {
	_, a, b := teamFixture(t)
	a.ok("SELECT Team")
	grant(a, "lrs")
	b.ok("SELECT " + team)
	// RFC 4314 4: flags bob may not change are left alone, and STORE fails only when he
	// may change none of them.
	if got := b.ok(`STORE 1 +FLAGS (\Seen \Flagged)`); !slices.Equal(got, []string{`* 1 FETCH (FLAGS (\Seen))`}) {
		t.Errorf("STORE with s = %q", got)
	}
	b.expect(`STORE 1 +FLAGS (\Flagged)`, "NO [NOPERM]")
	b.expect(`STORE 1 -FLAGS ($Work \Deleted)`, "NO [NOPERM]")
	b.ok(`STORE 1 FLAGS ()`)
	if got := a.ok("FETCH 1 (FLAGS)"); contains(got, `\Flagged`) {
		t.Errorf("alice sees %q", got)
	}

	// \Deleted needs t, EXPUNGE e; CLOSE without e closes without expunging.
	grant(a, "lrst")
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.expect("EXPUNGE", "NO [NOPERM]")
	b.expect("UID EXPUNGE 1", "NO [NOPERM]")
	b.ok("CLOSE")
	if got := linesWith(a.ok("STATUS Team (MESSAGES)"), "* STATUS"); !slices.Equal(got, []string{"* STATUS Team (MESSAGES 1)"}) {
		t.Errorf("after bob's CLOSE without e: %q", got)
	}
	grant(a, "lrste")
	b.ok("SELECT " + team)
	if got := b.ok("EXPUNGE"); !slices.Equal(got, []string{"* 1 EXPUNGE"}) {
		t.Errorf("EXPUNGE with e = %q", got)
	}
}

func TestACLAppendCopyMove(t *testing.T) {
	_, a, b := teamFixture(t)
	grant(a, "lr")
	msg := testMessage("from bob", "hello")
	// RFC 4314 4: APPEND needs i; flags bob may not set are dropped.
	if tagged := b.rawAppend(team, msg); !strings.HasPrefix(tagged, "NO [NOPERM]") {
		t.Errorf("APPEND without i: %s", tagged)
	}
	grant(a, "lris")
	b.write("ap APPEND " + team + ` (\Seen \Flagged) {` + strconv.Itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	if _, tagged := b.until("ap"); !strings.HasPrefix(tagged, "OK [APPENDUID") {
		t.Fatalf("APPEND with i: %s", tagged)
	}
	a.ok("SELECT Team")

	// COPY needs r on the source and i on the target, which may be another owner's.
	grant(a, "lr")
	b.ok("EXAMINE " + team)
	if untagged, tagged := b.cmd("COPY 1 INBOX"); !strings.HasPrefix(tagged, "OK [COPYUID") {
		t.Errorf("COPY to bob's INBOX: %s %q", tagged, untagged)
	}
	b.ok("SELECT INBOX")
	b.expect("COPY 1 "+team, "NO [NOPERM]")
	grant(a, "lri")
	b.ok("COPY 1 " + team)
	if got := linesWith(a.ok("STATUS Team (MESSAGES)"), "* STATUS"); !slices.Equal(got, []string{"* STATUS Team (MESSAGES 3)"}) {
		t.Errorf("after bob's COPY: %q", got)
	}

	// A drop box: i alone takes APPEND and COPY (RFC 4314 4), but SELECT and STATUS need
	// r, and LIST does not show it without l.
	grant(a, "i")
	if tagged := b.rawAppend(team, msg); !strings.HasPrefix(tagged, "OK [APPENDUID") {
		t.Errorf("APPEND with i alone: %s", tagged)
	}
	b.ok("SELECT INBOX")
	b.ok("COPY 1 " + team)
	b.expect("STATUS "+team+" (MESSAGES)", "NO [NOPERM]")
	b.expect("EXAMINE "+team, "NO [NOPERM]")
	if got := b.ok(`LIST "" "Other Users/*"`); contains(got, "Team") {
		t.Errorf("LIST shows a mailbox without l: %q", got)
	}
	if got := linesWith(a.ok("STATUS Team (MESSAGES)"), "* STATUS"); !slices.Equal(got, []string{"* STATUS Team (MESSAGES 5)"}) {
		t.Errorf("after bob's drop-box APPEND and COPY: %q", got)
	}

	// MOVE also needs t and e on the source.
	grant(a, "lrsi")
	b.ok("SELECT " + team)
	b.expect("MOVE 1 INBOX", "NO [NOPERM]")
	grant(a, "lrite")
	b.ok("SELECT " + team)
	if got := b.ok("MOVE 1 INBOX"); !contains(got, "* 1 EXPUNGE") {
		t.Errorf("MOVE = %q", got)
	}
	if got := b.ok("STATUS INBOX (MESSAGES)"); !slices.Equal(got, []string{"* STATUS INBOX (MESSAGES 2)"}) {
		t.Errorf("bob's INBOX after MOVE: %q", got)
	}
}

func TestACLMailboxRights(t *testing.T) {
	srv, a, b := teamFixture(t)
	a.ok("CREATE Team/Old")
	grant(a, "lr")
	a.ok(`SETACL Team/Old bob@example.com lr`)
	// RFC 4314 4: CREATE needs k on the parent, DELETE x, RENAME x and k on the new parent.
	b.expect(`CREATE "Other Users/alice@example.com/Team/Sub"`, "NO [NOPERM]")
	b.expect(`DELETE "Other Users/alice@example.com/Team/Old"`, "NO [NOPERM]")
	grant(a, "lrk")
	b.ok(`CREATE "Other Users/alice@example.com/Team/Sub"`)
	b.expect(`RENAME "Other Users/alice@example.com/Team/Old" "Other Users/alice@example.com/Team/New"`, "NO [NOPERM]")
	a.ok(`SETACL Team/Old bob@example.com lrx`)
	b.ok(`RENAME "Other Users/alice@example.com/Team/Old" "Other Users/alice@example.com/Team/New"`)
	b.ok(`DELETE "Other Users/alice@example.com/Team/New"`)
	if got := a.ok(`LIST "" "Team/*"`); !slices.Equal(got, []string{`* LIST (\HasNoChildren) "/" Team/Sub`}) {
		t.Errorf("alice's Team/* = %q", got)
	}
	// Top levels of another owner's space cannot be created, whether the owner exists or
	// not (RFC 4314 6), nor anything for another tenant.
	for _, name := range []string{
		"Other Users/alice@example.com/Top", "Other Users/nobody@example.com/Top", "Shared/Top",
		"Other Users/eve@other.org/Top", "Other Users/alice@example.com/Secret/Sub",
	} {
		b.expect(`CREATE "`+name+`"`, "NO [NOPERM]")
	}
	e := loginRawAs(t, srv, eve)
	e.expect(`CREATE "Other Users/alice@example.com/Team/Sub2"`, "NO [NOPERM]")
}

func TestACLRevokeInOpenSession(t *testing.T) {
	_, a, b := teamFixture(t)
	grant(a, "lrsw")
	b.ok("SELECT " + team)
	b.ok(`STORE 1 +FLAGS (\Flagged)`)
	// A revoked right applies from bob's next command (issue 7, RFC 4314 4).
	a.ok("SETACL Team bob@example.com -w")
	b.expect(`STORE 1 +FLAGS (\Answered)`, "NO [NOPERM]")
	b.ok(`STORE 1 +FLAGS (\Seen)`)
	// Without r bob cannot stay in the mailbox: the session ends as when it is deleted.
	a.ok("SETACL Team bob@example.com -r")
	b.writeExpect("n NOOP\r\n", "* BYE ")
}

// TestACLRevokeInIdle: a session in IDLE learns of a revoked right as well: w at its
// next command, r at once (the metadata service ends its change feed).
func TestACLRevokeInIdle(t *testing.T) {
	_, a, b := teamFixture(t)
	grant(a, "lrsw")
	b.ok("SELECT " + team)
	b.startIdle("i")
	a.ok("SETACL Team bob@example.com -w")
	a.ok("SELECT Team")
	a.ok(`STORE 1 +FLAGS (\Answered)`)
	// Bob's SELECT was the first after delivery: the message is \Recent in his session.
	if got := b.readLine(); got != `* 1 FETCH (FLAGS (\Answered \Recent))` {
		t.Errorf("bob in IDLE after losing w: %q", got)
	}
	b.write("DONE\r\n")
	b.until("i")
	b.expect(`STORE 1 +FLAGS (\Flagged)`, "NO [NOPERM]")
	b.startIdle("j")
	a.ok("SETACL Team bob@example.com -r")
	if got := b.readLine(); !strings.HasPrefix(got, "* BYE ") {
		t.Errorf("bob in IDLE after losing r: %q", got)
	}
}

// TestACLPrivateSeen: in a mailbox of another owner \Seen is kept per user; the other
// flags are shared, and both users' sessions get their updates (issue 7).
func TestACLPrivateSeen(t *testing.T) {
	_, a, b := teamFixture(t)
	if tagged := a.rawAppend("Team", testMessage("second", "two")); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("APPEND: %s", tagged)
	}
	grant(a, "lrsw")
	a.ok("SELECT Team")
	b.ok("SELECT " + team)
	b.startIdle("i")
	a.ok(`STORE 1 +FLAGS.SILENT (\Seen \Flagged)`)
	if got := b.readLine(); got != `* 1 FETCH (FLAGS (\Flagged))` {
		t.Errorf("bob in IDLE after alice's STORE: %q", got)
	}
	b.write("DONE\r\n")
	b.until("i")
	b.ok(`STORE 2 +FLAGS.SILENT (\Seen)`)
	if got := a.ok("NOOP"); len(got) != 0 {
		t.Errorf("alice learns of bob's \\Seen: %q", got)
	}
	for _, tc := range []struct {
		who  *rawConn
		name string
		seen string // the message that has the user's \Seen
	}{{a, "Team", "* 1 "}, {b, team, "* 2 "}} {
		for _, l := range tc.who.ok("FETCH 1:2 (FLAGS)") {
			if strings.HasPrefix(l, tc.seen) != strings.Contains(l, `\Seen`) {
				t.Errorf("%s: FETCH FLAGS line %q; \\Seen should be on %q only", tc.name, l, tc.seen)
			}
		}
		if got := linesWith(tc.who.ok("STATUS "+tc.name+" (UNSEEN)"), "* STATUS"); len(got) != 1 || !strings.HasSuffix(got[0], "(UNSEEN 1)") {
			t.Errorf("%s: STATUS UNSEEN = %q", tc.name, got)
		}
	}
	if got := a.ok("FETCH 1 (FLAGS)"); len(got) != 1 || !strings.Contains(got[0], `\Flagged`) {
		t.Errorf("alice FETCH 1 = %q", got)
	}

	// A \Seen that bob gives at APPEND is his own as well.
	grant(a, "lrswi")
	msg := testMessage("third", "three")
	b.write("ap APPEND " + team + ` (\Seen \Flagged) {` + strconv.Itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	if _, tagged := b.until("ap"); !strings.HasPrefix(tagged, "OK [APPENDUID") {
		t.Fatalf("APPEND: %s", tagged)
	}
	a.ok("SELECT Team")
	if got := linesWith(a.ok("UID FETCH 3 (FLAGS)"), "UID 3"); len(got) != 1 || strings.Contains(got[0], `\Seen`) || !strings.Contains(got[0], `\Flagged`) {
		t.Errorf("alice sees bob's APPEND with %q", got)
	}
	if got := linesWith(b.ok("UID FETCH 3 (FLAGS)"), "UID 3"); len(got) != 1 || !strings.Contains(got[0], `\Seen`) {
		t.Errorf("bob sees his APPEND with %q", got)
	}
}

// rightsEvents counts, through the engine's test hook, the commands that read the
// session's rights from the metadata service instead of its shared view (acl.go), and can
// slow the view's feed.
type rightsEvents struct {
	reads    atomic.Int32
	slowFeed atomic.Bool
}

func watchRights(t *testing.T) *rightsEvents {
	ev := &rightsEvents{}
	imap.SetTestHook(t, func(point string) {
		switch point {
		case "rights read":
			ev.reads.Add(1)
		case "feed":
			if ev.slowFeed.Load() {
				time.Sleep(300 * time.Millisecond)
			}
		}
	})
	return ev
}

// settled sends NOOPs until one reads no rights from the metadata service: the view's feed
// has delivered the rights as of the latest ACL version this frontend knows.
func (ev *rightsEvents) settled(t *testing.T, rc *rawConn) {
	t.Helper()
	testwait.Until(t, 5*time.Second, func() error {
		before := ev.reads.Load()
		rc.ok("NOOP")
		if ev.reads.Load() != before {
			return errors.New("the session still reads its rights from the metadata service")
		}
		return nil
	})
}

// TestACLRightsFromView: in another owner's mailbox the session's rights come from its
// shared view, kept current by the change feed, with no metadata call per command (issue
// 14); a right revoked through this frontend still applies at the next command, also while
// the view's feed lags (the session reads the mailbox then), and one revoked outside the
// frontend once the feed brings it (RFC 4314 4).
func TestACLRightsFromView(t *testing.T) {
	ev := watchRights(t)
	srv, a, b := teamFixture(t)
	grant(a, "lrsw")
	b.ok("SELECT " + team)
	ev.settled(t, b)
	before := ev.reads.Load()
	for _, line := range []string{"NOOP", "FETCH 1 (FLAGS)", `STORE 1 +FLAGS (\Flagged)`, "SEARCH FLAGGED", "FETCH 1 (ENVELOPE)", `STORE 1 -FLAGS (\Flagged)`, "CHECK"} {
		b.ok(line)
	}
	if n := ev.reads.Load() - before; n != 0 {
		t.Errorf("%d rights reads from the metadata service in 7 commands, want 0", n)
	}

	// Through this frontend, with the feed held back: the next command reads the rights.
	ev.slowFeed.Store(true)
	a.ok("SETACL Team " + bob + " -w")
	before = ev.reads.Load()
	if _, tagged := b.cmd(`STORE 1 +FLAGS (\Answered)`); tagged != "NO [NOPERM] STORE of these flags needs rights the session lacks" {
		t.Errorf("STORE without w: %q, want the session's own refusal", tagged)
	}
	if ev.reads.Load() == before {
		t.Error("the session used its view's rights while the view lagged behind a SETACL of this frontend")
	}
	ev.slowFeed.Store(false)
	ev.settled(t, b)
	a.ok("SETACL Team " + bob + " +w")
	b.ok(`STORE 1 +FLAGS (\Answered)`)

	// Outside the frontend (an admin call, as `strata acl` makes): the feed brings it.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := srv.Metadata().SetAcl(ctx, &metadatapb.SetAclRequest{RequestId: "admin-minus-w", Account: alice, Name: "Team", Identifier: bob, Rights: "w", Mode: metadatapb.AclMode_ACL_MODE_REMOVE}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 5*time.Second, func() error {
		if _, tagged := b.cmd(`STORE 1 +FLAGS (\Draft)`); tagged != "NO [NOPERM] STORE of these flags needs rights the session lacks" {
			return fmt.Errorf("STORE after the admin's -w: %q", tagged)
		}
		return nil
	})
	// Without r the feed ends, and so does the session, at its next command.
	if _, err := srv.Metadata().SetAcl(ctx, &metadatapb.SetAclRequest{RequestId: "admin-l", Account: alice, Name: "Team", Identifier: bob, Rights: "l"}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 5*time.Second, func() error {
		b.write("n NOOP\r\n")
		for {
			switch l := b.readLine(); {
			case strings.HasPrefix(l, "* BYE "):
				return nil
			case strings.HasPrefix(l, "n "):
				return fmt.Errorf("NOOP after the admin took r: %q", l)
			}
		}
	})
}
