package message

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse parses a multipart/alternative message (a text/plain and a text/html
// part, the preview taken from the first) of 4 KiB and 64 KiB, as every APPEND does once.
//
//	go test -run '^$' -bench BenchmarkParse -benchmem ./frontend/message
func BenchmarkParse(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		half := strings.Repeat("Some words of a message body, long enough to wrap.\r\n", size/2/53)
		msg := []byte("From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: bench\r\n" +
			"Message-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + half +
			"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>" + half + "</p>\r\n--b1--\r\n")
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bytes.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
