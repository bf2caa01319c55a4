package outbound

import "github.com/prometheus/client_golang/prometheus"

var (
	queuedDesc = prometheus.NewDesc("strata_outbound_queued_total",
		"Messages delivery generated (redirect, vacation, reject) that the outbound queue accepted.", nil, nil)
	sentDesc = prometheus.NewDesc("strata_outbound_sent_total",
		"Messages done with that the relay accepted for at least one recipient.", nil, nil)
	retriedDesc = prometheus.NewDesc("strata_outbound_deferred_total",
		"Attempts that failed temporarily (relay down, 4xx, TLS or AUTH failure) and were scheduled again.", nil, nil)
	failedDesc = prometheus.NewDesc("strata_outbound_failed_total",
		"Messages done with that had a recipient given up: refused with 5xx, or still failing after the maximum age.", nil, nil)
	pendingDesc = prometheus.NewDesc("strata_outbound_spool_messages",
		"Messages in the outbound spool.", nil, nil)
	pendingBytesDesc = prometheus.NewDesc("strata_outbound_spool_bytes",
		"Bytes of the messages in the outbound spool.", nil, nil)
)

// Collector returns a collector of the queue's Stats, read at each scrape,
// to register with a prometheus.Registry (internal/promexport).
func (q *Queue) Collector() prometheus.Collector { return queueCollector{q} }

type queueCollector struct{ q *Queue }

func (queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queuedDesc, sentDesc, retriedDesc, failedDesc, pendingDesc, pendingBytesDesc} {
		ch <- d
	}
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.q.Stats()
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.CounterValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(s.Sent))
	ch <- prometheus.MustNewConstMetric(retriedDesc, prometheus.CounterValue, float64(s.Retried))
	ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.CounterValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(pendingBytesDesc, prometheus.GaugeValue, float64(s.PendingBytes))
}
