package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// OpStats are the figures of one operation kind.
type OpStats struct {
	Op        string            `json:"op"`
	Count     uint64            `json:"count"`
	OpsPerSec float64           `json:"ops_per_sec"`
	MeanMs    float64           `json:"mean_ms"`
	P50Ms     float64           `json:"p50_ms"`
	P95Ms     float64           `json:"p95_ms"`
	P99Ms     float64           `json:"p99_ms"`
	MaxMs     float64           `json:"max_ms"`
	Bytes     uint64            `json:"bytes,omitempty"`
	Errors    map[string]uint64 `json:"errors,omitempty"`
	FirstErr  string            `json:"first_error,omitempty"`
}

// ErrorCount is the number of failed operations.
func (s OpStats) ErrorCount() uint64 {
	var n uint64
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// Report is what a run measured.
type Report struct {
	Scenario    string             `json:"scenario"`
	Server      string             `json:"server"`
	Label       string             `json:"label,omitempty"`
	Clients     int                `json:"clients,omitempty"`
	Users       int                `json:"users,omitempty"`
	Profile     string             `json:"profile,omitempty"`
	Seed        uint64             `json:"seed"`
	DurationSec float64            `json:"duration_sec"`
	Ops         []OpStats          `json:"ops"`
	Total       OpStats            `json:"total"`
	Figures     map[string]float64 `json:"figures,omitempty"` // scenario-specific, e.g. rss_per_conn_kib
	// Rate is the operations per second an open-loop run offered (Config.Rate), 0 for a
	// closed loop; Arrivals is how their due times were spaced.
	Rate     float64 `json:"rate,omitempty"`
	Arrivals string  `json:"arrivals,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Report summarises what the recorder holds over a run of the given length.
func (r *Recorder) Report(elapsed time.Duration) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &Report{DurationSec: elapsed.Seconds(), Total: OpStats{Op: "total", Errors: map[string]uint64{}}}
	all := &Histogram{}
	for _, op := range r.opNames() {
		s := OpStats{Op: op, Bytes: r.bytes[op]}
		if h := r.ops[op]; h != nil {
			s.Count = h.Count()
			s.OpsPerSec = float64(h.Count()) / elapsed.Seconds()
			s.MeanMs, s.P50Ms, s.P95Ms, s.P99Ms, s.MaxMs = ms(h.Mean()), ms(h.Quantile(0.50)), ms(h.Quantile(0.95)), ms(h.Quantile(0.99)), ms(h.Max())
			all.Merge(h)
		}
		if e := r.errors[op]; len(e) > 0 {
			s.Errors = map[string]uint64{}
			s.FirstErr = r.sample[op]
			for k, v := range e {
				s.Errors[k] = v
				rep.Total.Errors[k] += v
			}
		}
		rep.Total.Bytes += s.Bytes
		rep.Ops = append(rep.Ops, s)
	}
	rep.Total.Count = all.Count()
	rep.Total.OpsPerSec = float64(all.Count()) / elapsed.Seconds()
	rep.Total.MeanMs, rep.Total.P50Ms, rep.Total.P95Ms, rep.Total.P99Ms, rep.Total.MaxMs = ms(all.Mean()), ms(all.Quantile(0.50)), ms(all.Quantile(0.95)), ms(all.Quantile(0.99)), ms(all.Max())
	return rep
}

// Errors is the number of failed operations of the run.
func (rep *Report) Errors() uint64 { return rep.Total.ErrorCount() }

func formatErrors(m map[string]uint64) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// WriteTable prints the report as an aligned table.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "scenario %s on %s", rep.Scenario, rep.Server)
	if rep.Label != "" {
		fmt.Fprintf(w, " (%s)", rep.Label)
	}
	fmt.Fprintf(w, ": %d clients, %d users, %.1f s, seed %d", rep.Clients, rep.Users, rep.DurationSec, rep.Seed)
	if rep.Rate > 0 {
		fmt.Fprintf(w, ", open loop at %g ops/s (%s arrivals), latency from the scheduled start", rep.Rate, rep.Arrivals)
	}
	fmt.Fprintln(w)
	if rep.Profile != "" {
		fmt.Fprintf(w, "profile %s\n", rep.Profile)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tops/s\tmean ms\tp50 ms\tp95 ms\tp99 ms\tmax ms\tMiB\terrors\t")
	for _, s := range append(append([]OpStats(nil), rep.Ops...), rep.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%s\t\n",
			s.Op, s.Count, s.OpsPerSec, s.MeanMs, s.P50Ms, s.P95Ms, s.P99Ms, s.MaxMs, float64(s.Bytes)/(1<<20), formatErrors(s.Errors))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range rep.Ops {
		if s.FirstErr != "" {
			fmt.Fprintf(w, "first %s error: %s\n", s.Op, s.FirstErr)
		}
	}
	if len(rep.Figures) > 0 {
		keys := make([]string, 0, len(rep.Figures))
		for k := range rep.Figures {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s = %.1f\n", k, rep.Figures[k])
		}
	}
	return nil
}

// WriteJSON writes the report to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	rep := &Report{}
	if err := json.Unmarshal(b, rep); err != nil {
		return nil, fmt.Errorf("decode report %s: %w", path, err)
	}
	return rep, nil
}

// WriteComparison prints, per operation found in both reports, the throughput and latency
// of a and b and their ratios a/b: ops/s above 1 and latency below 1 mean a is faster.
func WriteComparison(w io.Writer, a, b *Report) error {
	name := func(r *Report) string {
		if r.Label != "" {
			return r.Label
		}
		return r.Server
	}
	fmt.Fprintf(w, "scenario %s: %s vs %s (ratio = %s / %s; ops/s above 1 and latency below 1 favour %s)\n",
		a.Scenario, name(a), name(b), name(a), name(b), name(a))
	if a.Rate > 0 || b.Rate > 0 {
		fmt.Fprintf(w, "open loop: %s offered %g ops/s (%s), %s %g ops/s (%s); latency from the scheduled start\n",
			name(a), a.Rate, a.Arrivals, name(b), b.Rate, b.Arrivals)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "op\t%s ops/s\t%s ops/s\tratio\t%s p50 ms\t%s p50 ms\tratio\t%s p99 ms\t%s p99 ms\tratio\terrors\t\n",
		name(a), name(b), name(a), name(b), name(a), name(b))
	bOps := map[string]OpStats{}
	for _, s := range b.Ops {
		bOps[s.Op] = s
	}
	ratio := func(x, y float64) string {
		if y == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", x/y)
	}
	rows := append(append([]OpStats(nil), a.Ops...), a.Total)
	bOps["total"] = b.Total
	for _, sa := range rows {
		sb, ok := bOps[sa.Op]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t%.2f\t%.2f\t%s\t%.2f\t%.2f\t%s\t%d/%d\t\n", sa.Op,
			sa.OpsPerSec, sb.OpsPerSec, ratio(sa.OpsPerSec, sb.OpsPerSec),
			sa.P50Ms, sb.P50Ms, ratio(sa.P50Ms, sb.P50Ms),
			sa.P99Ms, sb.P99Ms, ratio(sa.P99Ms, sb.P99Ms),
			sa.ErrorCount(), sb.ErrorCount())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	keys := make([]string, 0, len(a.Figures))
	for k := range a.Figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if vb, ok := b.Figures[k]; ok {
			fmt.Fprintf(w, "%s: %.1f vs %.1f (ratio %s)\n", k, a.Figures[k], vb, ratio(a.Figures[k], vb))
		}
	}
	return nil
}
