package searchindex_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/searchindex"
)

// extractCorpus is a set of raw messages TestExtractGolden extracts.
type extractCorpus struct {
	name     string
	messages func() [][]byte
	digest   string // SHA-256 of the words ExtractInto gave with main 1d9a72f's code
}

var extractCorpora = []extractCorpus{
	{"bench seed 1 64KiB", func() [][]byte { return benchMessages(bench.Corpus{Seed: 1, MaxSize: 65536}, 512) },
		"b70bc782dba45868c21657ade4e108e0f33dec55c2d9efb91069b8f7c365623d"},
	{"bench seed 2 1MiB", func() [][]byte { return benchMessages(bench.Corpus{Seed: 2, MaxSize: 1 << 20}, 48) },
		"6b1c9d18fdb4d830030b63bd9306d70a998f04ed53f7fa9310e88d0b024b1cea"},
	{"adversarial MIME", func() [][]byte { return adversarialMessages(300) },
		"383a3ad4cbe4f1af8e9e20b0c502233b51af0d5328b7704599d094b99f5e1931"},
}

// benchMessages returns the first n messages of c's APPEND streams, as
// BenchmarkIndexAppendedCorpus takes them.
func benchMessages(c bench.Corpus, n int) [][]byte {
	raws := make([][]byte, n)
	for i := range raws {
		raws[i] = c.Message(1<<32|uint64(i%64), i/64)
	}
	return raws
}

// adversarialAlphabet is TestAdversarialDifferential's: separators, non-ASCII white
// space, multi-byte folding cases and invalid UTF-8; plus quoted-printable look-alikes.
var adversarialAlphabet = []string{"a", "B", "c", "ß", "ẞ", "İ", "ı", "i", "σ", "ς", "Σ", "e\u0301", "\u0301", "\xff", "\xc3", "\xe2\x82",
	"\x00", "\t", "\v", "\f", "\r", "\n", " ", "  ", "\r\n", "\u00a0", "\u2003", "\u0085", "ſ", "K", "k", "ǅ", "-", ".",
	"=", "=3D", "=\r\n", "=C3=A9", "=ZZ", "会議", "Ǆ", "word", "Word", "WORD",
}

// adversarialText returns a random text of the adversarial alphabet with some long words.
func adversarialText(r *rand.Rand, maxParts int) string {
	var sb strings.Builder
	for range 1 + r.IntN(maxParts) {
		if r.IntN(30) == 0 {
			sb.WriteString(strings.Repeat("xy", searchindex.MaxWord/2-2+r.IntN(4)))
		}
		sb.WriteString(adversarialAlphabet[r.IntN(len(adversarialAlphabet))])
	}
	return sb.String()
}

// headerText is adversarialText fit for a header line: no line breaks or NUL.
func headerText(r *rand.Rand) string {
	return strings.NewReplacer("\r", "", "\n", "", "\x00", "").Replace(adversarialText(r, 20))
}

