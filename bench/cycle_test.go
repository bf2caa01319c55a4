package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

// TestCycleAgainstEmbeddedServer runs the cycle scenario against a real server, with one
// client per user and with clients sharing mailboxes, and expects every command of every
// session to verify, each step counted once per session, and each INBOX back at its
// populated size.
func TestCycleAgainstEmbeddedServer(t *testing.T) {
	const password, messages = "cycle-pw", 20
	users := UserNames("cycle%d@example.com", 2)
	srv := startWithUsers(t, embedded.Config{}, users, password)
	ctx := context.Background()
	corpus := Corpus{Seed: 4, MaxSize: 32 << 10}
	rep, err := Populate(ctx, PopulateConfig{Addr: srv.IMAPAddr(), Users: users, Password: password,
		Messages: messages, Conns: 2, Window: 8, Corpus: corpus})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, OpAppend)

	for _, clients := range []int{2, 5} {
		rep, err := RunCycle(ctx, Config{Addr: srv.IMAPAddr(), Users: users, Password: password,
			Clients: clients, Duration: time.Second, Seed: uint64(clients), Corpus: corpus})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Scenario != "cycle" || rep.Profile != CycleSteps(DefaultCycleRange) {
			t.Errorf("scenario %q, profile %q", rep.Scenario, rep.Profile)
		}
		var table strings.Builder
		rep.WriteTable(&table)
		t.Logf("%d clients:\n%s", clients, table.String())
		if rep.Errors() != 0 {
			t.Fatalf("%d clients: %d errors: %v", clients, rep.Errors(), rep.Total.Errors)
		}
		sessions := uint64(rep.Figures["sessions"])
		if sessions < uint64(clients) {
			t.Errorf("%d clients completed %d sessions", clients, sessions)
		}
		counted := map[string]uint64{}
		for _, s := range rep.Ops {
			counted[s.Op] = s.Count
		}
		for _, step := range cycleSteps {
			if counted[step.op] != sessions {
				t.Errorf("%d clients: %d %s operations in %d sessions", clients, counted[step.op], step.op, sessions)
			}
		}
		if len(counted) != len(cycleSteps) {
			t.Errorf("operations %v, want the %d steps", counted, len(cycleSteps))
		}
		if rep.Total.Count != sessions*uint64(len(cycleSteps)) {
			t.Errorf("total %d operations in %d sessions", rep.Total.Count, sessions)
		}
		for _, u := range users {
			if n := inboxCount(t, srv, u, password); n != messages {
				t.Errorf("after %d clients: %s's INBOX holds %d messages, want %d", clients, u, n, messages)
			}
		}
	}
}

// TestCycleRefusesEmptyMailbox: a cycle against a mailbox that was never populated counts
// its reads as errors instead of skipping them.
func TestCycleRefusesEmptyMailbox(t *testing.T) {
	users := []string{"empty@example.com"}
	srv := startWithUsers(t, embedded.Config{}, users, "pw")
	rep, err := RunCycle(context.Background(), Config{Addr: srv.IMAPAddr(), Users: users, Password: "pw",
		Clients: 1, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Figures["sessions"] != 0 || rep.Total.Errors["verify"] == 0 {
		t.Errorf("sessions %v, errors %v; want no session and verify errors", rep.Figures["sessions"], rep.Total.Errors)
	}
	for _, s := range rep.Ops {
		if s.Op == OpFetchFlagsEnvelope && (s.Count != 0 || s.ErrorCount() == 0 || !strings.Contains(s.FirstErr, "empty")) {
			t.Errorf("FETCH of an empty mailbox: %d successes, first error %q", s.Count, s.FirstErr)
		}
	}
}
