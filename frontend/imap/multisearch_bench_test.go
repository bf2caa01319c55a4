package imap_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// multiSearchBoxes and multiSearchBoxMessages are the size of BenchmarkMultiSearch's
// account: 20 mailboxes of 5,000 messages.
const (
	multiSearchBoxes       = 20
	multiSearchBoxMessages = 5000
)

// BenchmarkMultiSearch measures ESEARCH (RFC 7377) over 20 mailboxes of 5,000 messages each
// (100,000 in all, filled as BenchmarkMailbox100k fills its INBOX: every tenth \Flagged,
// subjects "mBB-NNNNNNNN"), over a socket with the client reading every response byte, and
// beside it what a client without MULTISEARCH does for the same answer: SELECT and UID
// SEARCH in each mailbox in turn (PerMailbox). The session has INBOX selected; ESEARCH and
// the SELECTs of PerMailbox copy the frontend's views of the 20 mailboxes, which stay open
// (they linger 10 s after their last use) after the first round. ESEARCHCold is ESEARCH
// with views that close at once, so each command lists the 20 mailboxes again, as the first
// ESEARCH over mailboxes no session of the frontend has open does.
//
//	go test ./frontend/imap -run '^$' -bench BenchmarkMultiSearch -benchtime 10x
func BenchmarkMultiSearch(b *testing.B) {
	srv := startServerWith(b, func(cfg *embedded.Config) {
		cfg.MaxMessageSize = 1 << 20
		cfg.DisableSearchIndex = os.Getenv("STRATA_NO_SEARCH_INDEX") != ""
		cfg.IMAPLimits.SearchTimeout = time.Hour
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, rec := benchSeed(ctx, b, srv)
	var names []string
	for box := range multiSearchBoxes {
		name := fmt.Sprintf("Box%02d", box)
		names = append(names, name)
		if _, err := srv.Metadata().CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{RequestId: randomID(), Account: embedded.DemoAccount, Name: name}); err != nil {
			b.Fatal(err)
		}
		mb := mailboxOf(b, srv, embedded.DemoAccount, name)
		appendCopies(ctx, b, srv, mb, rec, 0, multiSearchBoxMessages, func(i int) string { return fmt.Sprintf("m%02d-%08d", box, i) })
	}
	if srv.SearchIndex() != nil {
		for _, name := range names {
			waitIndexed(b, srv, embedded.DemoAccount, name) // the search index answers SUBJECT
		}
	}
	bc := dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")
	in := "IN (mailboxes (" + strings.Join(names, " ") + ")) "
	for _, bm := range []struct{ name, criteria string }{
		{"Flagged", "RETURN (COUNT) FLAGGED"},
		{"SubjectOne", "SUBJECT m07-00004999"},        // one message in one mailbox
		{"SubjectAll", "RETURN (COUNT) SUBJECT 0000"}, // every message: every header read
	} {
		b.Run("ESEARCHCold/"+bm.name, func(b *testing.B) {
			imap.SetMailViewLinger(b, 0)
			bc.run("ESEARCH " + in + bm.criteria) // drops the views still open from before, untimed
			bc.bench(b, "ESEARCH "+in+bm.criteria)
		})
		b.Run("ESEARCH/"+bm.name, func(b *testing.B) {
			bc.run("ESEARCH " + in + bm.criteria) // opens the views, untimed
			bc.bench(b, "ESEARCH "+in+bm.criteria)
		})
		b.Run("PerMailbox/"+bm.name, func(b *testing.B) {
			bc.b = b
			for b.Loop() {
				for _, name := range names {
					bc.run("SELECT " + name)
					bc.run("UID SEARCH " + bm.criteria)
				}
			}
		})
		bc.run("SELECT INBOX")
	}
}
