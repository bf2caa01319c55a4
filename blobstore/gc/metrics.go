package gc

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the collector deleted (docs/metrics.md). A nil *Metrics records
// nothing.
type Metrics struct {
	blobs  prometheus.Counter
	bytes  prometheus.Counter
	passes *prometheus.CounterVec
}

// NewMetrics returns the collector's metrics; register them with the process's registry.
func NewMetrics() *Metrics {
	return &Metrics{
		blobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_blob_gc_deleted_blobs_total",
			Help: "Message bodies the blob garbage collector deleted from the blob store.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_blob_gc_deleted_bytes_total",
			Help: "Bytes of the message bodies the blob garbage collector deleted (their size just before deletion).",
		}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_blob_gc_passes_total",
			Help: "Garbage collection passes run here, by result (ok, error).",
		}, []string{"result"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.blobs.Describe(ch)
	m.bytes.Describe(ch)
	m.passes.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.blobs.Collect(ch)
	m.bytes.Collect(ch)
	m.passes.Collect(ch)
}

func (m *Metrics) deleted(size int64) {
	if m == nil {
		return
	}
	m.blobs.Inc()
	m.bytes.Add(float64(size))
}

func (m *Metrics) pass(err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.passes.WithLabelValues(result).Inc()
}
