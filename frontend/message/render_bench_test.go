package message

import (
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// renderBenchMessage is a typical reply with an HTML alternative and a PDF attachment: the
// ENVELOPE has encoded words and several addresses, the BODYSTRUCTURE five parts.
const renderBenchMessage = "Date: Mon, 05 Jan 2026 09:14:00 +0100\r\n" +
	"From: =?UTF-8?Q?Zo=C3=AB_M=C3=BCller?= <zoe@example.de>\r\n" +
	"Sender: Ops Team <ops@example.org>\r\n" +
	"To: Alice Martin <alice@example.org>, \"Bob O'Neil\" <bob@example.net>\r\n" +
	"Cc: =?UTF-8?B?5p2O5bCP6b6N?= <li@example.cn>, carol@example.com\r\n" +
	"Subject: =?UTF-8?B?UmU6IHF1YXJ0ZXJseSByw6l1bmlvbiByZXBvcnQ=?=\r\n" +
	"Message-ID: <41.7.1@bench.strata.test>\r\n" +
	"In-Reply-To: <40.7.1@bench.strata.test>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n" +
	"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSee the report attached.\r\n" +
	"--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>See the report attached.</p>\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n" +
	"--outer--\r\n"

func renderBenchStructure(b *testing.B) *metadatapb.MessageStructure {
	s, err := Parse(strings.NewReader(renderBenchMessage))
	if err != nil {
		b.Fatal(err)
	}
	if len(s.Body.Parts) != 2 {
		b.Fatalf("parsed %d top-level parts, want 2", len(s.Body.Parts))
	}
	return s
}

// BenchmarkAppendEnvelope renders the ENVELOPE of a FETCH response (RFC 9051 7.5.2).
func BenchmarkAppendEnvelope(b *testing.B) {
	s := renderBenchStructure(b)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEnvelope(buf[:0], s.Envelope)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendBodyStructure renders the extended BODYSTRUCTURE of a FETCH response.
func BenchmarkAppendBodyStructure(b *testing.B) {
	s := renderBenchStructure(b)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBodyStructure(buf[:0], s.Body, true)
	}
	b.SetBytes(int64(len(buf)))
}
