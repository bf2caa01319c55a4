package imap

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
)

// The engine's Prometheus metrics; docs/metrics.md lists them. Every Server has its own
// (Server.Collector), so several servers in one process (tests) do not share counts.
//
// The per-command cost is one map lookup by the command's name (no string is built), an
// atomic load per label child, created on first use, and a histogram observation.

// unknownCommand is the command label of every command name outside the dispatch table,
// and of commands that could not be read at all (too long, no tag): the label set stays the
// dispatch table's names plus this one.
const unknownCommand = "UNKNOWN"

// commandResult is the result label of a command: its tagged status (RFC 9051 7.1), or BYE
// when the command ended the connection (an untagged BYE, RFC 9051 7.1.5, a failed write or
// a panic).
type commandResult int

const (
	resultOK commandResult = iota
	resultNO
	resultBAD
	resultBYE
	numResults
)

var resultNames = [numResults]string{"OK", "NO", "BAD", "BYE"}

// commandBuckets are the bounds of the command latency histogram: from a NOOP or a CAPABILITY
// (~100 µs) to a SEARCH TEXT over a large mailbox or a FETCH of many bodies (seconds) and an
// APPEND of a large message over a slow link (tens of seconds). IDLE lasts until DONE and
// falls in +Inf.
var commandBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// feedLagBuckets are the bounds of the change feed lag histogram: a few milliseconds on one
// machine, more across a network or when a feed reconnects and catches up.
var feedLagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

var (
	connectionsDesc = prometheus.NewDesc("strata_imap_connections",
		"IMAP connections being served (refused ones excluded), by whether TLS is active (IMAPS or after STARTTLS).", []string{"tls"}, nil)
	idleDesc = prometheus.NewDesc("strata_imap_idle_connections",
		"IMAP connections in IDLE (RFC 2177).", nil, nil)
	acceptedDesc = prometheus.NewDesc("strata_imap_connections_accepted_total",
		"IMAP connections accepted, refused ones included.", nil, nil)
	refusedDesc = prometheus.NewDesc("strata_imap_connections_refused_total",
		"IMAP connections told BYE at once for being over a limit: max_connections (BYE [UNAVAILABLE]) or per_ip (BYE [LIMIT]).", []string{"reason"}, nil)
	viewsDesc = prometheus.NewDesc("strata_imap_mailbox_views",
		"Shared mailbox views open on this frontend, each kept current by one change-feed stream: active (selected by sessions) or lingering (kept a while after the last session left).", []string{"state"}, nil)
	recordCacheDesc = prometheus.NewDesc("strata_imap_record_cache_lookups_total",
		"Lookups of messages' unchanging stored parts in the frontend's record cache, by result: hit, or miss (read from the metadata service and kept).", []string{"result"}, nil)
	recordCacheBytesDesc = prometheus.NewDesc("strata_imap_record_cache_bytes",
		"Bytes of records the frontend's record cache holds (protobuf size), at most its budget.", nil, nil)
	panicsDesc = prometheus.NewDesc("strata_imap_panics_recovered_total",
		"Panics recovered in IMAP connection and change feed goroutines; each is a bug, logged with its stack.", nil, nil)
)

// serverMetrics are the metrics of one Server.
type serverMetrics struct {
	commands  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	feedLag   prometheus.Histogram
	// byName holds every name of the dispatch table; unknown stands for the others.
	byName  map[string]*commandMetrics
	unknown *commandMetrics

	idle         atomic.Int64
	refusedMax   atomic.Uint64
	refusedPerIP atomic.Uint64
	// refusedPerAccount counts logins refused over Limits.MaxConnectionsPerAccount.
	refusedPerAccount atomic.Uint64
}

// commandMetrics are the label children of one command label, made on first use so that
// /metrics lists only the commands clients sent.
type commandMetrics struct {
	m    *serverMetrics
	name string
	// idle marks IDLE, counted in strata_imap_idle_connections while it runs; logout
	// marks LOGOUT, whose ending of the connection is its success (RFC 9051 6.1.3);
	// startTLS marks STARTTLS, after which the connection counts as TLS.
	idle, logout, startTLS bool

	countOnce [numResults]sync.Once
	count     [numResults]prometheus.Counter
	durOnce   sync.Once
	dur       prometheus.Observer
}

func newServerMetrics() *serverMetrics {
	m := &serverMetrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_imap_commands_total",
			Help: "IMAP commands answered, by command (the dispatch table's names, UNKNOWN for others) and result (OK, NO, BAD; BYE when the command ended the connection).",
		}, []string{"command", "result"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_imap_command_duration_seconds",
			Help:    "Time from a parsed IMAP command to its buffered tagged response, by command; APPEND includes the upload of its message, IDLE lasts until DONE.",
			Buckets: commandBuckets,
		}, []string{"command"}),
		feedLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_imap_change_feed_lag_seconds",
			Help:    "Time from the log time of a mailbox change (stamped by the metadata leader as it proposed the command) to its arrival in a selected session's change feed; clock skew between hosts adds to it.",
			Buckets: feedLagBuckets,
		}),
		byName: make(map[string]*commandMetrics, len(commands)),
	}
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m.byName[name] = &commandMetrics{m: m, name: name, idle: name == "IDLE", logout: name == "LOGOUT", startTLS: name == "STARTTLS"}
	}
	m.unknown = &commandMetrics{m: m, name: unknownCommand}
	return m
}

// command returns the metrics of the command name, or of unknownCommand.
func (m *serverMetrics) command(name string) *commandMetrics {
	if cm, ok := m.byName[name]; ok {
		return cm
	}
	return m.unknown
}

