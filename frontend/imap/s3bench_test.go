package imap_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/s3test"
)

// BenchmarkS3Append and BenchmarkS3Fetch measure APPEND and FETCH BODY.PEEK[] through IMAP
// against a server in this process whose bodies are in versitygw (posix backend) on
// loopback, without the body cache, from 1 and 16 raw-socket clients. Every APPEND stores
// a new body (no dedup hit). Results are in docs/benchmarks.md ("Bodies in S3").
//
//	go test -run '^$' -bench 'BenchmarkS3' -benchtime 200x ./frontend
func BenchmarkS3Append(b *testing.B) {
	benchAppend(b, []int{4 << 10, 1 << 20}, []int{1, 16}, startBenchS3)
}

// benchAppend runs APPENDs of each size from each number of clients against the server start
// makes for each step, every APPEND a new body, and reports appends per second.
func benchAppend(b *testing.B, sizes, clientCounts []int, start func(b *testing.B) *embedded.Server) {
	for _, size := range sizes {
		for _, clients := range clientCounts {
			b.Run(fmt.Sprintf("%s/clients=%d", s3SizeName(size), clients), func(b *testing.B) {
				srv := start(b)
				conns := s3BenchClients(b, srv, clients)
				var next atomic.Int64
				b.SetBytes(int64(size))
				b.ResetTimer()
				runS3Clients(b, conns, func(c *s3BenchConn) error {
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						if err := c.append(s3BenchBody(size, n)); err != nil {
							return err
						}
					}
					return nil
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			})
		}
	}
}

func BenchmarkS3Fetch(b *testing.B) {
	const stored = 64
	for _, size := range []int{4 << 10, 1 << 20} {
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", s3SizeName(size), clients), func(b *testing.B) {
				srv := startBenchS3(b)
				conns := s3BenchClients(b, srv, clients)
				for n := range stored {
					if err := conns[0].append(s3BenchBody(size, int64(n))); err != nil {
						b.Fatal(err)
					}
				}
				for _, c := range conns {
					if err := c.command("SELECT INBOX", nil); err != nil {
						b.Fatal(err)
					}
				}
				var next atomic.Int64
				b.SetBytes(int64(size))
				b.ResetTimer()
				runS3Clients(b, conns, func(c *s3BenchConn) error {
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						if err := c.fetch(n%stored + 1); err != nil {
							return err
						}
					}
					return nil
				})
			})
		}
	}
}

func s3SizeName(size int) string {
	if size >= 1<<20 {
		return fmt.Sprintf("%dMiB", size>>20)
	}
	return fmt.Sprintf("%dKiB", size>>10)
}

func startBenchS3(b *testing.B) *embedded.Server {
	gw := s3test.Start(b, s3test.Options{})
	return startServerWith(b, func(cfg *embedded.Config) {
		cfg.S3 = &s3.Config{
			Endpoint: gw.Endpoint, Bucket: "strata-bench", AccessKey: gw.AccessKey, SecretKey: gw.SecretKey,
			Insecure: true, Addressing: s3.AddressingPath,
		}
		cfg.BlobCacheSize = -1
		cfg.MaxMessageSize = 2 << 20
	})
}

// s3BenchBody is a message of exactly size bytes, different for every n.
func s3BenchBody(size int, n int64) []byte {
	head := fmt.Sprintf("From: a@example.org\r\nSubject: bench %d\r\n\r\n", n)
	body := []byte(head + strings.Repeat("x", size-len(head)))
	for i := len(head) + 76; i+1 < size; i += 78 {
		body[i], body[i+1] = '\r', '\n'
	}
	return body
}

// s3BenchConn is a logged-in raw IMAP connection.
type s3BenchConn struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	tag  int
}

func s3BenchClients(b *testing.B, srv *embedded.Server, n int) []*s3BenchConn {
	conns := make([]*s3BenchConn, n)
	for i := range conns {
		conn, err := net.Dial("tcp", srv.IMAPAddr())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		c := &s3BenchConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 64<<10)}
		if _, err := c.r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		if err := c.command("LOGIN "+embedded.DemoAccount+" "+embedded.DemoPassword, nil); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	return conns
}

func runS3Clients(b *testing.B, conns []*s3BenchConn, work func(*s3BenchConn) error) {
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(c); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// command sends a command line, with literal after it if not nil (LITERAL+), and reads to
// its tagged OK, passing literals in untagged responses to sink.
func (c *s3BenchConn) command(line string, literal []byte) error {
	c.tag++
	tag := fmt.Sprintf("t%d", c.tag)
	c.conn.SetDeadline(time.Now().Add(time.Minute))
	if literal != nil {
		fmt.Fprintf(c.w, "%s %s {%d+}\r\n", tag, line, len(literal))
		c.w.Write(literal)
		c.w.WriteString("\r\n")
	} else {
		fmt.Fprintf(c.w, "%s %s\r\n", tag, line)
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("%s: %w", line, err)
		}
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
			var n int64
			if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err == nil {
				if _, err := io.CopyN(io.Discard, c.r, n); err != nil {
					return fmt.Errorf("%s: literal: %w", line, err)
				}
			}
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return fmt.Errorf("%s: %s", line, rest)
			}
			return nil
		}
	}
}

func (c *s3BenchConn) append(body []byte) error { return c.command("APPEND INBOX", body) }

func (c *s3BenchConn) fetch(seq int64) error {
	return c.command(fmt.Sprintf("FETCH %d BODY.PEEK[]", seq), nil)
}
