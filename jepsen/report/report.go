// Package report turns the histories and checker results of many seeded runs into the
// markdown report of docs/: the faults injected per kind, the operations checked, every
// anomaly, and per fault kind how available the store stayed: how many writes and reads
// invoked inside the fault windows failed or ended unknown, the longest stretch without a
// successful write and without a successful read that overlaps a window, and the latency
// of successful operations (p50, p99) inside and outside the windows. It is pure: the same
// runs give the same bytes.
package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/strata-mail/strata/jepsen/checker"
	"github.com/strata-mail/strata/jepsen/history"
)

// Run is one seed's history and what the checker found in it.
type Run struct {
	History *history.History
	Result  *checker.Result
}

// Writes and reads, for availability. Connect and NOOP are neither.
var (
	writeKinds = []string{history.KindAppend, history.KindDeliver, history.KindStore, history.KindExpunge,
		history.KindUIDExpunge, history.KindMove, history.KindCopy}
	readKinds = []string{history.KindFetch, history.KindSearch, history.KindSelect, history.KindStatus}
)

// maxAnomaliesListed bounds the anomaly section; the counts are always complete.
const maxAnomaliesListed = 30

// Write writes the markdown report of runs to w: title, then preface (how the runs were made:
// the command, commit and machine; may be empty), then the figures.
func Write(w io.Writer, title, preface string, runs []Run) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", title)
	if preface = strings.TrimSpace(preface); preface != "" {
		b.WriteString(preface + "\n\n")
	}
	ops, anomalies := 0, 0
	byKind := map[string]int{}
	checks := map[string]int{}
	for _, r := range runs {
		ops += r.Result.Ops
		anomalies += len(r.Result.Anomalies)
		for _, a := range r.Result.Anomalies {
			byKind[a.Kind]++
		}
		for k, n := range r.Result.Checks {
			checks[k] += n
		}
	}
	fmt.Fprintf(&b, "%d seeds, %d operations checked, %d anomalies.\n\n", len(runs), ops, anomalies)

	b.WriteString("## Checks\n\n| check | comparisons | anomalies |\n|---|---:|---:|\n")
	for _, k := range sortedKeys(checks, byKind) {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", k, checks[k], byKind[k])
	}

	b.WriteString("\n## Faults and availability\n\n")
	b.WriteString("Inside a window means invoked while the fault was on. The longest stretch is the longest time without any successful write (read) that overlaps a window of the kind, recovery included.\n\n")
	b.WriteString("| fault | windows | writes in window (failed / unknown) | reads in window (failed / unknown) | longest without a write | longest without a read | p50 / p99 inside | p50 / p99 outside |\n")
	b.WriteString("|---|---:|---|---|---:|---:|---|---|\n")
	for _, s := range availability(runs) {
		fmt.Fprintf(&b, "| %s | %d | %d (%d / %d) | %d (%d / %d) | %s | %s | %s / %s | %s / %s |\n",
			s.kind, s.windows, s.writes.total, s.writes.failed, s.writes.unknown, s.reads.total, s.reads.failed, s.reads.unknown,
			dur(s.noWrite), dur(s.noRead), dur(pct(s.inside, 50)), dur(pct(s.inside, 99)), dur(pct(s.outside, 50)), dur(pct(s.outside, 99)))
	}

	b.WriteString("\n## Anomalies\n\n")
	if anomalies == 0 {
		b.WriteString("None.\n")
	}
	listed := 0
	for _, r := range runs {
		for _, a := range r.Result.Anomalies {
			if listed == maxAnomaliesListed {
				fmt.Fprintf(&b, "\n%d more not listed.\n", anomalies-listed)
				_, err := io.WriteString(w, b.String())
				return err
			}
			listed++
			ids := make([]string, len(a.Ops))
			for i, op := range a.Ops {
				ids[i] = fmt.Sprint(op.ID)
			}
			fmt.Fprintf(&b, "- seed %d, %s: %s (ops %s)\n", r.History.Seed, a.Kind, a.Message, strings.Join(ids, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys(maps ...map[string]int) []string {
	var keys []string
	for _, m := range maps {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

type tally struct{ total, failed, unknown int }

func (t *tally) add(op *history.Op) {
	t.total++
	switch op.Outcome {
	case history.Fail:
		t.failed++
	case history.Unknown:
		t.unknown++
	}
}

type faultStats struct {
	kind            string
	windows         int
	writes, reads   tally
	noWrite, noRead time.Duration
	inside, outside []time.Duration
}

// availability computes the per-fault-kind figures over all runs.
func availability(runs []Run) []*faultStats {
	stats := map[string]*faultStats{}
	for _, r := range runs {
		h := r.History
		end := runEnd(h)
		writeOK := successes(h, writeKinds)
		readOK := successes(h, readKinds)
		windows := map[string][][2]time.Duration{}
		for _, f := range h.Faults {
			s := stats[f.Kind]
			if s == nil {
				s = &faultStats{kind: f.Kind}
				stats[f.Kind] = s
			}
			s.windows++
			e := f.End
			if e == 0 {
				e = end
			}
			windows[f.Kind] = append(windows[f.Kind], [2]time.Duration{f.Start, e})
			s.noWrite = max(s.noWrite, longestGap(writeOK, f.Start, e, end))
			s.noRead = max(s.noRead, longestGap(readOK, f.Start, e, end))
		}
		for i := range h.Ops {
			op := &h.Ops[i]
			isWrite, isRead := slices.Contains(writeKinds, op.Kind), slices.Contains(readKinds, op.Kind)
			if !isWrite && !isRead {
				continue
			}
			inAny := false
			for kind, ws := range windows {
				if !inside(ws, op.Invoke) {
					continue
				}
				inAny = true
				s := stats[kind]
				if isWrite {
					s.writes.add(op)
				} else {
					s.reads.add(op)
				}
				if op.Outcome == history.OK {
					s.inside = append(s.inside, op.Complete-op.Invoke)
				}
			}
			if !inAny && op.Outcome == history.OK {
				for _, s := range stats {
					if len(windows[s.kind]) > 0 {
						s.outside = append(s.outside, op.Complete-op.Invoke)
					}
				}
			}
		}
	}
	out := make([]*faultStats, 0, len(stats))
	for _, s := range stats {
		slices.Sort(s.inside)
		slices.Sort(s.outside)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *faultStats) int { return cmp.Compare(a.kind, b.kind) })
	return out
}

func inside(windows [][2]time.Duration, t time.Duration) bool {
	for _, w := range windows {
		if t >= w[0] && t <= w[1] {
			return true
		}
	}
	return false
}

// runEnd is the last time anything in h happened.
func runEnd(h *history.History) time.Duration {
	var end time.Duration
	for _, op := range h.Ops {
		end = max(end, op.Invoke, op.Complete)
	}
	for _, f := range h.Faults {
		end = max(end, f.Start, f.End)
	}
	return end
}

// successes returns the sorted completion times of the successful ops of the kinds.
func successes(h *history.History, kinds []string) []time.Duration {
	var out []time.Duration
	for _, op := range h.Ops {
		if op.Outcome == history.OK && slices.Contains(kinds, op.Kind) {
			out = append(out, op.Complete)
		}
	}
	slices.Sort(out)
	return out
}

// longestGap returns the longest interval between consecutive successes (the run's start
// and end bounding them) that overlaps [from, to].
func longestGap(ok []time.Duration, from, to, end time.Duration) time.Duration {
	var longest time.Duration
	prev := time.Duration(0)
	for _, t := range append(slices.Clone(ok), end) {
		if t >= from && prev <= to {
			longest = max(longest, t-prev)
		}
		prev = t
		if prev > to {
			break
		}
	}
	return longest
}

// pct is the p-th percentile of sorted durations, 0 when there are none.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(i, len(sorted))-1)]
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
