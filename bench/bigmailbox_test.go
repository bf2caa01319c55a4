package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
)

// TestBigMailboxAgainstEmbeddedServer runs the big-mailbox scenario on a real server and
// expects every step of every round to verify against the populated size.
func TestBigMailboxAgainstEmbeddedServer(t *testing.T) {
	const password, messages = "big-pw", 60
	users := UserNames("big%d@example.com", 1)
	srv := startWithUsers(t, embedded.Config{}, users, password)
	ctx := context.Background()
	rep, err := Populate(ctx, PopulateConfig{Addr: srv.IMAPAddr(), Users: users, Password: password,
		Messages: messages, Conns: 1, Window: 8, Corpus: Corpus{Seed: 2, MaxSize: 16 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, OpAppend)
	rep, err = BigMailbox(ctx, BigMailboxConfig{Addr: srv.IMAPAddr(), User: users[0], Password: password, Repeat: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, BigMailboxSteps...)
	if rep.Figures["messages"] != messages {
		t.Errorf("messages %v, want %d", rep.Figures["messages"], messages)
	}
	if n := rep.Figures["found: UID SEARCH BODY "+SearchWord]; n < 1 || n > messages {
		t.Errorf("BODY %s found %v of %d messages", SearchWord, n, messages)
	}
	if n, ok := rep.Figures["found: UID SEARCH BODY "+SearchAbsentWord]; !ok || n != 0 {
		t.Errorf("BODY %s found %v (reported: %v), want 0", SearchAbsentWord, n, ok)
	}
	for _, op := range BigMailboxSteps {
		if _, ok := rep.Figures["round1_"+op+"_ms"]; !ok {
			t.Errorf("no first-round figure for %s", op)
		}
	}

	// A chosen subset runs only those steps (and the SELECT they need).
	steps, err := ParseBigMailboxSteps("thread-references,select-warm")
	if err != nil {
		t.Fatal(err)
	}
	rep, err = BigMailbox(ctx, BigMailboxConfig{Addr: srv.IMAPAddr(), User: users[0], Password: password, Repeat: 1, Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, "select", "select-warm", "thread-references")
	for _, st := range rep.Ops {
		if !slices.Contains([]string{"select", "select-warm", "thread-references"}, st.Op) {
			t.Errorf("step %s ran, not chosen", st.Op)
		}
	}
}

// TestParseBigMailboxSteps: names are kept in the rounds' order with select first; unknown
// and repeated names are refused.
func TestParseBigMailboxSteps(t *testing.T) {
	cases := []struct {
		in   string
		want []string // nil: every step
		err  string
	}{
		{"", nil, ""},
		{" all ", nil, ""},
		{"sort-date", []string{"select", "sort-date"}, ""},
		{"thread-references, select-warm,search-body-none", []string{"select", "select-warm", "search-body-none", "thread-references"}, ""},
		{"select", []string{"select"}, ""},
		{"sort-date,sort-date", nil, "twice"},
		{"sort-date,", nil, "unknown"},
		{"SORT-DATE", nil, "unknown"},
		{strings.Repeat("x", 1000), nil, "unknown"},
	}
	for _, tc := range cases {
		got, err := ParseBigMailboxSteps(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%.20q: error %v, want one with %q", tc.in, err, tc.err)
			}
			if err != nil && len(err.Error()) > 400 {
				t.Errorf("%.20q: error of %d bytes", tc.in, len(err.Error()))
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case !slices.Equal(got, tc.want):
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzParseBigMailboxSteps: any input gives steps from BigMailboxSteps, select first, each
// once, or an error; never a panic.
func FuzzParseBigMailboxSteps(f *testing.F) {
	for _, seed := range []string{"", "all", "sort-date,select-warm", "a,,b", "select,select"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		steps, err := ParseBigMailboxSteps(in)
		if err != nil || steps == nil {
			return
		}
		if steps[0] != "select" {
			t.Fatalf("%q: %v does not start with select", in, steps)
		}
		seen := map[string]bool{}
		for _, s := range steps {
			if seen[s] || !slices.Contains(BigMailboxSteps, s) {
				t.Fatalf("%q: %v", in, steps)
			}
			seen[s] = true
		}
	})
}

// TestFetchAllFlagsStreams feeds fetchAllFlags scripted answers over a real socket: a
// complete answer with a long line and a literal passes; a missing message, a repeated one
// and a FETCH without FLAGS are refused, and the tagged NO is the command's error.
func TestFetchAllFlagsStreams(t *testing.T) {
	long := strings.Repeat("k", 80<<10) // longer than the reader's 64 KiB buffer
	cases := []struct {
		name   string
		answer []string
		want   string // "" for success, else a substring of the error
	}{
		{"complete", []string{"* 1 FETCH (FLAGS (\\Seen))", "* 2 FETCH (FLAGS (" + long + "))", "* 3 FETCH (FLAGS ({3}", "abc))", "* OK [CAPABILITY IMAP4rev1] noted"}, ""},
		{"lower-case", []string{"* 1 fetch (flags ())", "* 2 FETCH (FLAGS ())", "* 3 FETCH (FLAGS ())"}, ""},
		{"missing", []string{"* 1 FETCH (FLAGS ())", "* 3 FETCH (FLAGS ())"}, "returned 2 of 3"},
		{"twice", []string{"* 1 FETCH (FLAGS ())", "* 1 FETCH (FLAGS ())", "* 3 FETCH (FLAGS ())"}, "or twice"},
		{"no flags", []string{"* 1 FETCH (UID 4)", "* 2 FETCH (FLAGS ())", "* 3 FETCH (FLAGS ())"}, "without FLAGS"},
		{"grew", []string{"* 4 EXISTS"}, "grew"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := scriptedServer(t, tc.answer)
			c, err := Dial(addr, DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = fetchAllFlags(&Session{Conn: c, Exists: 3})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			if tc.name == "complete" && !c.Caps["IMAP4REV1"] {
				t.Errorf("capabilities %v: the untagged CAPABILITY code was not noted", c.Caps)
			}
		})
	}
	t.Run("tagged NO", func(t *testing.T) {
		c, err := Dial(scriptedServer(t, nil, "NO [LIMIT] too many"), DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var se *ServerError
		if err := fetchAllFlags(&Session{Conn: c, Exists: 3}); !errors.As(err, &se) || se.Status != "NO" {
			t.Fatalf("error %v, want the server's NO", err)
		}
	})
}

// scriptedServer accepts one connection, greets, and answers the first command with the
// lines and then the tagged status (OK by default), later ones with OK.
func scriptedServer(t testing.TB, lines []string, status ...string) string {
	t.Helper()
	tagged := "OK done"
	if len(status) > 0 {
		tagged = status[0]
	}
	var answer strings.Builder // prebuilt, so that a benchmark times the client
	for _, l := range lines {
		answer.WriteString(l + "\r\n")
	}
	first := true
	return commandServer(t, func(string) (string, string) {
		if !first {
			return "", "OK done"
		}
		first = false
		return answer.String(), tagged
	})
}

// BenchmarkFetchAllFlagsClient is this client's own cost of reading and checking the
// answer to FETCH 1:* (FLAGS) of a million messages, fed by a server that writes prebuilt
// lines: the floor under the fetch-all-flags figure of the big-mailbox scenario.
func BenchmarkFetchAllFlagsClient(b *testing.B) {
	const n = 1_000_000
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("* %d FETCH (FLAGS (\\Seen $Label%d))", i+1, i%7)
	}
	for b.Loop() {
		b.StopTimer()
		c, err := Dial(scriptedServer(b, lines), DialOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := fetchAllFlags(&Session{Conn: c, Exists: n}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
}

// TestBigMailboxGoesOnAfterNO runs the scenario against a scripted server that refuses
// one step with NO [LIMIT] (as Strata does past its search deadline): that step is
// counted as failed, the later steps of the round still run, and the scenario's error
// names the refused step; a NO to SELECT stops the scenario.
func TestBigMailboxGoesOnAfterNO(t *testing.T) {
	for _, tc := range []struct {
		refuse    string // command prefix answered NO
		wantSteps []string
	}{
		{"UID SEARCH BODY", []string{"select", "search-flag", "sort-date"}},
		{"SELECT", nil},
	} {
		t.Run(tc.refuse, func(t *testing.T) {
			addr := commandServer(t, func(command string) (string, string) {
				switch {
				case strings.HasPrefix(command, tc.refuse):
					return "", "NO [LIMIT] SEARCH took longer than this server allows"
				case strings.HasPrefix(command, "LOGIN"), strings.HasPrefix(command, "LOGOUT"):
					return "", "OK done"
				case strings.HasPrefix(command, "SELECT"):
					return "* 2 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 3] x\r\n", "OK [READ-WRITE] done"
				case strings.HasPrefix(command, "UID SEARCH"):
					return "* SEARCH 1\r\n", "OK done"
				case strings.HasPrefix(command, "UID SORT"):
					return "* SORT 2 1\r\n", "OK done"
				}
				return "", "BAD unexpected " + command
			})
			steps, err := ParseBigMailboxSteps("search-body-none,search-flag,sort-date")
			if err != nil {
				t.Fatal(err)
			}
			rep, err := BigMailbox(context.Background(), BigMailboxConfig{Addr: addr, User: "u", Password: "p", Repeat: 2, Steps: steps})
			var se *ServerError
			if !errors.As(err, &se) || se.Status != "NO" {
				t.Fatalf("error %v, want the server's NO", err)
			}
			if tc.wantSteps == nil {
				return
			}
			if !strings.Contains(err.Error(), "search-body-none") {
				t.Errorf("error %v does not name the refused step", err)
			}
			counted := map[string]uint64{}
			for _, s := range rep.Ops {
				counted[s.Op] = s.Count
			}
			for _, op := range tc.wantSteps {
				if counted[op] != 2 {
					t.Errorf("%s ran %d times, want 2", op, counted[op])
				}
			}
			if rep.Errors() != 2 {
				t.Errorf("%d failed operations, want 2 (search-body-none in both rounds)", rep.Errors())
			}
		})
	}
}

// commandServer accepts one connection, greets, and answers each command (its tag cut
// off) with answer's untagged lines (CRLF-terminated) and tagged status.
func commandServer(t testing.TB, answer func(command string) (untagged, tagged string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		fmt.Fprint(nc, "* OK ready\r\n")
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, command, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
			untagged, tagged := answer(command)
			if _, err := fmt.Fprint(nc, untagged+tag+" "+tagged+"\r\n"); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String()
}

// TestSortAllChecksTheAnswer: a SORT or THREAD answer must name every message once,
// THREAD's parentheses and spaces being separators.
func TestSortAllChecksTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		step, answer string
		ok           bool
	}{
		{"sort-date", "* SORT 3 1 2", true},
		{"sort-date", "* SORT 3 1 3", false},
		{"sort-date", "* SORT 3 1", false},
		{"sort-date", "* SORT 3 1 2 0", false},
		{"thread-references", "* THREAD (1 (2)(3))", true},
		{"thread-references", "* THREAD (1 2)(2)", false},
		{"thread-references", "* THREAD (1)(2)(99999999999)", false},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			addr := commandServer(t, func(command string) (string, string) {
				switch {
				case strings.HasPrefix(command, "LOGIN"), strings.HasPrefix(command, "LOGOUT"):
					return "", "OK done"
				case strings.HasPrefix(command, "SELECT"):
					return "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 4] x\r\n", "OK [READ-WRITE] done"
				case strings.HasPrefix(command, "UID SORT"), strings.HasPrefix(command, "UID THREAD"):
					return tc.answer + "\r\n", "OK done"
				}
				return "", "BAD unexpected " + command
			})
			steps, err := ParseBigMailboxSteps(tc.step)
			if err != nil {
				t.Fatal(err)
			}
			_, err = BigMailbox(context.Background(), BigMailboxConfig{Addr: addr, User: "u", Password: "p", Repeat: 1, Steps: steps})
			if tc.ok && err != nil {
				t.Fatalf("error %v, want none", err)
			}
			if !tc.ok && ErrorKind(err) != "verify" {
				t.Fatalf("error %v (%s), want a verify error", err, ErrorKind(err))
			}
		})
	}
}
