package frontend

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
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
