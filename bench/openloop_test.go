package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

// TestScheduleUniform: uniform arrivals are due exactly 1/rate apart from the start, and
// none at or after the end of the run.
func TestScheduleUniform(t *testing.T) {
	start := time.Now().Add(time.Hour) // in the future: no lag
	s := newSchedule(start, time.Second, 200, ArrivalsUniform, 1)
	var n int
	for {
		due, ok := s.next()
		if !ok {
			break
		}
		n++
		if want := start.Add(time.Duration(n) * 5 * time.Millisecond); !due.Equal(want) {
			t.Fatalf("operation %d due at %v, want %v", n, due.Sub(start), want.Sub(start))
		}
	}
	if n != 199 {
		t.Errorf("%d operations due in 1 s at 200/s, want 199 (the 200th is due at the end)", n)
	}
	if _, ok := s.next(); ok {
		t.Error("an operation due after the end")
	}
}

// TestSchedulePoisson: Poisson arrivals come in increasing order, about rate per second
// (10,000 expected: a Poisson count is within 4 standard deviations, 400, but for one
// seed in 30,000), and are the same for the same seed.
func TestSchedulePoisson(t *testing.T) {
	start := time.Now().Add(time.Hour)
	dues := func(seed uint64) []time.Time {
		s := newSchedule(start, 100*time.Second, 100, ArrivalsPoisson, seed)
		var out []time.Time
		for {
			due, ok := s.next()
			if !ok {
				return out
			}
			out = append(out, due)
		}
	}
	a := dues(7)
	if len(a) < 9600 || len(a) > 10400 {
		t.Errorf("%d operations due in 100 s at 100/s", len(a))
	}
	for i := 1; i < len(a); i++ {
		if a[i].Before(a[i-1]) {
			t.Fatalf("operation %d due before the one before it", i)
		}
	}
	b := dues(7)
	if len(b) != len(a) || !b[len(b)-1].Equal(a[len(a)-1]) {
		t.Error("the same seed gave another schedule")
	}
}

// TestOpenLoopTimesFromDue: the first operation of a slot is timed from when it was due,
// so the time it waited for a client counts; an operation after it in the same slot, from
// its own start.
func TestOpenLoopTimesFromDue(t *testing.T) {
	rec := NewRecorder()
	w := &worker{rec: rec, due: time.Now().Add(-time.Second)}
	w.timed(OpLogin, func() (int, error) { return 0, nil })
	w.timed(OpSelect, func() (int, error) { return 0, nil })
	if h := rec.ops[OpLogin]; h.Count() != 1 || h.Max() < time.Second {
		t.Errorf("the slot's first operation took %v, want at least the 1 s since it was due", h.Max())
	}
	if h := rec.ops[OpSelect]; h.Count() != 1 || h.Max() >= time.Second {
		t.Errorf("the slot's second operation took %v: timed from the slot's due time", h.Max())
	}
}

func TestOpenLoopConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Clients: 1, Users: []string{"u"}, Rate: -1},
		{Clients: 1, Users: []string{"u"}, Rate: 10, Arrivals: "bursty"},
	} {
		if err := cfg.defaults(); err == nil {
			t.Errorf("rate %v, arrivals %q accepted", cfg.Rate, cfg.Arrivals)
		}
	}
}

// TestOpenLoopAgainstEmbeddedServer runs the mixed workload open-loop: every answer
// verifies, and the report carries the offered rate and the schedule's figures.
func TestOpenLoopAgainstEmbeddedServer(t *testing.T) {
	srv := startEmbedded(t)
	ctx := context.Background()
	users := []string{embedded.DemoAccount}
	corpus := Corpus{Seed: 3, MaxSize: 16 << 10}
	if _, err := Populate(ctx, PopulateConfig{Addr: srv.IMAPAddr(), Users: users, Password: embedded.DemoPassword,
		Messages: 20, Conns: 1, Window: 8, Corpus: corpus}); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, Config{Addr: srv.IMAPAddr(), Users: users, Password: embedded.DemoPassword, Clients: 4,
		Duration: 2 * time.Second, Seed: 9, Corpus: corpus, IdleHold: 10 * time.Millisecond, Rate: 50, Arrivals: ArrivalsUniform})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, OpLogin, OpSelect)
	if rep.Rate != 50 || rep.Arrivals != ArrivalsUniform {
		t.Errorf("report of rate %v, arrivals %q", rep.Rate, rep.Arrivals)
	}
	// 2 s at 50/s: 99 slots (the 100th is due at the end). Each slot runs one operation
	// of the profile, and perhaps the LOGIN, SELECT or APPEND it needs first.
	if got := rep.Figures["scheduled_ops"]; got != 99 {
		t.Errorf("%v operations scheduled, want 99", got)
	}
	if rep.Total.Count < 99 {
		t.Errorf("%d operations answered of 99 scheduled", rep.Total.Count)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "open loop at 50 ops/s (uniform arrivals)") {
		t.Errorf("table without the open loop:\n%s", table.String())
	}
}
