package imap_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/embedded"
)

// BenchmarkSearchIndex appends STRATA_SEARCH_BENCH_N corpus messages (default 2000) to a
// server with and without the search index, reporting the APPEND rate, the index size per
// message, and the warm latency of SEARCH BODY and SEARCH HEADER Subject:
//
//	STRATA_SEARCH_BENCH_N=20000 go test ./frontend/imap -run '^$' -bench BenchmarkSearchIndex -benchtime 5x
func BenchmarkSearchIndex(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("STRATA_SEARCH_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	for _, mode := range []struct {
		name string
		off  bool
	}{{"index", false}, {"scan", true}} {
		b.Run(mode.name, func(b *testing.B) {
			srv := startServerWith(b, func(cfg *embedded.Config) {
				cfg.DisableSearchIndex = mode.off
				cfg.IMAPLimits.MaxBodyScan = 1 << 30
				cfg.IMAPLimits.SearchTimeout = time.Hour
			})
			c := login(b, srv)
			corpus := bench.Corpus{Seed: 1, MaxSize: 64 << 10}
			start := time.Now()
			for i := range n {
				appendMessage(b, c, "INBOX", string(corpus.Message(0, i)))
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "appends/s")
			if !mode.off {
				waitIndexed(b, srv, embedded.DemoAccount, "INBOX")
				if err := srv.SearchIndex().Index().Flush(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(srv.SearchIndex().Index().Size())/float64(n), "indexB/msg")
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds()), "ingest+index-ms")
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				b.Fatal(err)
			}
			for _, q := range []struct {
				metric string
				crit   *imap.SearchCriteria
			}{
				{"bodyword-ms", &imap.SearchCriteria{Body: []string{"Zürich"}}},
				{"subject-ms", &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "quarterly"}}}},
			} {
				searchUIDs(b, c, q.crit) // warm
				var total time.Duration
				for range b.N {
					t0 := time.Now()
					searchUIDs(b, c, q.crit)
					total += time.Since(t0)
				}
				b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), q.metric)
			}
		})
	}
}
