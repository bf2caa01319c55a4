package imap_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkSearchIndexMailbox measures warm text searches that the search index answers
// on a large INBOX of distinct messages: STRATA_SEARCH_BENCH_MESSAGES messages (default
// 2,000, so `make test -bench` never builds a big one) of bench.Corpus{Seed: 1, MaxSize:
// 16 KiB, UniqueWords: true}: real MIME bodies, each with a word of its own, so the word
// dictionary grows with the mailbox as real mail's does. The mailbox is filled without
// IMAP: each body is stored in the blob store and parsed as ingest does, and the records
// are appended through the metadata gRPC Append 1,000 at a time (not timed, logged); the
// benchmark then waits until the index has caught up (logged, with the index size per
// message) and times each command over a socket, the client reading every byte.
//
// STRATA_SEARCH_BENCH_DIR keeps the server's data directory there: a run finds the
// mailbox filled (and indexed) by an earlier one and skips the fill, so before and after
// a change to the query path run on the same data.
//
//	STRATA_SEARCH_BENCH_MESSAGES=1000000 STRATA_SEARCH_BENCH_DIR=/tmp/sb1m go test ./frontend/imap -run '^$' -bench BenchmarkSearchIndexMailbox -benchtime 5x -timeout 3h
func BenchmarkSearchIndexMailbox(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("STRATA_SEARCH_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	dir := os.Getenv("STRATA_SEARCH_BENCH_DIR")
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	srv := startServerWith(b, func(cfg *embedded.Config) {
		if dir != "" {
			cfg.DataDir = dir
		}
		cfg.IMAPLimits.MaxBodyScan = 1 << 30
		cfg.IMAPLimits.SearchTimeout = time.Hour
	})
	corpus := bench.Corpus{Seed: 1, MaxSize: 16 << 10, UniqueWords: true}
	held := int(mailboxOf(b, srv, embedded.DemoAccount, "INBOX").GetUidNext()) - 1
	if held < n {
		start := time.Now()
		fillCorpus(b, srv, corpus, held, n)
		b.Logf("filled %d messages in %v", n-held, time.Since(start).Round(time.Second))
	}
	n = max(n, held) // a mailbox kept from a larger run is measured whole
	start := time.Now()
	waitIndexed(b, srv, embedded.DemoAccount, "INBOX")
	waited := time.Since(start)
	if err := srv.SearchIndex().Index().Flush(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d messages; index caught up %v after the fill, %d bytes per message", n, waited.Round(time.Second), srv.SearchIndex().Index().Size()/uint64(n))
	bc := dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")
	rare := bench.UniqueWord(0, n/2)
	for _, bm := range []struct{ name, command string }{
		{"BodyCommon", `UID SEARCH BODY "report"`},
		{"BodyRare", fmt.Sprintf("UID SEARCH BODY %q", rare)},
		{"BodyAbsent", `UID SEARCH BODY "xylophone"`},
		{"HeaderSubject", `UID SEARCH HEADER Subject "quarterly"`},
		{"SubjectLetter", `SEARCH SUBJECT x`},
		{"ESearchCountBody", `UID SEARCH RETURN (COUNT) BODY "report"`},
		{"ESearchAllBody", `UID SEARCH RETURN (ALL) BODY "report"`},
	} {
		b.Run(bm.name, func(b *testing.B) {
			bc.run(bm.command) // warm
			bc.bench(b, bm.command)
		})
	}
}

// fillCorpus appends corpus messages from to n-1 to the demo INBOX without IMAP: bodies
// into the blob store, records through the metadata Append in batches, the generating and
// parsing spread over the cores.
func fillCorpus(b *testing.B, srv *embedded.Server, corpus bench.Corpus, from, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	mbox, err := srv.Metadata().GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Name: "INBOX"})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	workers := runtime.GOMAXPROCS(0)
	for start := from; start < n; start += batch {
		msgs := make([]*metadatapb.NewMessage, min(start+batch, n)-start)
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := w; k < len(msgs); k += workers {
					m, err := corpusMessage(ctx, srv, corpus, start+k)
					if err != nil {
						errs[w] = err
						return
					}
					msgs[k] = m
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		req := &metadatapb.AppendRequest{RequestId: randomID(), Account: embedded.DemoAccount, MailboxId: mbox.GetId(), Messages: msgs}
		if _, err := srv.Metadata().Append(ctx, req); err != nil {
			b.Fatalf("append batch at %d: %v", start, err)
		}
	}
}

// corpusMessage stores message i of corpus in srv's blob store and returns its record as
// ingest makes it (ingest.NewMessage).
func corpusMessage(ctx context.Context, srv *embedded.Server, corpus bench.Corpus, i int) (*metadatapb.NewMessage, error) {
	raw := corpus.Message(0, i)
	st, err := message.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse corpus message %d: %w", i, err)
	}
	st.SortKeys = message.SortKeys(st)
	key := blobstore.Key(embedded.DemoTenant, sha256.Sum256(raw))
	if err := srv.Blobs().Put(ctx, key, bytes.NewReader(raw), int64(len(raw))); err != nil {
		return nil, fmt.Errorf("store corpus message %d: %w", i, err)
	}
	return &metadatapb.NewMessage{
		BlobKey: key, Size: uint64(len(raw)), InternalDateUnix: 1_700_000_000 + int64(i),
		Flags: corpus.Flags(0, i), Structure: st, Thread: message.ThreadKeys(st),
	}, nil
}
