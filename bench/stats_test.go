package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	prevHi := int64(0)
	for i := 0; i < len(Histogram{}.counts)-1; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi || hi <= lo {
			t.Fatalf("bucket %d is [%d, %d), previous ended at %d", i, lo, hi, prevHi)
		}
		if bucketIndex(lo) != i || bucketIndex(hi-1) != i {
			t.Fatalf("bucket %d [%d, %d): index of ends %d, %d", i, lo, hi, bucketIndex(lo), bucketIndex(hi-1))
		}
		prevHi = hi
	}
}

func TestHistogramQuantilesMatchSortedSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var h Histogram
	samples := make([]int64, 50000)
	for i := range samples {
		// Latencies from 10 µs to seconds, skewed like real ones.
		v := int64(200 * math.Exp(1.5*rng.NormFloat64()))
		samples[i] = v
		h.Record(time.Duration(v) * time.Microsecond)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
		want := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.Quantile(q).Microseconds()
		if diff := math.Abs(float64(got-want)) / float64(want); diff > 0.01 && got-want > 1 && want-got > 1 {
			t.Errorf("q%.3f: histogram %d µs, exact %d µs (%.2f%% off)", q, got, want, 100*diff)
		}
	}
	if h.Count() != uint64(len(samples)) || h.Max().Microseconds() != samples[len(samples)-1] {
		t.Errorf("count %d max %v, want %d and %d µs", h.Count(), h.Max(), len(samples), samples[len(samples)-1])
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 {
		t.Fatal("empty histogram reports latencies")
	}
	for i := 1; i <= 100; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(i+100) * time.Millisecond)
	}
	a.Merge(&b)
	a.Merge(&empty)
	if a.Count() != 200 {
		t.Fatalf("count %d", a.Count())
	}
	if p50 := a.Quantile(0.5); p50 < 99*time.Millisecond || p50 > 101*time.Millisecond {
		t.Errorf("p50 of 1..200 ms is %v", p50)
	}
	if a.Max() != 200*time.Millisecond {
		t.Errorf("max %v", a.Max())
	}
}

func TestRecorderErrorKinds(t *testing.T) {
	rec := NewRecorder()
	rec.Success("fetch", time.Millisecond, 10)
	rec.Failure("fetch", &ServerError{Status: "NO", Text: "[UNAVAILABLE] try later"})
	rec.Failure("fetch", &VerifyError{Msg: "no ENVELOPE"})
	rec.Failure("store", &ProtocolError{Msg: "garbage"})
	rep := rec.Report(time.Second)
	if rep.Errors() != 3 || rep.Total.Count != 1 || rep.Total.Bytes != 10 {
		t.Fatalf("errors %d, count %d, bytes %d", rep.Errors(), rep.Total.Count, rep.Total.Bytes)
	}
	want := map[string]uint64{"no": 1, "verify": 1, "protocol": 1}
	for k, v := range want {
		if rep.Total.Errors[k] != v {
			t.Errorf("errors by kind %v, want %v", rep.Total.Errors, want)
		}
	}
}
