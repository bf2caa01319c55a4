package lmtp

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
)

// Reply classes of the per-recipient counters: a 2xx reply, a 4xx (the MTA retries) or a
// 5xx (the MTA bounces); RFC 5321 4.2.1.
const (
	classOK = iota
	classTemporary
	classPermanent
	numClasses
)

var classNames = [numClasses]string{"delivered", "temporary", "permanent"}

var (
	connectionsDesc = prometheus.NewDesc("strata_lmtp_connections",
		"LMTP connections being served (sessions after LHLO).", nil, nil)
	rcptRefusedDesc = prometheus.NewDesc("strata_lmtp_rcpt_refused_total",
		"RCPT commands refused, by class: temporary (4xx: directory unavailable, quota full) or permanent (5xx: unknown or disabled account, bad address, quota full when the tenant says so).",
		[]string{"class"}, nil)
	recipientsDesc = prometheus.NewDesc("strata_lmtp_recipients_total",
		"Per-recipient replies after DATA (RFC 2033 4.2), by result: delivered (250), temporary (4xx) or permanent (5xx).",
		[]string{"result"}, nil)
	duplicatesDesc = prometheus.NewDesc("strata_lmtp_duplicates_total",
		"Appends the metadata service recognised as a retry of a delivery already stored (dedup window), answered 250 without a second copy.", nil, nil)
)

// metrics are one Server's counters, read at each scrape.
type metrics struct {
	rcptRefused [numClasses]atomic.Uint64
	recipients  [numClasses]atomic.Uint64
	duplicates  atomic.Uint64
	// duration is the time from the end of the message to the last reply's status.
	duration prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{duration: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "strata_lmtp_delivery_duration_seconds",
		Help:    "Time from the end of a message's DATA (or last BDAT) to its per-recipient replies: spooling aside, the filing, the body store and the metadata commits.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1 ms to 24 s
	})}
}

// class is the reply class of an error returned to go-smtp (nil is 250).
func class(err error) int {
	if err == nil {
		return classOK
	}
	var reply *smtp.SMTPError
	if errors.As(err, &reply) && reply.Code/100 == 4 {
		return classTemporary
	}
	if errors.As(err, &reply) {
		return classPermanent
	}
	return classTemporary // go-smtp answers other errors 451
}

// countingReplies counts each recipient's reply as it is set.
type countingReplies struct {
	smtp.StatusCollector
	m *metrics
}

func (c countingReplies) SetStatus(rcpt string, err error) {
	c.m.recipients[class(err)].Add(1)
	c.StatusCollector.SetStatus(rcpt, err)
}

// observeData counts a transaction: when LMTPData failed as a whole, go-smtp gives its error
// to every recipient.
func (m *metrics) observeData(recipients int, err error, start time.Time) {
	if err != nil {
		m.recipients[class(err)].Add(uint64(recipients))
	}
	m.duration.Observe(time.Since(start).Seconds())
}

// Collector returns a collector of the server's LMTP metrics, to register with a
// prometheus.Registry (internal/promexport).
func (s *Server) Collector() prometheus.Collector { return serverCollector{s} }

type serverCollector struct{ s *Server }

func (c serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connectionsDesc, rcptRefusedDesc, recipientsDesc, duplicatesDesc} {
		ch <- d
	}
	c.s.metrics.duration.Describe(ch)
}

func (c serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.mu.Lock()
	conns := len(s.sessions)
	s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(conns))
	for cl := range numClasses {
		if cl != classOK {
			ch <- prometheus.MustNewConstMetric(rcptRefusedDesc, prometheus.CounterValue, float64(s.metrics.rcptRefused[cl].Load()), classNames[cl])
		}
		ch <- prometheus.MustNewConstMetric(recipientsDesc, prometheus.CounterValue, float64(s.metrics.recipients[cl].Load()), classNames[cl])
	}
	ch <- prometheus.MustNewConstMetric(duplicatesDesc, prometheus.CounterValue, float64(s.metrics.duplicates.Load()))
	s.metrics.duration.Collect(ch)
}
