package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

func startEmbedded(t *testing.T) *embedded.Server {
	t.Helper()
	srv, err := embedded.Start(context.Background(), embedded.Config{
		DataDir:    t.TempDir(),
		IMAPListen: "127.0.0.1:0",
		GRPCListen: "127.0.0.1:0",
		Demo:       true,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func checkReport(t *testing.T, rep *Report, ops ...string) {
	t.Helper()
	var table strings.Builder
	rep.WriteTable(&table)
	t.Log("\n" + table.String())
	if rep.Errors() != 0 {
		t.Errorf("%d errors: %v", rep.Errors(), rep.Total.Errors)
	}
	counted := map[string]uint64{}
	for _, s := range rep.Ops {
		counted[s.Op] = s.Count
	}
	for _, op := range ops {
		if counted[op] == 0 {
			t.Errorf("no successful %s", op)
		}
	}
}

// TestAgainstEmbeddedServer populates the demo account, then runs the mixed workload for
// about 2 s, the big-mailbox sequence and a few idle connections, and expects every
// answer to verify.
func TestAgainstEmbeddedServer(t *testing.T) {
	srv := startEmbedded(t)
	ctx := context.Background()
	users := []string{embedded.DemoAccount}
	corpus := Corpus{Seed: 3, MaxSize: 64 << 10}

	rep, err := Populate(ctx, PopulateConfig{Addr: srv.IMAPAddr(), Users: users, Password: embedded.DemoPassword,
		Messages: 60, Conns: 2, Window: 8, Corpus: corpus})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, "append")
	if rep.Total.Count != 60 {
		t.Errorf("populated %d messages, want 60", rep.Total.Count)
	}

	profile, err := ParseProfile(DefaultProfile + ",") // every operation
	if err != nil {
		t.Fatal(err)
	}
	// The mix is random: on a loaded machine 2 s may draw no SEARCH at all, so rounds with
	// the next seeds run until every operation has been answered (each round's answers must
	// all verify).
	want := []string{OpLogin, OpSelect, OpFetchFlagsEnvelope, OpFetchBody, OpStore, OpAppend, OpSearch}
	seen := map[string]uint64{}
	for round := uint64(0); round < 10 && len(seen) < len(want); round++ {
		rep, err = Run(ctx, Config{Addr: srv.IMAPAddr(), Users: users, Password: embedded.DemoPassword,
			Clients: 3, Duration: 2 * time.Second, Profile: profile, Seed: 5 + round, Corpus: corpus, IdleHold: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep)
		for _, s := range rep.Ops {
			if slices.Contains(want, s.Op) && s.Count > 0 {
				seen[s.Op] += s.Count
			}
		}
	}
	for _, op := range want {
		if seen[op] == 0 {
			t.Errorf("no successful %s in 10 rounds", op)
		}
	}

	rep, err = BigMailbox(ctx, BigMailboxConfig{Addr: srv.IMAPAddr(), User: users[0], Password: embedded.DemoPassword, Repeat: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, "select", "fetch-all-flags", "search-flag", "search-header", "uid-fetch-last50-envelope")

	rep, err = Resync(ctx, ResyncConfig{Addr: srv.IMAPAddr(), User: users[0], Password: embedded.DemoPassword, Changes: 3, Rounds: 2, FullResync: true})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, "full-resync-fetch", "select-qresync", "uid-fetch-changedsince")
	if rep.Figures["select_qresync_bytes"] <= 0 || rep.Figures["select_qresync_bytes"] >= rep.Figures["full_resync_fetch_bytes"] {
		t.Errorf("resync figures %v", rep.Figures)
	}

	rep, err = Idle(ctx, IdleConfig{Addr: srv.IMAPAddr(), Users: users, Password: embedded.DemoPassword,
		Connections: 4, Parallel: 2, Hold: 10 * time.Millisecond, ServerPID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, "connect-login-select-idle", "done")
	if rep.Figures["connections_idling"] != 4 || rep.Figures["server_rss_after_mib"] <= 0 || rep.Figures["setup_seconds"] <= 0 {
		t.Errorf("figures %v", rep.Figures)
	}
}

// TestLoginFirst: with LoginFirst every client logs in before the clock starts, so a run of
// APPENDs only reports APPENDs and no LOGIN. The server runs in this process (ServerPID).
func TestLoginFirst(t *testing.T) {
	srv := startEmbedded(t)
	profile, err := ParseProfile("append=1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Addr: srv.IMAPAddr(), Users: []string{embedded.DemoAccount}, Password: embedded.DemoPassword,
		Clients: 3, Duration: time.Second, Profile: profile, Seed: 1, Corpus: Corpus{Seed: 1, MaxSize: 8 << 10},
		ServerPID: os.Getpid()}
	for _, loginFirst := range []bool{false, true} {
		cfg.LoginFirst = loginFirst
		rep, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep)
		var logins, appends uint64
		for _, s := range rep.Ops {
			switch s.Op {
			case OpLogin:
				logins = s.Count
			case OpAppend:
				appends = s.Count
			}
		}
		wantLogins := uint64(3)
		if loginFirst {
			wantLogins = 0
		}
		if logins != wantLogins || appends == 0 {
			t.Errorf("LoginFirst %v: %d LOGINs and %d APPENDs timed, want %d LOGINs and some APPENDs", loginFirst, logins, appends, wantLogins)
		}
		f := rep.Figures
		if f["server_cpu_us_per_op"] <= 0 || f["client_cpu_us_per_op"] <= 0 || f["server_cpu_percent"] <= 0 {
			t.Errorf("CPU figures %v: want the server's (this process tree) and the client's above zero", f)
		}
	}
}

// TestVerificationCatchesWrongAnswers feeds the checks answers that are well-formed but
// wrong, so that they can never pass as successes.
func TestVerificationCatchesWrongAnswers(t *testing.T) {
	s := &Session{Exists: 5}
	res := &Result{Untagged: []*Response{
		{Text: `* 2 FETCH (UID 7 FLAGS (\Seen))`},
		{Text: `* 3 FETCH (UID 8 FLAGS ())`},
	}}
	fetches, _, err := s.Absorb(res)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkFetched(fetches, 2, 3, "UID", "FLAGS"); err != nil {
		t.Errorf("right answer refused: %v", err)
	}
	if _, err := checkFetched(fetches, 2, 4, "UID", "FLAGS"); ErrorKind(err) != "verify" {
		t.Errorf("missing message 4 accepted: %v", err)
	}
	if _, err := checkFetched(fetches, 2, 3, "UID", "ENVELOPE"); ErrorKind(err) != "verify" {
		t.Errorf("missing ENVELOPE accepted: %v", err)
	}
	if _, _, err := s.Absorb(&Result{Untagged: []*Response{{Text: "* 9 FETCH (FLAGS ())"}}}); ErrorKind(err) != "protocol" {
		t.Errorf("FETCH beyond EXISTS accepted: %v", err)
	}
	if err := checkSearch([]uint32{4, 4}, s.Exists); ErrorKind(err) != "verify" {
		t.Errorf("duplicate SEARCH result accepted: %v", err)
	}
	if err := checkSearch([]uint32{1, 2, 3, 4, 5, 6}, s.Exists); ErrorKind(err) != "verify" {
		t.Errorf("more SEARCH results than messages accepted: %v", err)
	}
	// Message 4 is gone after EXPUNGE 3 and EXPUNGE 3 (the second removes what was 4);
	// message 5 is not, and is then message 3.
	twice := &Result{Untagged: []*Response{{Text: "* 3 EXPUNGE"}, {Text: "* 3 EXPUNGE"}, {Text: "* 1 EXISTS"}}}
	if gone, _ := expunged(twice, 4); !gone {
		t.Error("message 4 not seen expunged by EXPUNGE 3, EXPUNGE 3")
	}
	if gone, seq := expunged(twice, 5); gone || seq != 3 {
		t.Errorf("message 5 after EXPUNGE 3, EXPUNGE 3: gone %v, now %d", gone, seq)
	}
	if gone, seq := expunged(&Result{Untagged: []*Response{{Text: "* 6 EXPUNGE"}}}, 5); gone || seq != 5 {
		t.Errorf("message 5 after EXPUNGE 6: gone %v, now %d", gone, seq)
	}
	if gone, _ := expunged(&Result{Untagged: []*Response{{Text: "* 6 EXPUNGE"}}}, 0); !gone {
		t.Error("an EXPUNGE does not explain a mismatch about no message in particular")
	}
	if _, err := appendUID("OK Append completed"); ErrorKind(err) != "verify" {
		t.Errorf("APPEND without APPENDUID accepted: %v", err)
	}
	if uid, err := appendUID("OK [APPENDUID 38505 3955] APPEND completed"); err != nil || uid != 3955 {
		t.Errorf("APPENDUID parsed as %d, %v", uid, err)
	}
	if err := checkAppendUIDs("OK [APPENDUID 38505 3955:3957,3960] APPEND completed", 4); err != nil {
		t.Errorf("MULTIAPPEND's APPENDUID of 4 UIDs refused: %v", err)
	}
	if err := checkAppendUIDs("OK [APPENDUID 38505 3955:3957] APPEND completed", 4); ErrorKind(err) != "verify" {
		t.Errorf("APPENDUID of 3 UIDs for 4 messages accepted: %v", err)
	}
	if err := checkAppendUIDs("OK [APPENDUID 38505 *] APPEND completed", 2); ErrorKind(err) != "verify" {
		t.Errorf("APPENDUID with * accepted: %v", err)
	}
}

// TestPopulateMultiappend fills a mailbox with MULTIAPPEND batches over two connections and
// checks the mailbox holds every message once with the corpus's flags, and that the
// big-mailbox sequence reports its first round apart.
func TestPopulateMultiappend(t *testing.T) {
	srv := startEmbedded(t)
	ctx := context.Background()
	const messages = 130
	corpus := Corpus{Seed: 9, MaxSize: 16 << 10}
	rep, err := Populate(ctx, PopulateConfig{Addr: srv.IMAPAddr(), Users: []string{embedded.DemoAccount},
		Password: embedded.DemoPassword, Messages: messages, Conns: 2, Window: 2, Batch: 25, Corpus: corpus})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, "append")
	if rep.Total.Count != messages {
		t.Errorf("populated %d messages, want %d", rep.Total.Count, messages)
	}

	want := map[string]int{}
	for i := 0; i < messages; i++ {
		for _, f := range corpus.Flags(0, i) {
			want[f]++
		}
	}
	c, err := Dial(srv.IMAPAddr(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword); err != nil {
		t.Fatal(err)
	}
	s := &Session{Conn: c}
	if err := s.Select("INBOX"); err != nil {
		t.Fatal(err)
	}
	if s.Exists != messages {
		t.Fatalf("INBOX holds %d messages, want %d", s.Exists, messages)
	}
	_, fetches, _, err := s.Run("FETCH 1:* (FLAGS)")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range fetches {
		for _, flag := range f.Items["FLAGS"].List {
			got[flag.Atom]++
		}
	}
	for _, flag := range []string{`\Seen`, `\Answered`, `\Flagged`} {
		if got[flag] != want[flag] {
			t.Errorf("%s on %d messages, want %d", flag, got[flag], want[flag])
		}
	}

	rep, err = BigMailbox(ctx, BigMailboxConfig{Addr: srv.IMAPAddr(), User: embedded.DemoAccount, Password: embedded.DemoPassword, Repeat: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, "select", "search-flag")
	if rep.Figures["messages"] != messages || rep.Figures["round1_select_ms"] <= 0 || rep.Figures["round1_search-header_ms"] <= 0 {
		t.Errorf("figures %v", rep.Figures)
	}
}

func TestRepeatedOrZero(t *testing.T) {
	for _, tc := range []struct {
		nums []uint32
		want uint32
		ok   bool
	}{
		{nil, 0, false},
		{[]uint32{3, 1, 2}, 0, false},
		{[]uint32{3, 1, 3}, 3, true},
		{[]uint32{5, 0, 1}, 0, true},
		// Sparse: past 64 bits a number the check sorts a copy.
		{[]uint32{4_000_000_000, 7, 4_000_000_000}, 4_000_000_000, true},
		{[]uint32{4_000_000_000, 7, 1 << 31}, 0, false},
	} {
		got, ok := repeatedOrZero(tc.nums)
		if got != tc.want || ok != tc.ok {
			t.Errorf("repeatedOrZero(%v) = %d, %v; want %d, %v", tc.nums, got, ok, tc.want, tc.ok)
		}
	}
}
