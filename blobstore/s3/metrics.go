package s3

import (
	"sync/atomic"
	"time"
)

// OpStats counts one kind of S3 call.
type OpStats struct {
	Calls  int64
	Errors int64 // calls that failed; a missing object on Stat is not a failure
	Bytes  int64 // body bytes sent (Put) or received (Get)
	// Latency is the summed wall time of the calls: for Get until the response headers,
	// for Put until the server acknowledged the whole body.
	Latency time.Duration
}

// Metrics is a snapshot of a store's counters since New.
type Metrics struct {
	Put, Get, Stat, Delete OpStats
	// DedupHits counts Puts that found their body already stored and uploaded nothing.
	DedupHits int64
	// Corrupt counts whole-body reads whose bytes did not match their key.
	Corrupt int64
}

type opCounters struct {
	calls, errors, bytes, nanos atomic.Int64
}

func (o *opCounters) record(start time.Time, bytes int64, err error) {
	o.calls.Add(1)
	if err != nil {
		o.errors.Add(1)
	}
	o.bytes.Add(bytes)
	o.nanos.Add(int64(time.Since(start)))
}

func (o *opCounters) snapshot() OpStats {
	return OpStats{
		Calls:   o.calls.Load(),
		Errors:  o.errors.Load(),
		Bytes:   o.bytes.Load(),
		Latency: time.Duration(o.nanos.Load()),
	}
}

type metrics struct {
	put, get, stat, delete opCounters
	dedupHits, corrupt     atomic.Int64
}

// Metrics returns the store's counters.
func (s *Store) Metrics() Metrics {
	return Metrics{
		Put:       s.metrics.put.snapshot(),
		Get:       s.metrics.get.snapshot(),
		Stat:      s.metrics.stat.snapshot(),
		Delete:    s.metrics.delete.snapshot(),
		DedupHits: s.metrics.dedupHits.Load(),
		Corrupt:   s.metrics.corrupt.Load(),
	}
}
