package bench

import (
	"context"
	"regexp"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// startLMTP starts `strata serve`'s components with an LMTP listener and creates users.
func startLMTP(t *testing.T, users []string, password string) *embedded.Server {
	t.Helper()
	return startWithUsers(t, embedded.Config{LMTPListen: "127.0.0.1:0"}, users, password)
}

// startWithUsers starts `strata serve`'s components with cfg and creates users.
func startWithUsers(t *testing.T, cfg embedded.Config, users []string, password string) *embedded.Server {
	t.Helper()
	srv := embeddedtest.Start(t, cfg)
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := CreateUsers(context.Background(), metadatapb.NewMetadataClient(conn), users, password, 0); err != nil {
		t.Fatal(err)
	}
	return srv
}

var statusMessages = regexp.MustCompile(`\(MESSAGES (\d+)\)`)

// inboxCount asks the server over IMAP how many messages user's INBOX holds.
func inboxCount(t *testing.T, srv *embedded.Server, user, password string) int {
	t.Helper()
	c, err := Dial(srv.IMAPAddr(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, password); err != nil {
		t.Fatal(err)
	}
	res, err := c.Exec("STATUS INBOX (MESSAGES)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Untagged {
		if m := statusMessages.FindStringSubmatch(r.Text); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	t.Fatalf("no STATUS MESSAGES for %s in %v", user, res.Untagged)
	return 0
}

// TestLMTPDeliversCount delivers a fixed count of messages with several recipients over
// several connections to a real LMTP listener, and checks the report and each INBOX.
func TestLMTPDeliversCount(t *testing.T) {
	const password = "secret"
	users := UserNames("lmtp%d@example.com", 5)
	srv := startLMTP(t, users, password)
	const count, per = 24, 3
	rep, err := LMTP(context.Background(), LMTPConfig{Addr: srv.LMTPAddr(), Recipients: users, PerMessage: per,
		Conns: 4, Count: count, Corpus: Corpus{Seed: 5, MaxSize: 64 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, OpDeliver, OpLHLO)
	var delivered uint64
	for _, s := range rep.Ops {
		if s.Op == OpDeliver {
			delivered = s.Count
		}
	}
	if delivered != count {
		t.Errorf("report counts %d deliveries, want %d", delivered, count)
	}
	if got := rep.Figures["recipients_delivered"]; got != count*per {
		t.Errorf("report counts %v recipients delivered, want %d", got, count*per)
	}
	// Message n goes to users (n*per+j) mod len(users), j < per.
	want := make([]int, len(users))
	for n := 0; n < count; n++ {
		for j := 0; j < per; j++ {
			want[(n*per+j)%len(users)]++
		}
	}
	for i, u := range users {
		if got := inboxCount(t, srv, u, password); got != want[i] {
			t.Errorf("%s: INBOX holds %d messages, want %d", u, got, want[i])
		}
	}
}

// TestLMTPCountsRefusals delivers to an address that has no account: every transaction
// must be an error of kind smtp-5xx (RFC 2033 4.2, 550 5.1.1), none a success.
func TestLMTPCountsRefusals(t *testing.T) {
	srv := startLMTP(t, []string{"known@example.com"}, "secret")
	rep, err := LMTP(context.Background(), LMTPConfig{Addr: srv.LMTPAddr(), Recipients: []string{"nobody@example.com"},
		Conns: 1, Count: 3, Corpus: Corpus{Seed: 1, MaxSize: 16 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Ops {
		if s.Op != OpDeliver {
			continue
		}
		if s.Count != 0 || s.Errors["smtp-5xx"] != 3 {
			t.Errorf("deliver: %d successes, errors %v; want 0 and 3 smtp-5xx", s.Count, s.Errors)
		}
		return
	}
	t.Errorf("no deliver figures in %+v", rep.Ops)
}

func TestLMTPConfigErrors(t *testing.T) {
	for _, cfg := range []LMTPConfig{
		{Addr: "127.0.0.1:1", Recipients: []string{"a@x"}, Count: 1},                          // no connections
		{Addr: "127.0.0.1:1", Recipients: []string{"a@x"}, PerMessage: 2, Conns: 1, Count: 1}, // too few users
		{Addr: "127.0.0.1:1", Recipients: []string{"a@x"}, Conns: 1},                          // neither count nor duration
	} {
		if _, err := LMTP(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
