package metadata

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Metrics are the Prometheus metrics of a metadata node (docs/metrics.md): how long the FSM
// takes to apply commands and batches, to persist a snapshot, and how long a write waits from
// raft.Apply to its result. Each node has its own (NewMetrics), registered on its process's
// registry (internal/promexport); a nil *Metrics records nothing. Timing reads the clock,
// but nothing it reads goes into the replicated state.
type Metrics struct {
	apply            *prometheus.HistogramVec
	applyBatch       prometheus.Histogram
	snapshot         prometheus.Histogram
	snapshotFailures prometheus.Counter
	commit           prometheus.Histogram

	// byField are the apply histogram's children by the index of the Command field that
	// holds the command (commandOp), made on first use.
	byField []applyChild
	other   applyChild
}

type applyChild struct {
	once sync.Once
	obs  prometheus.Observer
}

// commandOp is the oneof of metadatapb.Command whose set field is the command's type.
var commandOp = (&metadatapb.Command{}).ProtoReflect().Descriptor().Oneofs().ByName("op")

// applyBuckets: one command from ~10 µs (a flag change) to seconds (an EXPUNGE or COPY of
// many thousand messages).
var applyBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// NewMetrics returns the metrics of one metadata node; give them to FSM.SetMetrics.
func NewMetrics() *Metrics {
	return &Metrics{
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_metadata_fsm_apply_duration_seconds",
			Help:    "Time the FSM takes to apply one command inside its Raft batch, by command type (the field of the Command oneof).",
			Buckets: applyBuckets,
		}, []string{"command"}),
		applyBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_metadata_fsm_batch_apply_duration_seconds",
			Help:    "Time the FSM takes to apply one Raft batch: its commands, the Pebble commit and the change events.",
			Buckets: applyBuckets,
		}),
		snapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_metadata_snapshot_persist_duration_seconds",
			Help:    "Time to persist an FSM snapshot: the store's flush and the stream to the Raft snapshot sink.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		snapshotFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_metadata_snapshot_persist_failures_total",
			Help: "FSM snapshots that failed to persist.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_metadata_raft_commit_duration_seconds",
			Help:    "Time from raft.Apply of a write on the leader to its result: replication to a quorum, commit and the FSM's apply. Failed applies are not counted.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		byField: make([]applyChild, commandOp.Parent().(protoreflect.MessageDescriptor).Fields().Len()),
	}
}

// observeApply records the apply time of cmd.
func (m *Metrics) observeApply(cmd *metadatapb.Command, d time.Duration) {
	if m == nil {
		return
	}
	child, name := &m.other, "unknown"
	if fd := cmd.ProtoReflect().WhichOneof(commandOp); fd != nil {
		child, name = &m.byField[fd.Index()], string(fd.Name())
	}
	child.once.Do(func() { child.obs = m.apply.WithLabelValues(name) })
	child.obs.Observe(d.Seconds())
}

func (m *Metrics) observeBatch(d time.Duration) {
	if m != nil {
		m.applyBatch.Observe(d.Seconds())
	}
}

func (m *Metrics) observeSnapshot(d time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.snapshotFailures.Inc()
		return
	}
	m.snapshot.Observe(d.Seconds())
}

func (m *Metrics) observeCommit(d time.Duration) {
	if m != nil {
		m.commit.Observe(d.Seconds())
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.apply, m.applyBatch, m.snapshot, m.snapshotFailures, m.commit}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// SetMetrics makes the FSM, and the Service over it, record m. Call it before the FSM is
// given to Raft.
func (f *FSM) SetMetrics(m *Metrics) { f.metrics = m }
