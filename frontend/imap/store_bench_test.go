package imap_test

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

// BenchmarkStore measures the latency of a flag change with one client, what the STORE
// step of bench-compare times (bench/loadgen.go store): STORE of 1 to 5 messages with
// +FLAGS.SILENT or -FLAGS.SILENT and a FETCH FLAGS of the same messages sent in one write,
// timed until the FETCH's tagged OK. "StoreOnly" is the STORE alone, "FetchFlags" the FETCH
// alone, "FetchFlagsTwicePipelined" two of them in one write (what answering a pipeline
// costs beyond its commands: one write of the responses or one each). The mailbox holds 200 messages, as each user's of the bench profile; the server
// is embedded in the test process with its data directory on the test's temporary disk,
// so every STORE waits for a real Raft log fsync. Besides ns/op it reports the p50 and
// p99 of the iterations.
//
//	go test ./frontend/imap -run '^$' -bench BenchmarkStore -benchtime 2000x -count 3
func BenchmarkStore(b *testing.B) {
	srv := startServerWith(b, func(cfg *embedded.Config) { cfg.MaxMessageSize = 1 << 20 })
	fillMailbox(b, srv, 200)
	bc := dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")
	for _, bm := range []struct {
		name     string
		commands func(i int) []string
	}{
		{"StoreSilentFetchFlags", func(i int) []string {
			set, sign := storeBenchSet(i)
			return []string{"STORE " + set + " " + sign + `FLAGS.SILENT (\Flagged)`, "FETCH " + set + " (FLAGS)"}
		}},
		{"StoreOnly", func(i int) []string {
			set, sign := storeBenchSet(i)
			return []string{"STORE " + set + " " + sign + `FLAGS.SILENT (\Flagged)`}
		}},
		{"FetchFlags", func(i int) []string {
			set, _ := storeBenchSet(i)
			return []string{"FETCH " + set + " (FLAGS)"}
		}},
		{"FetchFlagsTwicePipelined", func(i int) []string {
			set, _ := storeBenchSet(i)
			return []string{"FETCH " + set + " (FLAGS)", "FETCH " + set + " (FLAGS)"}
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			bc.b = b
			var took []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				bc.pipeline(bm.commands(i)...)
				took = append(took, time.Since(start))
				i++
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-us")
		})
	}
}

// storeBenchSet is the i-th message set of BenchmarkStore, 1 to 5 messages of 200 as the
// bench profile picks them, and whether the STORE adds (even i) or removes the flag: each
// set is flagged, then unflagged, so that every STORE changes the messages it names.
func storeBenchSet(i int) (set, sign string) {
	lo := 1 + (i/2*37)%195
	hi := lo + i/2%5
	sign = "+"
	if i%2 == 1 {
		sign = "-"
	}
	return fmt.Sprintf("%d:%d", lo, hi), sign
}

// pipeline sends commands in one write, as a client that pipelines them (RFC 9051 5.5),
// and reads the responses up to the last one's tagged OK; each must end OK.
func (bc *benchConn) pipeline(commands ...string) {
	var out bytes.Buffer
	tags := make([]string, len(commands))
	for k, command := range commands {
		bc.n++
		tags[k] = fmt.Sprintf("b%d", bc.n)
		out.WriteString(tags[k] + " " + command + "\r\n")
	}
	if _, err := io.Copy(bc.conn, &out); err != nil {
		bc.b.Fatal(err)
	}
	bc.conn.SetReadDeadline(time.Now().Add(time.Minute))
	for _, tag := range tags {
		for {
			line, err := bc.r.ReadSlice('\n')
			if err != nil {
				bc.b.Fatalf("%v: %v", commands, err)
			}
			if bytes.HasPrefix(line, []byte(tag+" ")) {
				if !bytes.HasPrefix(line, []byte(tag+" OK")) {
					bc.b.Fatalf("%v: %s", commands, line)
				}
				break
			}
		}
	}
}
