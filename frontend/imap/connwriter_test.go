package imap

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
)

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestConnWriter(t *testing.T) {
	var out bytes.Buffer
	cw := newConnWriter(&out)
	if err := cw.Flush(); err != nil || cw.bw != nil {
		t.Fatalf("flush of nothing: %v, buffer held %v", err, cw.bw != nil)
	}
	cw.WriteString("* OK ")
	cw.Write([]byte("hello\r\n"))
	if out.Len() != 0 || cw.bw == nil {
		t.Fatalf("written before the flush: %q", out.String())
	}
	big := strings.Repeat("x", 3*writeBufferSize+5)
	if n, err := io.Copy(cw, strings.NewReader(big)); err != nil || n != int64(len(big)) {
		t.Fatalf("copy: %d, %v", n, err)
	}
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	if cw.bw != nil {
		t.Fatal("the buffer was not returned after the flush")
	}
	if want := "* OK hello\r\n" + big; out.String() != want {
		t.Fatalf("wrote %d bytes, want %d", out.Len(), len(want))
	}

	// A failed flush keeps its error: later writes and flushes fail too.
	boom := errors.New("boom")
	cw = newConnWriter(failingWriter{boom})
	cw.WriteString("* BYE\r\n")
	if err := cw.Flush(); !errors.Is(err, boom) {
		t.Fatalf("flush: %v, want %v", err, boom)
	}
	cw.WriteString("more")
	if err := cw.Flush(); !errors.Is(err, boom) {
		t.Fatalf("second flush: %v, want %v", err, boom)
	}
}

// BenchmarkConnWriter is one small response written and flushed, as each command does.
func BenchmarkConnWriter(b *testing.B) {
	cw := newConnWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		cw.WriteString("* 1 FETCH (FLAGS (\\Seen))\r\nA1 OK FETCH completed\r\n")
		if err := cw.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConnWriterDeflate: compressed responses, each from a compressor taken from the pool
// and reset, make one DEFLATE stream, which stopDeflate ends with a final block; what
// follows is plain.
func TestConnWriterDeflate(t *testing.T) {
	var out bytes.Buffer
	cw := newConnWriter(&out)
	cw.WriteString("a OK COMPRESS\r\n")
	cw.Flush()
	plainLen := out.Len()
	cw.startDeflate()
	var want strings.Builder
	for i := range 5 {
		line := fmt.Sprintf("* %d FETCH (FLAGS (\\Seen))\r\n%s\r\n", i, strings.Repeat("x", i*10000))
		want.WriteString(line)
		cw.WriteString(line)
		if err := cw.Flush(); err != nil {
			t.Fatal(err)
		}
		if cw.bw != nil || cw.zw != nil || cw.zout != nil {
			t.Fatal("buffers held after the flush")
		}
		// Each flush ends with the empty stored block of a sync flush (RFC 4978 4).
		if !bytes.HasSuffix(out.Bytes(), []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("response %d does not end with a sync flush", i)
		}
	}
	cw.WriteString("z OK UNAUTHENTICATE\r\n")
	want.WriteString("z OK UNAUTHENTICATE\r\n")
	if err := cw.stopDeflate(); err != nil {
		t.Fatal(err)
	}
	cw.WriteString("plain again\r\n")
	cw.Flush()

	r := bytes.NewReader(out.Bytes()[plainLen:])
	inflated, err := io.ReadAll(stdflate.NewReader(r)) // ends at the final block
	if err != nil {
		t.Fatal(err)
	}
	if string(inflated) != want.String() {
		t.Fatalf("inflated %d bytes, want %d", len(inflated), want.Len())
	}
	if rest, _ := io.ReadAll(r); string(rest) != "plain again\r\n" {
		t.Fatalf("after the final block: %q", rest)
	}
}

// imapResponses is a header listing and some message bodies, as FETCH sends them.
func imapResponses() []byte {
	words := strings.Fields("the meeting project report budget review draft schedule please find attached " +
		"regards thanks next week call notes update status question customer invoice release")
	var b bytes.Buffer
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&b, "* %d FETCH (UID %d FLAGS (\\Seen) RFC822.SIZE %d ENVELOPE (\"Mon, %d Feb 2026 21:52:25 +0100\" "+
			"\"Re: %s %s\" ((\"Alice Example\" NIL \"alice\" \"example.org\")) NIL NIL ((NIL NIL \"demo\" \"example.com\")) "+
			"NIL NIL NIL \"<%x.%d@example.org>\"))\r\n", i, i+100, 2000+i*37%9000, i%28+1, words[i%len(words)], words[i*7%len(words)], i*7919, i)
		if i%20 == 0 {
			var body strings.Builder
			for j := 0; body.Len() < 6000; j++ {
				body.WriteString(words[(i*j+j*j)%len(words)])
				if j%12 == 11 {
					body.WriteString(".\r\n")
				} else {
					body.WriteByte(' ')
				}
			}
			fmt.Fprintf(&b, "* %d FETCH (BODY[TEXT] {%d}\r\n%s)\r\n", i, body.Len(), body.String())
		}
	}
	return b.Bytes()
}

// BenchmarkDeflateLevels compresses IMAP responses in 32 KiB writes, as connWriter does,
// at the levels of klauspost/compress/flate and compress/flate, reporting the compressed
// size as a fraction of the input and the heap of one compressor (compress.go explains the
// choice of deflateLevel).
//
//	go test ./frontend -run '^$' -bench DeflateLevels
func BenchmarkDeflateLevels(b *testing.B) {
	data := imapResponses()
	type compressor interface {
		io.Writer
		Flush() error
	}
	levels := []struct {
		name string
		new  func(io.Writer) compressor
	}{}
	for _, level := range []int{1, 3, 5, 6} {
		levels = append(levels, struct {
			name string
			new  func(io.Writer) compressor
		}{fmt.Sprintf("klauspost-%d", level), func(w io.Writer) compressor { c, _ := flate.NewWriter(w, level); return c }})
	}
	for _, level := range []int{1, 6} {
		levels = append(levels, struct {
			name string
			new  func(io.Writer) compressor
		}{fmt.Sprintf("stdlib-%d", level), func(w io.Writer) compressor { c, _ := stdflate.NewWriter(w, level); return c }})
	}
	for _, l := range levels {
		b.Run(l.name, func(b *testing.B) {
			var out bytes.Buffer
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			w := l.new(&out)
			w.Write(data[:writeBufferSize])
			w.Flush()
			runtime.GC()
			runtime.ReadMemStats(&after)
			size := float64(after.HeapAlloc - before.HeapAlloc)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				out.Reset()
				for off := 0; off < len(data); off += writeBufferSize {
					w.Write(data[off:min(off+writeBufferSize, len(data))])
				}
				w.Flush()
			}
			b.ReportMetric(float64(out.Len())/float64(len(data)), "ratio")
			b.ReportMetric(size, "B/compressor")
			runtime.KeepAlive(w)
		})
	}
}
