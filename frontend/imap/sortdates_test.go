package imap_test

import (
	"slices"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
)

// dateQueries order by dates and sizes only: read from the column's dates projection.
var dateQueries = []string{
	"UID SORT (DATE) UTF-8 ALL", "UID SORT (REVERSE DATE) UTF-8 ALL", "UID SORT (ARRIVAL) UTF-8 ALL",
	"UID SORT (REVERSE ARRIVAL) UTF-8 ALL", "UID SORT (SIZE) UTF-8 ALL", "UID SORT (REVERSE SIZE) UTF-8 ALL",
	"UID SORT (DATE SIZE) UTF-8 ALL", "UID SORT (SIZE REVERSE ARRIVAL) UTF-8 ALL", "SORT (DATE) UTF-8 ALL",
	"SORT (REVERSE DATE REVERSE SIZE) UTF-8 ALL", "UID SORT (DATE) UTF-8 SUBJECT budget",
}

// prepareSortMailbox fills INBOX with 700 messages of sortCorpus(seed), every tenth stored
// without sort keys, expunges 38 and moves 51 to a new mailbox, and returns a session with
// INBOX selected.
func prepareSortMailbox(t *testing.T, srv *embedded.Server, seed uint64) *rawConn {
	return prepareSortMailboxWith(t, srv, seed, func(i int) bool { return i%10 == 3 })
}

// prepareSortMailboxWith is prepareSortMailbox with the messages stored without sort keys
// chosen by legacy.
func prepareSortMailboxWith(t *testing.T, srv *embedded.Server, seed uint64, legacy func(i int) bool) *rawConn {
	appendSortCorpus(t, srv, "INBOX", sortCorpus(700, seed), legacy)
	return churnSortMailbox(t, srv)
}

// churnSortMailbox logs in, selects INBOX and expunges messages 5 to 40, 77 and 300 and
// moves 400 to 450 to a new mailbox Moved (38 and 51 of the corpus's 700 UIDs), so that the
// column and its projections have holes; it returns the session, INBOX selected.
func churnSortMailbox(t *testing.T, srv *embedded.Server) *rawConn {
	rc := loginRaw(t, srv)
	rc.ok("CREATE Moved")
	rc.ok("SELECT INBOX")
	rc.ok("UID STORE 5:40,77,300 +FLAGS (\\Deleted)")
	rc.ok("EXPUNGE")
	rc.ok("UID MOVE 400:450 Moved")
	return rc
}

// TestSortDatesMatchRecords: SORT by DATE, ARRIVAL and SIZE (and REVERSE, and keys that are
// only these) answers from the column's dates projection what the frontend without a
// cache answers from the stored records, on a mailbox with missing and unparseable Date
// fields (RFC 5256 2.2: the internal date), equal keys (ordered by sequence number, RFC
// 5256 3), messages stored without keys (read from their records), expunged ones and
// moved ones; then a SORT by SUBJECT, which the dates do not hold, reads the whole column
// and answers the same, and the date queries after it too.
func TestSortDatesMatchRecords(t *testing.T) {
	prepare := func(srv *embedded.Server) *rawConn { return prepareSortMailbox(t, srv, 11) }
	queries := append(append(slices.Clone(dateQueries), "UID SORT (SUBJECT) UTF-8 ALL", "UID SORT (FROM DATE) UTF-8 ALL"), dateQueries...)
	want := plainAnswers(t, prepare, askAll(queries))
	srv := startServer(t)
	rc := prepare(srv)
	before := imap.DateRecordsRead()
	var got []string
	for _, q := range queries {
		got = append(got, rc.ok(q)...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d answers, want %d", len(got), len(want))
	}
	for i, q := range queries {
		if got[i] != want[i] {
			t.Errorf("%s\n dates:   %.300s\n records: %.300s", q, got[i], want[i])
		}
	}
	// The first query read the projection's 700-38-51 messages, minus those stored without
	// keys; the rest came from the cache (a box holding every field after SUBJECT).
	if n := imap.DateRecordsRead() - before; n < 500 || n > 700 {
		t.Errorf("%d messages read from the dates projection", n)
	}
}
