package imap_test

import (
	"fmt"
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
	want := plainAnswers(t, prepare, func(srv *embedded.Server, rc *rawConn) []string { return answers(srv, rc) })
	asOwnerAndShared(t, prepare, func(owner bool, srv *embedded.Server, rc *rawConn) {
		before := imap.ThreadKeyChunksRead()
		wantSameAnswers(t, fmt.Sprintf("owner %v", owner), answers(srv, rc), want)
		if imap.ThreadKeyChunksRead() == before {
			t.Errorf("owner %v: no chunk read from the thread-keys projection", owner)
		}
	})
}

// plainAnswers is what ask answers on a server whose frontend keeps no sort keys and reads
// them from the stored records (the column never read), on the mailbox prepare makes; the
// test's servers then read the column at the first missing key (SetSortColumnMin).
func plainAnswers(t *testing.T, prepare func(*embedded.Server) *rawConn, ask func(*embedded.Server, *rawConn) []string) []string {
	t.Helper()
	imap.SetSortColumnMin(t, math.MaxInt64)
	plain := startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.SortCacheMessages = -1 })
	want := ask(plain, prepare(plain))
	imap.SetSortColumnMin(t, 1)
	return want
}

// askAll is an ask of plainAnswers: every line of the answers to queries.
func askAll(queries []string) func(*embedded.Server, *rawConn) []string {
	return func(_ *embedded.Server, rc *rawConn) []string {
		var out []string
		for _, q := range queries {
			out = append(out, rc.ok(q)...)
		}
		return out
	}
}

// asOwnerAndShared calls fn with a new server, its mailbox made by prepare, and a session
// on its INBOX: the owner's (the frontend's cache), then bob's, granted the mailbox (a
// cache for one command).
func asOwnerAndShared(t *testing.T, prepare func(*embedded.Server) *rawConn, fn func(owner bool, srv *embedded.Server, rc *rawConn)) {
	t.Helper()
	for _, owner := range []bool{true, false} {
		srv := startServer(t)
		rc := prepare(srv)
		if !owner {
			shareInboxWithBob(t, srv, "lr")
			rc = loginRawAs(t, srv, bob)
			rc.ok(`SELECT "Other Users/demo@example.com/INBOX"`)
		}
		fn(owner, srv, rc)
	}
}

// wantSameAnswers fails the test (as what) unless got and want are the same lines.
func wantSameAnswers(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d answers, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: answer %d\n got:  %.300s\n want: %.300s", what, i, got[i], want[i])
		}
	}
}

// TestSortSubjectNumbersMatchRecords: on a mailbox whose every message has a subject number
// (metadata/subjectnumbers.go: none stored before), SORT by SUBJECT and THREAD by every
// algorithm order by the numbers, ranked by the subject dictionary's order (read once,
// and again when an APPEND brings subjects the ranks lack), and answer what the frontend
// without a cache answers from the strings of the stored records (RFC 5256 3, 4), before
// and after the APPEND, with expunged and moved messages. Mailboxes with messages
// without numbers (mixed) are TestSortThreadKeysMatchRecords's.
func TestSortSubjectNumbersMatchRecords(t *testing.T) {
	prepare := func(srv *embedded.Server) *rawConn {
		return prepareSortMailboxWith(t, srv, 31, func(int) bool { return false })
	}
	answers := func(srv *embedded.Server, rc *rawConn) []string {
		var out []string
		ask := func() {
			for _, q := range threadKeyQueries {
				for _, line := range rc.ok(q) {
					if strings.HasPrefix(line, "* SORT") || strings.HasPrefix(line, "* THREAD") {
						out = append(out, line)
					}
				}
			}
		}
		ask()
		raws := sortCorpus(30, 32)
		for i := 0; i < len(raws); i += 3 { // subjects the ranks read before lack, first and last
			raws[i] = strings.Replace(raws[i], "Subject: ", fmt.Sprintf("Subject: %c%02d ", "az"[i%2], i), 1)
		}
		appendSortCorpus(t, srv, "INBOX", raws, func(int) bool { return false })
		for seen := false; !seen; { // 700-38-51+30
			seen = slices.Contains(rc.ok("NOOP"), "* 641 EXISTS")
			if !seen {
				time.Sleep(10 * time.Millisecond)
			}
		}
		ask()
		return out
	}
	imap.SetSortColumnMin(t, math.MaxInt64)
	plain := startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.SortCacheMessages = -1 })
	want := answers(plain, prepare(plain))
	imap.SetSortColumnMin(t, 1)
	srv := startServer(t)
	rc := prepare(srv)
	before := imap.SubjectOrdersRead()
	got := answers(srv, rc)
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("answer %d\n numbers: %.300s\n records: %.300s", i, got[i], want[i])
			}
		}
		t.Fatalf("%d answers, want %d", len(got), len(want))
	}
	if reads := imap.SubjectOrdersRead() - before; reads < 2 {
		t.Errorf("%d subject orders read, want one before and one after the APPEND", reads)
	}
}
