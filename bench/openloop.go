package bench

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Open-loop runs (Config.Rate). A closed loop measures how fast a server answers clients
// that wait for every answer before asking again: the busier the server, the fewer
// requests it is sent, and a server that serves more operations also queues each one
// behind more others, so two servers' latencies are not compared at the same load. An
// open-loop run offers the same load to any server: operations are due at a fixed rate,
// whatever the answers, and each one's latency runs from when it was due, not from when
// a client got round to sending it, so a slow answer that holds up later operations is
// counted in theirs too (what Gil Tene calls coordinated omission, and wrk2 corrects the
// same way).
//
// The due times form one schedule for the whole run, Rate per second, spaced either as a
// Poisson process (exponential gaps, like independent users) or uniformly; each due
// operation is taken by whichever client is free first, so one client's IDLE (which holds
// its connection on purpose) delays no one else's operation. With too few clients for
// the rate times the latency (Little's law), operations wait for a free client and the
// report's start lag shows it.

// The arrival processes of an open-loop run (Config.Arrivals).
const (
	ArrivalsPoisson = "poisson"
	ArrivalsUniform = "uniform"
)

// schedule hands out the due times of an open-loop run, in order, to the clients that ask.
type schedule struct {
	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64
	poisson  bool
	arrivals string
	due      time.Time // the next due time
	end      time.Time // no operation is due at or after it
	issued   uint64
	// lag records, per operation, how long after its due time a client took it.
	lag Histogram
}

func newSchedule(start time.Time, duration time.Duration, rate float64, arrivals string, seed uint64) *schedule {
	s := &schedule{
		rng: rand.New(rand.NewPCG(seed, math.MaxUint64)), rate: rate, arrivals: arrivals,
		poisson: arrivals == ArrivalsPoisson, end: start.Add(duration),
	}
	s.due = start.Add(s.gap())
	return s
}

// gap is the time from one due time to the next: exponential with mean 1/rate for Poisson
// arrivals, exactly 1/rate for uniform ones.
func (s *schedule) gap() time.Duration {
	mean := float64(time.Second) / s.rate
	if s.poisson {
		return time.Duration(s.rng.ExpFloat64() * mean)
	}
	return time.Duration(mean)
}

// next returns the due time of the next operation, and false when the run has no more.
// The caller takes the operation when it returns: a due time already past is taken late,
// and the lag is recorded.
func (s *schedule) next() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	due := s.due
	if !due.Before(s.end) {
		return time.Time{}, false
	}
	s.due = due.Add(s.gap())
	s.issued++
	s.lag.Record(max(0, time.Since(due)))
	return due, true
}

// report adds the schedule's figures to rep: the rate offered, the operations it made
// due and those it never handed out (the run was stopped first), and how late the clients
// took them (p50, p99 and max start lag in ms; a large lag means the clients or the
// server did not keep up with the rate).
func (s *schedule) report(rep *Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dropped uint64
	for ; s.due.Before(s.end); s.due = s.due.Add(s.gap()) {
		dropped++
	}
	rep.Rate = s.rate
	rep.Arrivals = s.arrivals
	if rep.Figures == nil {
		rep.Figures = map[string]float64{}
	}
	rep.Figures["offered_ops_per_sec"] = s.rate
	rep.Figures["scheduled_ops"] = float64(s.issued)
	rep.Figures["unstarted_ops"] = float64(dropped)
	rep.Figures["start_lag_p50_ms"] = ms(s.lag.Quantile(0.50))
	rep.Figures["start_lag_p99_ms"] = ms(s.lag.Quantile(0.99))
	rep.Figures["start_lag_max_ms"] = ms(s.lag.Max())
}

// sleepUntil waits until t, and reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
