package imap_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/embeddedtest"
)

// TestMetrics drives real connections through the embedded server and checks the command
// counts by command and result, the latency histogram's counts, the connection and IDLE
// gauges (plain and after STARTTLS), the refused connections, the change feed lag, and that
// the command label never takes a name outside the dispatch table.
func TestMetrics(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.MetricsListen = "127.0.0.1:0"
		cfg.IMAPLimits = imap.Limits{MaxConnections: 3}
	})

	a := loginRaw(t, srv)
	a.expect("SELECT Nonexistent", "NO")
	a.expect("UID FETCH 1:* FLAGS", "BAD") // not selected
	a.ok("SELECT INBOX")
	a.expect("FETCH bogus", "BAD")    // a syntax error: counted under FETCH
	a.expect("FROBNICATE 1 2", "BAD") // not a command: counted under UNKNOWN
	a.expect("UID FETCH 1:* FLAGS", "OK")

	b := loginRaw(t, srv)
	b.ok("CREATE Doomed")
	a.ok("SELECT Doomed")

	// The third connection switches to TLS; its next command's answer means the STARTTLS
	// command has been counted.
	e := dialRaw(t, srv)
	e.expect("STARTTLS", "OK")
	e.handshake(srv)
	e.ok("NOOP")

	// A fourth is over MaxConnections.
	refused, err := net.Dial("tcp", srv.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	if line, err := bufio.NewReader(refused).ReadString('\n'); err != nil || !strings.HasPrefix(line, "* BYE [UNAVAILABLE]") {
		t.Fatalf("over the limit: %q, %v", line, err)
	}

	a.startIdle("i1")
	value, _ := embeddedtest.Scrape(t, srv.MetricsAddr())
	for series, want := range map[string]float64{
		`strata_imap_connections{tls="false"}`:                            2,
		`strata_imap_connections{tls="true"}`:                             1,
		`strata_imap_idle_connections`:                                    1,
		`strata_imap_mailbox_views{state="active"}`:                       1, // a's Doomed
		`strata_imap_connections_accepted_total`:                          4,
		`strata_imap_connections_refused_total{reason="max_connections"}`: 1,
		`strata_imap_connections_refused_total{reason="per_ip"}`:          0,
	} {
		if got := value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}

	// A message arrives through a's change feed while it idles; then its mailbox is deleted,
	// which ends the IDLE with BYE.
	msg := "Subject: lag\r\n\r\nbody\r\n"
	b.ok(fmt.Sprintf("APPEND Doomed {%d+}\r\n%s", len(msg), msg))
	a.waitFor("1 EXISTS")
	b.ok("DELETE Doomed")
	a.waitFor("* BYE")
	// The IDLE is counted before the connection closes.
	if rest, err := io.ReadAll(a.r); err != nil {
		t.Fatalf("after BYE: %q, %v", rest, err)
	}
	b.ok("LOGOUT")

	value, text := embeddedtest.Scrape(t, srv.MetricsAddr())
	for series, want := range map[string]float64{
		`strata_imap_commands_total{command="LOGIN",result="OK"}`:                 2,
		`strata_imap_commands_total{command="SELECT",result="OK"}`:                2,
		`strata_imap_commands_total{command="SELECT",result="NO"}`:                1,
		`strata_imap_commands_total{command="FETCH",result="BAD"}`:                1,
		`strata_imap_commands_total{command="UNKNOWN",result="BAD"}`:              1,
		`strata_imap_commands_total{command="UID FETCH",result="OK"}`:             1,
		`strata_imap_commands_total{command="CREATE",result="OK"}`:                1,
		`strata_imap_commands_total{command="APPEND",result="OK"}`:                1,
		`strata_imap_commands_total{command="DELETE",result="OK"}`:                1,
		`strata_imap_commands_total{command="IDLE",result="BYE"}`:                 1,
		`strata_imap_commands_total{command="LOGOUT",result="OK"}`:                1,
		`strata_imap_commands_total{command="STARTTLS",result="OK"}`:              1,
		`strata_imap_commands_total{command="NOOP",result="OK"}`:                  1,
		`strata_imap_command_duration_seconds_count{command="SELECT"}`:            3,
		`strata_imap_command_duration_seconds_count{command="IDLE"}`:              1,
		`strata_imap_command_duration_seconds_bucket{command="SELECT",le="+Inf"}`: 3,
		`strata_imap_idle_connections`:                                            0,
		`strata_imap_panics_recovered_total`:                                      0,
	} {
		if got := value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// Syntax errors are counted, not timed.
	if strings.Contains(text, `strata_imap_command_duration_seconds_count{command="FETCH"}`) {
		t.Error("the FETCH syntax error was timed")
	}
	if got := value("strata_imap_change_feed_lag_seconds_count"); got < 1 {
		t.Errorf("change feed lag observations = %v, want at least the APPEND's", got)
	}
	// The metadata node of strata serve is on the same endpoint.
	if got := value(`strata_metadata_fsm_apply_duration_seconds_count{command="append"}`); got < 1 {
		t.Errorf("FSM append applies = %v", got)
	}
	if got := value("strata_metadata_raft_commit_duration_seconds_count"); got < 1 {
		t.Errorf("Raft commits = %v", got)
	}
	for _, m := range regexp.MustCompile(`command="([^"]*)"`).FindAllStringSubmatch(text, -1) {
		if m[1] == "FROBNICATE" {
			t.Errorf("command label %q outside the dispatch table", m[1])
		}
	}
}
