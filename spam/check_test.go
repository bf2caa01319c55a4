package spam_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/rspamdtest"
	"github.com/strata-mail/strata/sieve"
	"github.com/strata-mail/strata/spam"
)

func TestMain(m *testing.M) {
	code := m.Run()
	rspamdtest.StopShared()
	os.Exit(code)
}

// rspamd returns the test binary's rspamd, failing t if it cannot start.
func rspamd(t *testing.T) *rspamdtest.Server {
	t.Helper()
	s, err := rspamdtest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checker(t *testing.T, cfg spam.CheckerConfig) *spam.Checker {
	t.Helper()
	c, err := spam.NewChecker(cfg)
	if err != nil {
		t.Fatalf("NewChecker(%+v): %v", cfg, err)
	}
	return c
}

var msgSeq atomic.Int64

// message returns a message with a unique Message-ID and body text.
func message(subject, text string) string {
	n := msgSeq.Add(1)
	return fmt.Sprintf("From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n"+
		"Subject: %s\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%d.%d@example.com>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\nReference %d-%d.\r\n",
		subject, time.Now().UnixNano(), n, text, time.Now().UnixNano(), n)
}

// localEnvelope is an envelope from a loopback client, for which rspamd skips the
// network checks (RBL, SPF, reverse DNS) that would fail offline.
var localEnvelope = spam.Envelope{
	From: "alice@example.com", Rcpt: []string{"bob@example.org"}, IP: "127.0.0.1",
	Helo: "localhost", DeliverTo: "bob@example.org", QueueID: "4XyZ1abc",
}

// TestCheckGTUBE: rspamd rejects a message carrying the GTUBE string, which is certain
// spam for Sieve (RFC 5235 3.2: spamtest 10, spamtestplus 100%).
func TestCheckGTUBE(t *testing.T) {
	srv := rspamd(t)
	c := checker(t, spam.CheckerConfig{URL: srv.CheckURL})
	v, err := c.Check(context.Background(), strings.NewReader(message("GTUBE", rspamdtest.GTUBE)), localEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Tested || v.Action != "reject" || !v.Spam() {
		t.Fatalf("verdict %+v, want a tested reject", v)
	}
	if _, ok := v.Symbols["GTUBE"]; !ok {
		t.Errorf("symbols %v lack GTUBE", v.Symbols)
	}
	if got, want := v.SieveScore(), (sieve.Score{Tested: true, Value: 10, Percent: 100}); got != want {
		t.Errorf("SieveScore = %+v, want %+v", got, want)
	}
	if st := c.Stats(); st.Checked != 1 || st.Failures != 0 {
		t.Errorf("stats %+v, want 1 checked", st)
	}
}

// TestCheckPlain: an ordinary message is not spam, and the envelope reaches rspamd as its
// headers: the rules comparing MAIL FROM and RCPT TO with the From and To fields fire.
func TestCheckPlain(t *testing.T) {
	srv := rspamd(t)
	c := checker(t, spam.CheckerConfig{URL: srv.CheckURL + "/"})
	v, err := c.Check(context.Background(), strings.NewReader(message("Lunch tomorrow",
		"Shall we have lunch tomorrow at noon? The usual place near the station.")), localEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Tested || v.Spam() || v.Action != "no action" {
		t.Fatalf("verdict %+v, want a tested no action", v)
	}
	if v.RequiredScore <= 0 || v.Score >= v.RequiredScore {
		t.Errorf("score %v of required %v", v.Score, v.RequiredScore)
	}
	for _, sym := range []string{"FROM_EQ_ENVFROM", "TO_MATCH_ENVRCPT_ALL", "RCPT_COUNT_ONE"} {
		if _, ok := v.Symbols[sym]; !ok {
			t.Errorf("symbols %v lack %s: the envelope did not reach rspamd", keys(v.Symbols), sym)
		}
	}
	s := v.SieveScore()
	if !s.Tested || s.Value < 1 || s.Value > 9 || s.Percent >= 100 {
		t.Errorf("SieveScore = %+v, want tested, 1-9, under 100%%", s)
	}
}

func keys(m map[string]spam.Symbol) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// blackhole returns a loopback address that accepts connections and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, conn) // read the request, answer nothing
				<-done
				conn.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCheckUnavailable: a scanner that refuses connections or never answers within the
// timeout leaves the message untested (fail-open) or refuses it with ErrUnavailable
// (fail-closed); either way the failure is counted.
func TestCheckUnavailable(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"refused", closedPort(t)},
		{"blackholed", blackhole(t)},
	} {
		for _, failClosed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/failClosed=%v", tc.name, failClosed), func(t *testing.T) {
				c := checker(t, spam.CheckerConfig{URL: "http://" + tc.addr,
					Timeout: 300 * time.Millisecond, FailClosed: failClosed})
				v, err := c.Check(context.Background(), strings.NewReader(message("x", "y")), localEnvelope)
				if failClosed {
					if !errors.Is(err, spam.ErrUnavailable) {
						t.Fatalf("Check = %+v, %v; want ErrUnavailable", v, err)
					}
				} else if err != nil || v.Tested {
					t.Fatalf("Check = %+v, %v; want untested, nil", v, err)
				}
				if v.SieveScore().Tested {
					t.Errorf("SieveScore of no verdict is tested")
				}
				if st := c.Stats(); st.Failures != 1 || st.Checked != 0 {
					t.Errorf("stats %+v, want 1 failure", st)
				}
			})
		}
	}
}