// adversarialMessages returns n MIME messages with headers (folded, RFC 2047
// encoded-words in several charsets and encodings, raw 8-bit), and parts of every
// transfer encoding and several charsets, nested messages and parts that are not text,
// some of them malformed.
func adversarialMessages(n int) [][]byte {
	r := rand.New(rand.NewPCG(27, 2727))
	encodings := []string{"", "7bit", "8bit", "binary", "quoted-printable", "Quoted-Printable", "base64", "BASE64", "x-unknown"}
	charsets := []string{"", "utf-8", "UTF-8", "us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "x-unknown"}
	var raws [][]byte
	for range n {
		var m bytes.Buffer
		writeHeader := func() {
			fmt.Fprintf(&m, "From: %s <a%d@example.com>\r\n", headerText(r), r.IntN(9))
			fmt.Fprintf(&m, "To: b@example.com, \"%s\" <c@example.org>\r\n", headerText(r))
			switch r.IntN(4) {
			case 0:
				fmt.Fprintf(&m, "Subject: =?UTF-8?B?%s?= %s\r\n", base64.StdEncoding.EncodeToString([]byte(headerText(r))), headerText(r))
			case 1:
				fmt.Fprintf(&m, "Subject: =?iso-8859-1?Q?caf=E9_%s?=\r\n", strings.Map(func(c rune) rune {
					if c < 'A' || c > 'z' {
						return '_'
					}
					return c
				}, headerText(r)))
			case 2:
				fmt.Fprintf(&m, "Subject: %s\r\n\t%s\r\n", headerText(r), headerText(r))
			default:
				fmt.Fprintf(&m, "subject: =?bad?%s\r\n", headerText(r))
			}
			fmt.Fprintf(&m, "Cc: %s\r\nX-Other-%d: %s\r\n", headerText(r), r.IntN(5), headerText(r))
		}
		writeHeader()
		var writePart func(depth int)
		writePart = func(depth int) {
			switch k := r.IntN(6); {
			case k == 0 && depth < 3:
				b := fmt.Sprintf("b%d", r.Uint32())
				fmt.Fprintf(&m, "Content-Type: multipart/mixed; boundary=%q\r\n\r\npreamble %s\r\n", b, headerText(r))
				for range 1 + r.IntN(3) {
					fmt.Fprintf(&m, "--%s\r\n", b)
					writePart(depth + 1)
					m.WriteString("\r\n")
				}
				fmt.Fprintf(&m, "--%s--\r\n", b)
			case k == 1 && depth < 3:
				m.WriteString("Content-Type: message/rfc822\r\n\r\n")
				writeHeader()
				writePart(depth + 1)
			case k == 2:
				fmt.Fprintf(&m, "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n", base64.StdEncoding.EncodeToString([]byte(adversarialText(r, 50))))
			default:
				enc, cs := encodings[r.IntN(len(encodings))], charsets[r.IntN(len(charsets))]
				fmt.Fprintf(&m, "Content-Type: text/plain; charset=%q\r\nContent-Transfer-Encoding: %s\r\nX-Part: %s\r\n\r\n", cs, enc, headerText(r))
				text := adversarialText(r, 400)
				switch {
				case strings.EqualFold(enc, "base64") && r.IntN(4) > 0:
					s := base64.StdEncoding.EncodeToString([]byte(text))
					for len(s) > 76 {
						m.WriteString(s[:76] + "\r\n")
						s = s[76:]
					}
					m.WriteString(s + "\r\n")
				case strings.EqualFold(enc, "quoted-printable") && r.IntN(4) > 0:
					w := quotedprintable.NewWriter(&m)
					_, _ = w.Write([]byte(text))
					_ = w.Close()
					m.WriteString("\r\n")
				default:
					m.WriteString(text + "\r\n") // as is, malformed for its encoding
				}
			}
		}
		if r.IntN(5) == 0 {
			m.WriteString("\r\n" + adversarialText(r, 300)) // no MIME header
		} else {
			m.WriteString("MIME-Version: 1.0\r\n")
			writePart(0)
		}
		raws = append(raws, m.Bytes())
	}
	return raws
}

// extractDigest extracts every message of raws, as the indexer does (RecentBodies, one
// doc reused), and hashes each message's sorted words and long-word scopes.
func extractDigest(t testing.TB, raws [][]byte) string {
	recent := searchindex.NewRecentBodies(1<<30, 1<<30)
	blobs := recent.Over(nil)
	d := searchindex.NewDoc()
	h := sha256.New()
	for i, raw := range raws {
		rec := keptRecord(t, recent, uint32(i+1), raw)
		if err := searchindex.ExtractInto(t.Context(), d, blobs, rec); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		words, long := searchindex.DocWords(d)
		words = slices.Clone(words)
		slices.Sort(words)
		fmt.Fprintf(h, "message %d long %b words %d\n", i, long, len(words))
		for _, w := range words {
			fmt.Fprintf(h, "%q\n", w)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestExtractGolden: ExtractInto gives every message of the bench corpus (what
// compare-append's clients send, and populate's larger messages) and of an adversarial
// MIME corpus the very words it gave before its extraction was made cheaper (issue 14).
func TestExtractGolden(t *testing.T) {
	for _, c := range extractCorpora {
		if got := extractDigest(t, c.messages()); got != c.digest {
			t.Errorf("%s: words digest %s, want %s (main 1d9a72f's)", c.name, got, c.digest)
		}
	}
}

// BenchmarkExtractAppendedCorpus is ExtractInto alone (no batch, no store) over the
// messages BenchmarkIndexAppendedCorpus indexes, handed over in memory (RecentBodies) as
// the ingest path does (Keep copies each message in, as the APPEND path does); time and
// allocations are per message.
func BenchmarkExtractAppendedCorpus(b *testing.B) {
	raws := benchMessages(bench.Corpus{Seed: 1, MaxSize: 65536}, 512)
	recent := searchindex.NewRecentBodies(1<<30, 1<<30)
	blobs := recent.Over(nil)
	recs := make([]*metadatapb.MessageRecord, len(raws))
	keys := make([]string, len(raws))
	for i, raw := range raws {
		st, err := message.Parse(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = blobstore.Key("acme", sha256.Sum256(raw))
		recs[i] = &metadatapb.MessageRecord{Uid: uint32(i + 1), BlobKey: keys[i], Size: uint64(len(raw)), Structure: st}
	}
	d := searchindex.NewDoc()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := i % len(recs)
		recent.Keep(keys[k], bytes.NewReader(raws[k]), int64(len(raws[k]))) // taken by Get
		if err := searchindex.ExtractInto(b.Context(), d, blobs, recs[k]); err != nil {
			b.Fatal(err)
		}
	}
}
