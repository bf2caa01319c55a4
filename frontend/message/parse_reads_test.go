package message_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/frontend/message"
)

// TestParseReadSizes: Parse gives the same structure however its reader splits the
// message (whole, half reads, one byte at a time): the runs of body it passes over
// (scanner.plainRun) are cut where its read buffer ends, and the offsets, sizes, line
// counts and preview must not depend on it. The parts of the messages with a delimiter
// around the buffer's end are counted as well (TestParse has the other structures).
// The messages are the load generator's (multipart/alternative, attachments in base64,
// replies) and bodies whose lines start with "-" without being delimiters, delimiters
// at a buffer's end, in LF and CRLF, and lines longer than the buffer.
func TestParseReadSizes(t *testing.T) {
	corpus := bench.Corpus{Seed: 7, MaxSize: 64 << 10}
	var msgs [][]byte
	for i := range 120 {
		msgs = append(msgs, corpus.Message(1, i))
	}
	long := strings.Repeat("x", 70<<10)
	for _, nl := range []string{"\n", "\r\n"} {
		lines := func(ls ...string) []byte { return []byte(strings.Join(ls, nl)) }
		msgs = append(msgs,
			lines("Subject: dashes", "Content-Type: multipart/mixed; boundary=b", "", "preamble", "-", "--", "---", "--b-not", "--b",
				"Content-Type: text/plain", "", "- item", "-- ", "--bx", "--b--x", "--b", "", "second", "--b--  ", "epilogue", "-"),
			lines("Content-Type: multipart/mixed; boundary=b", "", "--b", "", long, "--b", "", "-"+long, "--b "+long, "--b--"),
			lines("Content-Type: multipart/mixed; boundary=b", "", "--b", "", long+"--b", "--b", "", "end", "--b--"),
			lines("Content-Type: text/plain", "", "-- ", "signature", "-"),
			lines("Content-Type: multipart/mixed; boundary=o", "", "--o", "Content-Type: multipart/alternative; boundary=i",
				"", "--i", "", "inner", "--o", "", "outer", "--o--", ""),
			lines("Content-Type: message/rfc822", "", "Content-Type: multipart/mixed; boundary=m", "", "--m", "", "x", "--m--"),
		)
		// A delimiter line at every offset around the end of the parser's 64 KiB buffer.
		for pad := 65500; pad < 65560; pad += 7 {
			msgs = append(msgs, lines("Content-Type: multipart/mixed; boundary=edge", "", "--edge", "",
				strings.Repeat("y", pad), "--edge", "", "z", "--edge--"))
		}
	}
	for i, msg := range msgs {
		want, err := message.Parse(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		// Every reader could miss a delimiter alike: the edge messages' two parts are
		// counted too (the other structures are TestParse's).
		if bytes.Contains(msg, []byte("boundary=edge")) && len(want.GetBody().GetParts()) != 2 {
			t.Errorf("message %d: %d parts, want 2 (a delimiter at offset %d)", i, len(want.GetBody().GetParts()), bytes.Index(msg, []byte("--edge\r\n\r\nz")))
		}
		for name, r := range map[string]io.Reader{
			"half reads":          iotest.HalfReader(bytes.NewReader(msg)),
			"one byte at a time":  iotest.OneByteReader(bytes.NewReader(msg)),
			"data with io.EOF":    iotest.DataErrReader(bytes.NewReader(msg)),
			"a section of memory": io.NewSectionReader(bytes.NewReader(msg), 0, int64(len(msg))),
		} {
			got, err := message.Parse(r)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("message %d read by %s: %v\nwant %v", i, name, got.GetBody(), want.GetBody())
			}
		}
	}
}