// counter returns the counter of result.
func (cm *commandMetrics) counter(r commandResult) prometheus.Counter {
	cm.countOnce[r].Do(func() { cm.count[r] = cm.m.commands.WithLabelValues(cm.name, resultNames[r]) })
	return cm.count[r]
}

// observe counts one command with result r that took d.
func (cm *commandMetrics) observe(r commandResult, d time.Duration) {
	cm.counter(r).Inc()
	cm.durOnce.Do(func() { cm.dur = cm.m.durations.WithLabelValues(cm.name) })
	cm.dur.Observe(d.Seconds())
}

// observeFeedLag records the lag of a change batch whose first change has the log time
// unixNano; a batch without one (made up by the frontend) is not counted.
func (m *serverMetrics) observeFeedLag(unixNano int64) {
	if unixNano == 0 {
		return
	}
	// A metadata clock ahead of this one would make it negative.
	m.feedLag.Observe(max(time.Since(time.Unix(0, unixNano)).Seconds(), 0))
}

// resultOf maps a status response type to its result label.
func resultOf(statusType string) commandResult {
	switch statusType {
	case "OK":
		return resultOK
	case "NO":
		return resultNO
	case "BAD":
		return resultBAD
	}
	return resultBYE
}

// measuredCommand is a command being counted and timed: from runMeasured until it ends,
// which for IDLE is after DONE (endIdle).
type measuredCommand struct {
	cm    *commandMetrics // nil when none is
	start time.Time
}

// runMeasured is run, counted and timed in the command metrics. Its result is the tagged
// status that run wrote, or BYE when the command ended the connection otherwise than by a
// successful LOGOUT, or panicked (serve then ends the measurement, and the panic goes on
// to the registry's recovery). IDLE is measured until DONE.
func (c *conn) runMeasured(cmd *imapwire.Command) {
	cm := c.srv.metrics.command(cmd.Name)
	if cm.idle {
		c.srv.metrics.idle.Add(1)
	}
	c.taggedStatus = ""
	c.measured = measuredCommand{cm: cm, start: time.Now()}
	c.run(cmd)
	if c.idle == nil {
		c.endMeasured(c.measuredResult())
	}
}

// measuredResult is the result of the measured command that ended.
func (c *conn) measuredResult() commandResult {
	if c.state != stateLogout || c.measured.cm != nil && c.measured.cm.logout {
		return resultOf(c.taggedStatus)
	}
	return resultBYE
}

// endMeasured counts and times the measured command, if any, with result.
func (c *conn) endMeasured(result commandResult) {
	cm := c.measured.cm
	if cm == nil {
		return
	}
	if cm.idle {
		c.srv.metrics.idle.Add(-1)
	}
	cm.observe(result, time.Since(c.measured.start))
	if cm.startTLS && c.tlsActive() {
		c.tlsStarted.Store(true)
	}
	c.measured = measuredCommand{}
}

// countUnparsed counts a command answered BAD before dispatch: one that could not be
// parsed (name is its name, from the parser) or read (name is empty).
func (m *serverMetrics) countUnparsed(name string) {
	m.command(name).counter(resultBAD).Inc()
}

// Collector returns the collector of the server's metrics, to register with a
// prometheus.Registry (internal/promexport). The connection gauges are read at each scrape.
func (s *Server) Collector() prometheus.Collector { return serverCollector{s} }

type serverCollector struct{ s *Server }

func (sc serverCollector) Describe(ch chan<- *prometheus.Desc) {
	m := sc.s.metrics
	m.commands.Describe(ch)
	m.durations.Describe(ch)
	m.feedLag.Describe(ch)
	for _, d := range []*prometheus.Desc{connectionsDesc, idleDesc, acceptedDesc, refusedDesc, viewsDesc, recordCacheDesc, recordCacheBytesDesc, panicsDesc} {
		ch <- d
	}
}

func (sc serverCollector) Collect(ch chan<- prometheus.Metric) {
	s, m := sc.s, sc.s.metrics
	m.commands.Collect(ch)
	m.durations.Collect(ch)
	m.feedLag.Collect(ch)
	var tls, plain int
	s.conns.Each(func(c *conn, admitted bool) {
		switch {
		case !admitted:
		case c.implicitTLS || c.tlsStarted.Load():
			tls++
		default:
			plain++
		}
	})
	ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(tls), "true")
	ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(plain), "false")
	ch <- prometheus.MustNewConstMetric(idleDesc, prometheus.GaugeValue, float64(m.idle.Load()))
	ch <- prometheus.MustNewConstMetric(acceptedDesc, prometheus.CounterValue, float64(s.conns.Accepted()))
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(m.refusedMax.Load()), "max_connections")
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(m.refusedPerIP.Load()), "per_ip")
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(m.refusedPerAccount.Load()), "per_account")
	active, lingering := s.views.counts()
	ch <- prometheus.MustNewConstMetric(viewsDesc, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(viewsDesc, prometheus.GaugeValue, float64(lingering), "lingering")
	hits, misses, held := s.records.stats()
	ch <- prometheus.MustNewConstMetric(recordCacheDesc, prometheus.CounterValue, float64(hits), "hit")
	ch <- prometheus.MustNewConstMetric(recordCacheDesc, prometheus.CounterValue, float64(misses), "miss")
	ch <- prometheus.MustNewConstMetric(recordCacheBytesDesc, prometheus.GaugeValue, float64(held))
	ch <- prometheus.MustNewConstMetric(panicsDesc, prometheus.CounterValue, float64(s.RecoveredPanics()))
}
