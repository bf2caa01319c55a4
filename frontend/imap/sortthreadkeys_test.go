package imap_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
)

// threadKeyQueries order by the base subject or thread: read from the column's thread-keys
// projection (metadata/threadkeys.go).
var threadKeyQueries = []string{
	"UID SORT (SUBJECT) UTF-8 ALL", "UID SORT (REVERSE SUBJECT) UTF-8 ALL", "SORT (SUBJECT DATE) UTF-8 ALL",
	"UID SORT (SUBJECT REVERSE SIZE ARRIVAL) UTF-8 ALL", "UID SORT (SUBJECT) UTF-8 SUBJECT budget",
	"UID THREAD REFERENCES UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL", "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
	"UID THREAD REFS UTF-8 ALL", "UID THREAD REFERENCES UTF-8 UID 100:500",
}

// TestSortThreadKeysMatchRecords: SORT by SUBJECT (alone and with dates and sizes) and
// THREAD by every algorithm answer from the column's thread-keys projection what the
// frontend without a cache answers from the stored records (RFC 5256 3, 4), on a mailbox
// with missing Message-IDs, References and In-Reply-To, missing and unparseable Date
// fields, messages stored without keys (read from their records), expunged ones and moved
// ones; then SORT by FROM, which the projection does not hold, reads the whole column and
// answers the same, and the subject and thread queries after it too. Another session's
// APPEND after the first read is read from the projection above what was read. Both as
// the owner (the frontend's cache) and as a user granted the mailbox (a cache for one
// command).
func TestSortThreadKeysMatchRecords(t *testing.T) {
	prepare := func(srv *embedded.Server) *rawConn { return prepareSortMailbox(t, srv, 23) }
	queries := append(append(slices.Clone(threadKeyQueries), "UID SORT (FROM SUBJECT) UTF-8 ALL", "UID SORT (DISPLAYTO) UTF-8 ALL"), threadKeyQueries...)
	answers := func(srv *embedded.Server, rc *rawConn) []string {
		var out []string
		ask := func(q string) {
			for _, line := range rc.ok(q) { // not the EXISTS of the APPEND, whenever it comes
				if strings.HasPrefix(line, "* SORT") || strings.HasPrefix(line, "* THREAD") {
					out = append(out, line)
				}
			}
		}
		for _, q := range queries[:len(threadKeyQueries)] {
			ask(q)
		}
		appendSortCorpus(t, srv, "INBOX", sortCorpus(30, 24), func(int) bool { return false }) // after the first read
		for seen := false; !seen; {                                                            // until the session's view holds the 30 (700-38-51+30)
			seen = slices.Contains(rc.ok("NOOP"), "* 641 EXISTS")
			if !seen {
				time.Sleep(10 * time.Millisecond)
			}
		}
		for _, q := range queries[len(threadKeyQueries):] {
			ask(q)
		}
		return out
	}
	imap.SetSortColumnMin(t, math.MaxInt64)
	plain := startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.SortCacheMessages = -1 })
	want := answers(plain, prepare(plain))
	imap.SetSortColumnMin(t, 1)
	for _, owner := range []bool{true, false} {
		srv := startServer(t)
		rc := prepare(srv)
		if !owner {
			shareInboxWithBob(t, srv, "lr")
			rc = loginRawAs(t, srv, bob)
			rc.ok(`SELECT "Other Users/demo@example.com/INBOX"`)
		}
		before := imap.ThreadKeyChunksRead()
		got := answers(srv, rc)
		if len(got) != len(want) {
			t.Fatalf("owner %v: %d answers, want %d", owner, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("owner %v: answer %d\n thread keys: %.300s\n records:     %.300s", owner, i, got[i], want[i])
			}
		}
		if imap.ThreadKeyChunksRead() == before {
			t.Errorf("owner %v: no chunk read from the thread-keys projection", owner)
		}
	}
}
