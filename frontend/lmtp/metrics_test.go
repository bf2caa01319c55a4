package lmtp_test

import (
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
)

// TestMetrics delivers through a real server and checks the LMTP series on /metrics: RCPT
// refusals by class, per-recipient replies, the dedup of a retried delivery, the connection
// gauge and the delivery histogram.
func TestMetrics(t *testing.T) {
	srv := startServer(t, func(cfg *embedded.Config) { cfg.MetricsListen = "127.0.0.1:0" })
	addAccount(t, srv, "bob@example.com")

	c := greeted(t, srv)
	msg := message("metrics", "counted")
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<nobody@example.com>", "550 ") // unknown: permanent
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	c.cmd("RCPT TO:<bob@example.com>", "250 ")
	for _, r := range c.data(msg, 2) {
		if r[:3] != "250" {
			t.Fatalf("reply %q", r)
		}
	}
	// The MTA's retry after a lost reply: answered 250, stored once (dedup).
	c.deliver("a@example.org", []string{"demo@example.com"}, msg)
	c.deliver("a@example.org", []string{"demo@example.com"}, msg)

	value, _ := embeddedtest.Scrape(t, srv.MetricsAddr())
	for series, want := range map[string]float64{
		`strata_lmtp_rcpt_refused_total{class="permanent"}`: 1,
		`strata_lmtp_rcpt_refused_total{class="temporary"}`: 0,
		`strata_lmtp_recipients_total{result="delivered"}`:  4,
		`strata_lmtp_recipients_total{result="temporary"}`:  0,
		`strata_lmtp_recipients_total{result="permanent"}`:  0,
		`strata_lmtp_delivery_duration_seconds_count`:       3,
		`strata_lmtp_connections`:                           1,
	} {
		if got := value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// The dedup key leaves the trace fields out: both later deliveries to demo repeat the
	// first (metadata dedup), and demo's INBOX holds the message once.
	if got := value(`strata_lmtp_duplicates_total`); got != 2 {
		t.Errorf("strata_lmtp_duplicates_total = %v, want 2", got)
	}
	if n := len(messages(t, srv, "demo@example.com", "INBOX")); n != 1 {
		t.Errorf("demo's INBOX holds %d messages, want 1", n)
	}
}
