package mailtext

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// qpPieces are the pieces of TestQPReaderMatchesStdlib's inputs: escapes good and bad,
// soft line breaks with and without trailing white space, bare CR and LF, control bytes,
// 8-bit bytes and long lines.
var qpPieces = []string{"a", "Hello", " ", "\t", "=", "=3D", "=3d", "=C3=A9", "=ZZ", "=Z", "=\r\n", "=\n", "= \r\n", "=  \t\n",
	"=x\r\n", "\r\n", "\n", "\r", " \r\n", "\t\n", "\x00", "\x01", "\x7f", "\x80", "\xff", "é", "~", "=\r", "==",
	string(bytes.Repeat([]byte("z"), 5000)), "=4", "=A", "= ", "=\t"}

// TestQPReaderMatchesStdlib: qpReader gives the bytes mime/quotedprintable's Reader gives,
// and fails where it fails, on random inputs read through readers of every chunking.
func TestQPReaderMatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 72))
	for round := range 4000 {
		var in []byte
		for range r.IntN(40) {
			in = append(in, qpPieces[r.IntN(len(qpPieces))]...)
		}
		checkQP(t, round, in, r.IntN(3))
	}
}

func checkQP(t *testing.T, round int, in []byte, chunking int) {
	t.Helper()
	want, wantErr := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(in)))
	var src io.Reader = bytes.NewReader(in)
	switch chunking {
	case 1:
		src = iotest.OneByteReader(src)
	case 2:
		src = iotest.HalfReader(src)
	}
	got, gotErr := io.ReadAll(&qpReader{br: bufio.NewReaderSize(src, qpBuffer)})
	if !bytes.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("round %d: %q decodes to %q (error %v), mime/quotedprintable to %q (error %v)", round, in, got, gotErr, want, wantErr)
	}
}

func FuzzQPReaderMatchesStdlib(f *testing.F) {
	for _, p := range qpPieces {
		f.Add([]byte(p + "x=\r\n" + p))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkQP(t, 0, in, 0) })
}

// TestSegmentReaderReused: one SegmentReader decodes part after part as SegmentContent
// does, whatever the part before left unread.
func TestSegmentReaderReused(t *testing.T) {
	var s SegmentReader
	parts := []struct {
		raw string
		seg Segment
	}{
		{"caf=C3=A9 =\r\nau lait\r\n", Segment{Encoding: "quoted-printable"}},
		{"caf=E9\r\n", Segment{Encoding: "Quoted-Printable", Charset: "iso-8859-1"}},
		{"Y2Fmw6k=\r\n", Segment{Encoding: "base64"}},
		{"plain\r\n", Segment{}},
		{"a=ZZb=\r\nc\x01d\r\n", Segment{Encoding: " quoted-printable "}},
	}
	for i := range 3 * len(parts) {
		p := parts[i%len(parts)]
		want, _ := io.ReadAll(SegmentContent(bytes.NewReader([]byte(p.raw)), p.seg))
		r := s.Content(bytes.NewReader([]byte(p.raw)), p.seg)
		if i%2 == 1 {
			// Leave the content unread: the next part must not see its rest.
			_, _ = r.Read(make([]byte, 2))
			continue
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("part %d: %q (error %v), want %q", i, got, err, want)
		}
	}
}

// TestHeaderScopeMatchesToLower: HeaderScope keeps apart the fields strings.ToLower names
// subject, from, to, cc or bcc, and no other, whatever the case and the look-alikes.
func TestHeaderScopeMatchesToLower(t *testing.T) {
	byLower := map[string]metadatapb.SearchScope{"subject": metadatapb.SearchScope_SEARCH_SCOPE_SUBJECT,
		"from": metadatapb.SearchScope_SEARCH_SCOPE_FROM, "to": metadatapb.SearchScope_SEARCH_SCOPE_TO,
		"cc": metadatapb.SearchScope_SEARCH_SCOPE_CC, "bcc": metadatapb.SearchScope_SEARCH_SCOPE_BCC}
	for _, name := range []string{"Subject", "SUBJECT", "subject", "sUbJeCt", "ſubject", "Subjec", "Subjects", "From", "FROM",
		"from ", "To", "tO", "TO", "Cc", "CC", "cC", "Bcc", "BCC", "bCc", "Reply-To", "X-Cc", "", "\xff", "K", "İ", "Message-ID", "Date"} {
		want, ok := byLower[strings.ToLower(name)]
		if !ok {
			want = metadatapb.SearchScope_SEARCH_SCOPE_OTHER
		}
		if got := HeaderScope(name); got != want {
			t.Errorf("HeaderScope(%q) = %v, want %v", name, got, want)
		}
	}
}
