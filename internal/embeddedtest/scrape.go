package embeddedtest

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// Scrape GETs /metrics from metricsAddr (an embedded server's MetricsAddr or a strata
// process's --metrics-listen) and returns a function giving the value of one series, written
// as Prometheus writes it (name and labels: `strata_imap_connections{tls="false"}`), and the
// whole text. The function fails the test when the series is missing or not a number.
func Scrape(t testing.TB, metricsAddr string) (value func(series string) float64, text string) {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return func(series string) float64 {
		t.Helper()
		m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(series) + " (\\S+)$").FindSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in /metrics of %s:\n%s", series, metricsAddr, body)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatalf("%s: %v", series, err)
		}
		return v
	}, string(body)
}
