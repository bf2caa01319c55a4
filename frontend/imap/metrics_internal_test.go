package imap

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkCommandMetrics measures what the metrics add to each command: the lookup of its
// label children and the count and latency observation (runMeasured without run).
//
//	go test ./frontend/imap -run '^$' -bench BenchmarkCommandMetrics
func BenchmarkCommandMetrics(b *testing.B) {
	m := newServerMetrics()
	names := []string{"UID FETCH", "NOOP", "SELECT", "FROBNICATE"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		cm := m.command(names[i%len(names)])
		cm.observe(resultOf("OK"), time.Since(start))
	}
}

// TestCommandLabelsBounded checks that the command label takes only the dispatch table's
// names and UNKNOWN, whatever names clients send.
func TestCommandLabelsBounded(t *testing.T) {
	m := newServerMetrics()
	for _, name := range []string{"SELECT", "UID FETCH", "FROBNICATE", "", "UID FROBNICATE", "select"} {
		cm := m.command(name)
		if _, inTable := commands[name]; inTable != (cm.name == name) || !inTable && cm.name != unknownCommand {
			t.Errorf("command(%q) has label %q", name, cm.name)
		}
	}
}

// brokenMetadata is a metadata client whose every call panics (a nil interface inside): a
// deliberately injected bug.
type brokenMetadata struct{ metadatapb.MetadataClient }

// TestRecoveredPanicCounted injects a panic into a change feed goroutine and checks that it
// is counted and exported as strata_imap_panics_recovered_total.
func TestRecoveredPanicCounted(t *testing.T) {
	s := NewServer(Config{Metadata: brokenMetadata{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	newMailView(s, viewKey{}).run(context.Background())
	if got := s.RecoveredPanics(); got != 1 {
		t.Fatalf("RecoveredPanics = %d, want 1", got)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() == "strata_imap_panics_recovered_total" {
			found = true
			if v := f.GetMetric()[0].GetCounter().GetValue(); v != 1 {
				t.Errorf("strata_imap_panics_recovered_total = %v, want 1", v)
			}
		}
	}
	if !found {
		t.Error("no strata_imap_panics_recovered_total")
	}
}
