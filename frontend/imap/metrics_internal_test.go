package imap

import (
	"testing"
	"time"
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
