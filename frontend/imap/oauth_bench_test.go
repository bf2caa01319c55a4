package imap_test

import (
	"bufio"
	"encoding/base64"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/oauthtest"
)

// BenchmarkAuthenticate measures AUTHENTICATE over a socket: OAUTHBEARER with an RS256,
// an ES256 and an EdDSA token of the tenant's issuer (JWKS cached after the first), and
// PLAIN through the verified-credentials cache for comparison. One connection
// authenticates and UNAUTHENTICATEs in a loop; only the AUTHENTICATE round trip is timed
// (p50-ns), and cpu-us/op is the process's user and system CPU (server and this client)
// per AUTHENTICATE and UNAUTHENTICATE:
//
//	go test ./frontend/imap -run '^$' -bench BenchmarkAuthenticate -benchtime 2000x
func BenchmarkAuthenticate(b *testing.B) {
	// Fixed ports below the ephemeral range, which other processes of the machine hold.
	srv, iss, _ := startOAuth(b, func(cfg *embedded.Config) {
		cfg.IMAPListen, cfg.GRPCListen = "127.0.0.1:21143", "127.0.0.1:21144"
	})
	for _, tc := range []struct{ name, command string }{
		{"OAUTHBEARER-RS256", "AUTHENTICATE OAUTHBEARER " + oauthBearer(alice, iss.Sign(b, oauthtest.RS256, iss.Claims(alice, oauthAudience)))},
		{"OAUTHBEARER-ES256", "AUTHENTICATE OAUTHBEARER " + oauthBearer(alice, iss.Sign(b, oauthtest.ES256, iss.Claims(alice, oauthAudience)))},
		{"OAUTHBEARER-EdDSA", "AUTHENTICATE OAUTHBEARER " + oauthBearer(alice, iss.Sign(b, oauthtest.EdDSA, iss.Claims(alice, oauthAudience)))},
		{"PLAIN-cached", "AUTHENTICATE PLAIN " + plainResponse(alice, testPassword)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			conn, err := net.Dial("tcp", srv.IMAPAddr())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			roundTrip := func(command string) string {
				if _, err := conn.Write([]byte("t " + command + "\r\n")); err != nil {
					b.Fatal(err)
				}
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if strings.HasPrefix(line, "t ") {
						return line
					}
				}
			}
			if _, err := r.ReadString('\n'); err != nil { // greeting
				b.Fatal(err)
			}
			roundTrip(tc.command) // warms the JWKS cache and the credentials cache
			roundTrip("UNAUTHENTICATE")
			took := make([]time.Duration, 0, b.N)
			cpuBefore := cpuTime()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if line := roundTrip(tc.command); !strings.HasPrefix(line, "t OK") {
					b.Fatalf("%s: %q", tc.name, line)
				}
				took = append(took, time.Since(start))
				roundTrip("UNAUTHENTICATE")
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64((cpuTime()-cpuBefore).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// plainResponse is a SASL PLAIN initial response, base64.
func plainResponse(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
