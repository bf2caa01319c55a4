package searchindex_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/searchindex"
)

// BenchmarkIndexAppendedCorpus is the indexer's work for the messages compare-append's
// clients send (bench.Corpus, seed 1, up to 64 KiB), handed over in memory as the ingest
// path does (RecentBodies): extract each message's words and add them to a batch that
// commits every batchSize messages of one mailbox, into a real Pebble store. The time
// and allocations are per message.
func BenchmarkIndexAppendedCorpus(b *testing.B) {
	const messages, batchSize = 512, 128
	c := bench.Corpus{Seed: 1, MaxSize: 65536}
	recs := make([]*metadatapb.MessageRecord, messages)
	raws := make([][]byte, messages)
	for i := range recs {
		raw := c.Message(1<<32|uint64(i%64), i/64)
		st, err := message.Parse(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		raws[i] = raw
		recs[i] = &metadatapb.MessageRecord{Uid: uint32(i + 1), BlobKey: blobstore.Key("acme", sha256.Sum256(raw)), Size: uint64(len(raw)), Structure: st}
	}
	idx, recent, blobs, doc := openIndexing(b, 64<<20, 1<<20)
	uid := uint32(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		batch := idx.NewBatch()
		for j := range batchSize {
			k := (i*batchSize + j) % messages
			rec := recs[k]
			recent.Keep(rec.GetBlobKey(), bytes.NewReader(raws[k]), int64(len(raws[k])))
			uid++
			rec.Uid = uid
			if err := searchindex.ExtractInto(b.Context(), doc, blobs, rec); err != nil {
				b.Fatal(err)
			}
			if err := batch.Add("ix@example.com", 1, uid, doc); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.SetState("ix@example.com", 1, searchindex.MailboxState{UIDValidity: 1, LastUID: uid, Docs: uid}); err != nil {
			b.Fatal(err)
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/msg")
}
