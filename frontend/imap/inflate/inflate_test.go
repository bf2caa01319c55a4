package inflate

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// corpus returns n bytes mixing text (long matches) and noise (literals).
func corpus(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		switch rng.IntN(3) {
		case 0:
			b.WriteString(strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldY\r\n", 1+rng.IntN(50)))
		case 1:
			for range 1 + rng.IntN(200) {
				b.WriteByte(byte(rng.IntN(256)))
			}
		default:
			b.WriteString("A003 APPEND \"INBOX\" (\\Seen) {310+}\r\nFrom: someone@example.org\r\n")
		}
	}
	return b.Bytes()[:n]
}

// TestRoundTrip: what compress/flate writes, at every level and with flushes anywhere,
// comes back exactly.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, 5, flate.BestCompression, flate.HuffmanOnly} {
		for round := range 20 {
			data := corpus(rng, 1+rng.IntN(200_000))
			var z bytes.Buffer
			w, _ := flate.NewWriter(&z, level)
			for rest := data; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(40_000))
				w.Write(rest[:k])
				rest = rest[k:]
				if rng.IntN(2) == 0 {
					w.Flush()
				}
			}
			w.Close()
			got, err := io.ReadAll(NewReader(bufio.NewReader(&z)))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("level %d round %d: %d of %d bytes back, err %v", level, round, len(got), len(data), err)
			}
		}
	}
}

// TestHandsOverWhatIsFlushed: after each flush, everything written so far can be read with
// no more input: Read never waits for input it does not need.
func TestHandsOverWhatIsFlushed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pr, pw := io.Pipe()
	r := NewReader(bufio.NewReader(pr))
	w, _ := flate.NewWriter(pw, 5)
	buf := make([]byte, 64<<10)
	rounds := make(chan []byte, 1) // the writer may still be flushing the last round
	defer close(rounds)
	go func() {
		for data := range rounds {
			w.Write(data)
			w.Flush()
		}
	}()
	for round := range 50 {
		data := corpus(rng, 1+rng.IntN(5000))
		rounds <- data
		var got []byte
		for len(got) < len(data) {
			n, err := r.Read(buf)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round %d: wrong bytes", round)
		}
	}
}

// TestPartialFlush: mbsync's stream, captured after COMPRESS DEFLATE: four commands it
// ended with zlib's Z_PARTIAL_FLUSH, the last of them waiting for a continuation. Every
// byte of them is handed over while the connection stays open.
func TestPartialFlush(t *testing.T) {
	data, err := os.ReadFile("testdata/mbsync-partial-flush.bin")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(data)
	r := NewReader(bufio.NewReader(pr))
	var got []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for !bytes.HasSuffix(got, []byte("{222301}\r\n")) {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the decoder waits for more input after %d bytes", len(got))
	}
	if !bytes.HasPrefix(got, []byte("3 NAMESPACE\r\n")) || len(got) != 674 {
		t.Fatalf("got %d bytes: %q", len(got), got)
	}
}

// TestCorrupt: input that is not DEFLATE is an error, never a panic or a hang.
func TestCorrupt(t *testing.T) {
	for _, in := range [][]byte{{0xff, 0xff, 0xff}, {0x07}, {0x00, 0x05, 0x00, 0x00, 0x00}} {
		if _, err := io.ReadAll(NewReader(bufio.NewReader(bytes.NewReader(in)))); err == nil {
			t.Errorf("%x decoded", in)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0x01, 0x00, 0x00, 0xff, 0xff})
	data, _ := os.ReadFile("testdata/mbsync-partial-flush.bin")
	f.Add(data)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bufio.NewReader(bytes.NewReader(in)))
		buf := make([]byte, 1024)
		total := 0
		for total < 1<<24 {
			n, err := r.Read(buf)
			total += n
			if err != nil {
				return
			}
		}
	})
}

// TestStopsAtFlush: after a sync flush, Read hands over what it decoded without reading the
// bytes that follow, which after UNAUTHENTICATE (RFC 8437 4.1) are plain text.
func TestStopsAtFlush(t *testing.T) {
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, 5)
	w.Write([]byte("u1 UNAUTHENTICATE\r\n"))
	w.Flush()
	z.WriteString("u2 LOGIN demo@example.com demo\r\n")
	src := bufio.NewReader(&z)
	r := NewReader(src)
	buf := make([]byte, 1024)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "u1 UNAUTHENTICATE\r\n" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if rest, _ := io.ReadAll(src); string(rest) != "u2 LOGIN demo@example.com demo\r\n" {
		t.Fatalf("the decoder read into the plain text: %q left", rest)
	}
}
