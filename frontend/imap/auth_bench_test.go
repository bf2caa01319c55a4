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
	"github.com/strata-mail/strata/internal/scram"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkLogin measures one login on a new connection over a socket (connect, greeting,
// login, LOGOUT) with LOGIN through the verified-credentials cache (a hit: one
// CheckCredential), LOGIN without it (argon2id on every login), and AUTHENTICATE
// SCRAM-SHA-256 (a GetScramCredentials, HMACs and hashes). The SCRAM client caches its
// SaltedPassword as RFC 5802 5.1 allows, so the figure is the server's cost; a client that
// does not (Cyrus SASL) adds one PBKDF2 derivation (internal/scram BenchmarkDerive). Client
// and server run in one process: cpu-ms/op is the whole process's user+system CPU per login.
//
//	go test ./frontend/imap -run '^$' -bench BenchmarkLogin -benchtime 200x
func BenchmarkLogin(b *testing.B) {
	cached := startServerWith(b, func(*embedded.Config) {})
	uncached := startServerWith(b, func(cfg *embedded.Config) { cfg.AuthCacheTTL = -1 })
	creds, err := cached.Metadata().GetScramCredentials(b.Context(), &metadatapb.GetScramCredentialsRequest{Email: embedded.DemoAccount, Hash: scram.SHA256.Name})
	if err != nil {
		b.Fatal(err)
	}
	salted := scram.SHA256.SaltedPassword(embedded.DemoPassword, creds.GetSalt(), int(creds.GetIterations()))
	login := func(b *testing.B, lc *lineConn) {
		lc.command("a LOGIN " + embedded.DemoAccount + " " + embedded.DemoPassword)
	}
	for _, bm := range []struct {
		name  string
		srv   *embedded.Server
		login func(*testing.B, *lineConn)
	}{
		{"LOGIN-cached", cached, login},
		{"LOGIN-uncached", uncached, login},
		{"SCRAM-SHA-256", cached, func(b *testing.B, lc *lineConn) {
			c := &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, SaltedPassword: salted}
			lc.write("a AUTHENTICATE SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString(c.First()))
			serverFirst, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(lc.line(), "+ "))
			final, err := c.Final(serverFirst)
			if err != nil {
				b.Fatal(err)
			}
			lc.write(base64.StdEncoding.EncodeToString(final))
			serverFinal, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(lc.line(), "+ "))
			if err := c.Verify(serverFinal); err != nil {
				b.Fatal(err)
			}
			lc.write("")
			lc.until("a OK")
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			durations := make([]time.Duration, 0, b.N)
			cpu := processCPU()
			for b.Loop() {
				start := time.Now()
				lc := dialLines(b, bm.srv.IMAPAddr())
				bm.login(b, lc)
				lc.command("z LOGOUT")
				lc.conn.Close()
				durations = append(durations, time.Since(start))
			}
			cpu = processCPU() - cpu
			slices.Sort(durations)
			b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(durations)), "cpu-ms/op")
		})
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lineConn is a minimal IMAP client for benchmarks: lines out, lines in.
type lineConn struct {
	b    *testing.B
	conn net.Conn
	r    *bufio.Reader
}

func dialLines(b *testing.B, addr string) *lineConn {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	lc := &lineConn{b: b, conn: conn, r: bufio.NewReader(conn)}
	lc.line() // greeting
	return lc
}

func (lc *lineConn) write(line string) {
	if _, err := lc.conn.Write([]byte(line + "\r\n")); err != nil {
		lc.b.Fatal(err)
	}
}

func (lc *lineConn) line() string {
	l, err := lc.r.ReadString('\n')
	if err != nil {
		lc.b.Fatalf("read: %v", err)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// until reads lines up to one starting with prefix; a tagged NO or BAD fails.
func (lc *lineConn) until(prefix string) {
	for {
		l := lc.line()
		if strings.HasPrefix(l, prefix) {
			return
		}
		if tag, _, _ := strings.Cut(prefix, " "); strings.HasPrefix(l, tag+" ") {
			lc.b.Fatalf("%s: %q", prefix, l)
		}
	}
}

// command sends a tagged command and waits for its OK.
func (lc *lineConn) command(line string) {
	tag, _, _ := strings.Cut(line, " ")
	lc.write(line)
	lc.until(tag + " OK")
}