// TestCheckNotRspamd: an HTTP server that answers without a verdict is a failed scan.
func TestCheckNotRspamd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"html", 200, "<html>hello</html>"},
		{"error", 500, `{"error":"internal"}`},
		{"no action", 200, `{"score":1.0,"required_score":15}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { srv.Close() })
			c := checker(t, spam.CheckerConfig{URL: "http://" + ln.Addr().String(), FailClosed: true})
			_, err = c.Check(context.Background(), strings.NewReader(message("x", "y")), localEnvelope)
			if !errors.Is(err, spam.ErrUnavailable) {
				t.Fatalf("Check: %v, want ErrUnavailable", err)
			}
		})
	}
}

// failingReader fails after its first bytes.
type failingReader struct{ sent bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, "Subject: x\r\n"), nil
	}
	return 0, errors.New("disk on fire")
}

// TestCheckBadInput: a bad URL, an envelope field with a line break and a message that
// cannot be read are errors of the caller, not scanner failures, even fail-open.
func TestCheckBadInput(t *testing.T) {
	for _, url := range []string{"", "127.0.0.1:11333", "ftp://host/", "http://", "http://host/?a=b", "http://a b/"} {
		if _, err := spam.NewChecker(spam.CheckerConfig{URL: url}); err == nil {
			t.Errorf("NewChecker(%q) accepted", url)
		}
	}
	if _, err := spam.NewChecker(spam.CheckerConfig{URL: "http://h", Timeout: -1}); err == nil {
		t.Error("NewChecker with a negative timeout accepted")
	}
	srv := rspamd(t)
	c := checker(t, spam.CheckerConfig{URL: srv.CheckURL})
	env := localEnvelope
	env.Rcpt = []string{"bob@example.org\r\nPassword: x"}
	if _, err := c.Check(context.Background(), strings.NewReader("x"), env); err == nil || errors.Is(err, spam.ErrUnavailable) {
		t.Errorf("Check with a line break in Rcpt: %v", err)
	}
	_, err := c.Check(context.Background(), &failingReader{}, localEnvelope)
	if err == nil || errors.Is(err, spam.ErrUnavailable) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Check of an unreadable message: %v", err)
	}
	if st := c.Stats(); st.Failures != 0 {
		t.Errorf("stats %+v: the caller's errors counted as scanner failures", st)
	}
}

// TestScoreOf: the mapping onto RFC 5235's scales.
func TestScoreOf(t *testing.T) {
	nan := func() float64 { var z float64; return z / z }()
	for _, tc := range []struct {
		score, reject float64
		certain       bool
		value, pct    int
	}{
		{-5, 15, false, 1, 0},
		{0, 15, false, 1, 0},
		{7.5, 15, false, 5, 50},
		{14.9, 15, false, 9, 99},
		{15, 15, false, 10, 100},
		{40, 15, false, 10, 100},
		{0, 15, true, 10, 100},
		{3, 0, false, 10, 100},
		{-3, 0, false, 1, 0},
		{nan, 15, false, 1, 0},
		{5, nan, false, 10, 100},
	} {
		got := spam.ScoreOf(tc.score, tc.reject, tc.certain)
		if want := (sieve.Score{Tested: true, Value: tc.value, Percent: tc.pct}); got != want {
			t.Errorf("ScoreOf(%v, %v, %v) = %+v, want %+v", tc.score, tc.reject, tc.certain, got, want)
		}
	}
}
