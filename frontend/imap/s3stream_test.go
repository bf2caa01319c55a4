package imap_test

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/s3test"
)

// bigMessageSize is the size of the streaming test's message.
const bigMessageSize = 50 << 20

// writeBigMessage writes a multipart message of exactly size bytes: a text part and a
// base64 part that fills the rest. It never holds more than one line.
func writeBigMessage(w io.Writer, size int) error {
	head := "From: Alice <alice@example.org>\r\nTo: demo@example.com\r\nSubject: big\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n" +
		"--b0\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n" +
		"--b0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	tail := "\r\n--b0--\r\n"
	if _, err := io.WriteString(w, head); err != nil {
		return err
	}
	line := []byte(strings.Repeat("QUJD", 19) + "\r\n") // 78 bytes
	left := size - len(head) - len(tail)
	for n := 0; left > 0; n++ {
		chunk := line
		if left < len(chunk) {
			chunk = chunk[len(chunk)-left:]
		}
		copy(chunk, fmt.Sprintf("%08d", n%1e8))
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		left -= len(chunk)
	}
	_, err := io.WriteString(w, tail)
	return err
}

// heapPeak samples the bytes in live and not yet swept heap objects every 2 ms until stop
// is called, which returns the highest sample.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// heapNow returns the heap's object bytes after a collection.
func heapNow() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// TestStreamBigMessageThroughS3 APPENDs a 50 MiB message over a socket to a server in this
// process whose bodies are in versitygw, then FETCHes BODY[] of it, and samples the
// process's heap meanwhile: the message is streamed (spool file, S3 upload, MIME parse,
// ranged read) and never held whole, so the heap grows by far less than its size. The
// client side of the test streams too. With GOGC at 20 during the test the samples stay
// close to the live heap.
//
//	go test -run TestStreamBigMessageThroughS3 -v ./frontend
func TestStreamBigMessageThroughS3(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MiB through S3")
	}
	gw := s3test.Start(t, s3test.Options{})
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.S3 = &s3.Config{
			Endpoint: gw.Endpoint, Bucket: "strata-stream", AccessKey: gw.AccessKey, SecretKey: gw.SecretKey,
			Insecure: true, Addressing: s3.AddressingPath,
		}
		cfg.MaxMessageSize = 64 << 20
	})
	defer debug.SetGCPercent(debug.SetGCPercent(20))

	conn, err := net.Dial("tcp", srv.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	expectTagged := func(tag string) string {
		t.Helper()
		for {
			conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %s: %v", tag, err)
			}
			if strings.HasPrefix(line, tag+" ") {
				if !strings.HasPrefix(line, tag+" OK") {
					t.Fatalf("%s", line)
				}
				return line
			}
		}
	}
	fmt.Fprintf(conn, "a LOGIN %s %s\r\n", embedded.DemoAccount, embedded.DemoPassword)
	expectTagged("a")

	base := heapNow()
	stop := heapPeak()
	start := time.Now()
	digest := sha256.New()
	fmt.Fprintf(conn, "b APPEND INBOX {%d+}\r\n", bigMessageSize)
	w := bufio.NewWriterSize(io.MultiWriter(conn, digest), 64<<10)
	if err := writeBigMessage(w, bigMessageSize); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "\r\n")
	expectTagged("b")
	appendPeak, appendTime := stop(), time.Since(start)
	var want [sha256.Size]byte
	digest.Sum(want[:0])

	base2 := heapNow()
	stop = heapPeak()
	start = time.Now()
	fmt.Fprintf(conn, "c SELECT INBOX\r\nd FETCH 1 BODY.PEEK[]\r\n")
	expectTagged("c")
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasSuffix(line, fmt.Sprintf("{%d}\r\n", bigMessageSize)) {
		t.Fatalf("FETCH response %q, %v", line, err)
	}
	got := sha256.New()
	if _, err := io.CopyN(got, r, bigMessageSize); err != nil {
		t.Fatalf("read the literal: %v", err)
	}
	expectTagged("d")
	fetchPeak, fetchTime := stop(), time.Since(start)
	if [sha256.Size]byte(got.Sum(nil)) != want {
		t.Fatal("FETCH BODY[] returned other bytes than were appended")
	}

	const bound = 16 << 20
	appendGrowth := int64(appendPeak) - int64(base)
	fetchGrowth := int64(fetchPeak) - int64(base2)
	t.Logf("50 MiB APPEND: heap %d KiB before, peak %d KiB (growth %d KiB), %v", base>>10, appendPeak>>10, appendGrowth>>10, appendTime)
	t.Logf("50 MiB FETCH BODY[]: heap %d KiB before, peak %d KiB (growth %d KiB), %v", base2>>10, fetchPeak>>10, fetchGrowth>>10, fetchTime)
	if appendGrowth > bound || fetchGrowth > bound {
		t.Fatalf("heap growth APPEND %d KiB, FETCH %d KiB; want both below %d KiB", appendGrowth>>10, fetchGrowth>>10, bound>>10)
	}
}
