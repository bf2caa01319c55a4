package ldapauth_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

// BenchmarkLDAPLogin measures IMAP LOGIN of an LDAP tenant's account over a real socket
// against the real slapd: "uncached" binds to the directory at every login (the
// credentials cache off: a new StartTLS or LDAPS connection, the binds, the search, the
// attribute reads), "cached" is confirmed from the cache with one GetAccount. Each
// iteration dials a new IMAP connection outside the timer and times the LOGIN command
// alone. Reported: p50 and p99 of LOGIN, and the CPU time per login of this process
// (server and client, user+system) and of slapd.
func BenchmarkLDAPLogin(b *testing.B) {
	for _, bc := range []struct {
		name, user, password string
		cacheTTL             time.Duration
	}{
		{"search/uncached", "alice@" + corpDomain, alicePassword, -1},
		{"search/cached", "alice@" + corpDomain, alicePassword, 0},
		{"bind/uncached", "alice@" + bindDomain, alicePassword, -1},
		{"bind/cached", "alice@" + bindDomain, alicePassword, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv, _ := ldapServer(b, func(cfg *embedded.Config) { cfg.AuthCacheTTL = bc.cacheTTL })
			command := fmt.Sprintf("LOGIN %q %q", bc.user, bc.password)
			if got := dialIMAP(b, srv).cmd(command); !strings.HasPrefix(got, "OK") {
				b.Fatalf("LOGIN: %s", got)
			}
			latencies := make([]time.Duration, 0, b.N)
			cpu0, slapd0 := selfCPU(b), slapdCPU(b)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				c := dialIMAP(b, srv)
				b.StartTimer()
				start := time.Now()
				got := c.cmd(command)
				latencies = append(latencies, time.Since(start))
				b.StopTimer()
				if !strings.HasPrefix(got, "OK") {
					b.Fatalf("LOGIN: %s", got)
				}
				c.cmd("LOGOUT")
				c.conn.Close()
				b.StartTimer()
			}
			b.StopTimer()
			cpu, slapdTime := selfCPU(b)-cpu0, slapdCPU(b)-slapd0
			slices.Sort(latencies)
			b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "strata-cpu-µs/op")
			b.ReportMetric(float64(slapdTime.Microseconds())/float64(b.N), "slapd-cpu-µs/op")
		})
	}
}

// selfCPU is this process's user and system CPU time so far (includes the IMAP client).
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// slapdCPU is slapd's user and system CPU time so far, from /proc (clock ticks of 10ms on
// Linux: the per-login figure is exact only over many logins).
func slapdCPU(b *testing.B) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", slapd.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name in parentheses; utime and stime are the 14th and 15th.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
