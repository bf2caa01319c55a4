package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// corpusGolden are SHA-256 digests of corpus messages as main aca90c8 generated them
// (before loadgen27 made the generator cheaper): a run of `strata bench` must send the same
// bytes, so that its figures stay comparable with every earlier one. Each digest covers
// the messages of streams, each with indexes 0 to n-1, their lengths included.
var corpusGolden = []struct {
	name    string
	c       Corpus
	streams []uint64
	n       int
	digest  string
}{
	// The APPEND clients of `strata bench --max-size 65536` (compare-append): stream 1<<32|id.
	{"append 64 KiB", Corpus{Seed: 1, MaxSize: 65536}, []uint64{1 << 32, 1<<32 | 1, 1<<32 | 63}, 300, "3a37cf50e2dad0c3c5f2d0220abe989d1e8a5482ec04921a086bb5af61cbecfd"},
	// populate's users at the default 1 MiB.
	{"populate 1 MiB", Corpus{Seed: 1}, []uint64{0, 1, 15}, 150, "83595ba05dd9840bda04d22310b3ea4aa6281bd4f0f7324ca53dc9697ed12b5d"},
	// Small bounds, unique words, another seed.
	{"small unique", Corpus{Seed: 7, MinSize: 2048, MaxSize: 4096, UniqueWords: true}, []uint64{3, 1<<32 | 9}, 300, "75cd2c8ef6798aed6dd3e33cd61c2ab3627e1cb8894370118963d6e418458495"},
}

func corpusDigest(c Corpus, streams []uint64, n int) string {
	h := sha256.New()
	for _, s := range streams {
		for i := 0; i < n; i++ {
			m := c.Message(s, i)
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(m))))
			h.Write(m)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestCorpusGolden: the corpus's bytes for a given seed do not change.
func TestCorpusGolden(t *testing.T) {
	for _, g := range corpusGolden {
		if got := corpusDigest(g.c, g.streams, g.n); got != g.digest {
			t.Errorf("%s: digest %s, want %s (the corpus's bytes changed)", g.name, got, g.digest)
		}
	}
}

// BenchmarkCorpusAppendMessage is the message of one APPEND of compare-append's clients,
// generated in a reused buffer as the clients do.
func BenchmarkCorpusAppendMessage(b *testing.B) {
	c := Corpus{Seed: 1, MaxSize: 65536}
	var buf messageBuffer
	b.ReportAllocs()
	bytes := 0
	for i := 0; b.Loop(); i++ {
		bytes += len(c.messageIn(&buf, 1<<32|uint64(i%64), i/64))
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "B/msg")
}

// TestCorpusMessageInReusesNothingVisible: a message generated in a buffer that held
// another (larger or smaller) is the same as one generated fresh.
func TestCorpusMessageInReusesNothingVisible(t *testing.T) {
	c := Corpus{Seed: 1, MaxSize: 65536}
	var buf messageBuffer
	for i := 0; i < 200; i++ {
		got := c.messageIn(&buf, 1<<32|5, i)
		if want := c.Message(1<<32|5, i); string(got) != string(want) {
			t.Fatalf("message %d differs when generated in a reused buffer", i)
		}
	}
}

// TestSkipPCG: skipping n steps leaves the generator where n draws would.
func TestSkipPCG(t *testing.T) {
	for _, n := range []uint64{0, 1, 2, 3, 7, 8, 1000, 8191, 123457} {
		drawn, skipped := rand.NewPCG(11, 22), rand.NewPCG(11, 22)
		for range n {
			drawn.Uint64()
		}
		skipPCG(skipped, n)
		if a, b := drawn.Uint64(), skipped.Uint64(); a != b {
			t.Errorf("after %d steps: skipped generator draws %x, want %x", n, b, a)
		}
	}
}

// TestRandomBytesKeepsAPrefix: the bytes kept are the first of the n that would be drawn,
// and the generator ends where drawing all n leaves it.
func TestRandomBytesKeepsAPrefix(t *testing.T) {
	for _, n := range []int{0, 5, 8, 13, 64, 1001} {
		for _, keep := range []int{0, 1, 7, 8, 9, 12, 13, 64, 1000, 1001} {
			if keep > n {
				continue
			}
			fullSrc, cutSrc := rand.NewPCG(3, 4), rand.NewPCG(3, 4)
			full := randomBytes(nil, rand.New(fullSrc), fullSrc, n, n)
			// into memory that held other bytes, after a prefix that stays
			dirty := append([]byte("prefix"), make([]byte, 2000)...)
			for i := range dirty {
				dirty[i] ^= 0xa5
			}
			cut := randomBytes(dirty[:6], rand.New(cutSrc), cutSrc, n, keep)
			if string(cut[:6]) != string(dirty[:6]) {
				t.Fatalf("n %d keep %d: the prefix changed", n, keep)
			}
			cut = cut[6:]
			if string(cut) != string(full[:keep]) {
				t.Errorf("n %d keep %d: bytes differ from the first %d of all", n, keep, keep)
			}
			if a, b := fullSrc.Uint64(), cutSrc.Uint64(); a != b {
				t.Errorf("n %d keep %d: next draw %x, want %x", n, keep, b, a)
			}
			for i := n / 8 * 8; i < n; i++ {
				if full[i] != 0 {
					t.Errorf("n %d: byte %d of the last partial word is %d, want 0", n, i, full[i])
				}
			}
		}
	}
}
