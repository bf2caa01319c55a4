package imap_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/frontend/imap/sortthread"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// subjectRecordQueries order by the base subject alone (read from the column's subject
// projection, metadata/subjectrecords.go) or with dates (the thread-keys projection).
var subjectRecordQueries = []string{
	"UID SORT (SUBJECT) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL", "UID SORT (REVERSE SUBJECT) UTF-8 ALL",
	"SORT (REVERSE SUBJECT) UTF-8 UID 100:500", "UID SORT (SUBJECT) UTF-8 NOT SUBJECT budget",
	"UID SORT (SUBJECT DATE) UTF-8 ALL", "UID SORT (REVERSE SUBJECT REVERSE ARRIVAL) UTF-8 ALL",
	"UID SORT (DATE) UTF-8 ALL", "UID SORT (SUBJECT) UTF-8 ALL", "SORT (REVERSE SUBJECT) UTF-8 ALL",
}

// TestSortSubjectRecordsMatchStrings: SORT by SUBJECT alone (and REVERSE SUBJECT) answers
// from the column's subject projection and the subject order what the frontend without a
// cache answers from the stored records' strings (RFC 5256 3: octets of the base subject,
// equal subjects by sequence number), on a mailbox with RFC 2047 subjects, Re:/Fwd:/[tag]
// prefixes, many equal subjects, expunged and moved messages; SUBJECT DATE and DATE, which
// the projection does not hold, read the thread-keys or dates projection and answer the
// same, and SUBJECT after them too. Another session's APPEND of new subjects (first and
// last in order) after the first read is read from the projection above what was read.
// With unnumbered subjects (keys longer than the dictionary holds, metadata
// maxNumberedSubject), the projection's record without a number sends the mailbox to the
// strings, with the same answers. As the owner (the frontend's cache) and as a user
// granted the mailbox (a cache for one command).
func TestSortSubjectRecordsMatchStrings(t *testing.T) {
	for _, unnumbered := range []bool{false, true} {
		long := strings.Repeat("z", 1500)
		keys := func(i int, k *metadatapb.SortKeys) *metadatapb.SortKeys {
			if unnumbered && i%97 == 5 {
				k.Subject = long + k.GetSubject() // longer than the dictionary numbers
			}
			return k
		}
		prepare := func(srv *embedded.Server) *rawConn {
			appendSortCorpusKeys(t, srv, "INBOX", sortCorpus(700, 41), keys)
			return churnSortMailbox(t, srv)
		}
		answers := func(srv *embedded.Server, rc *rawConn) []string {
			var out []string
			ask := func(q string) {
				for _, line := range rc.ok(q) { // not the EXISTS of the APPEND, whenever it comes
					if strings.HasPrefix(line, "* SORT") {
						out = append(out, line)
					}
				}
			}
			ask(subjectRecordQueries[0])
			raws := sortCorpus(30, 42)
			for i := range raws {
				first := "Subject: " + string(rune('A'+i%3)) + " new "
				if i%2 == 1 {
					first = "Subject: ~~ last "
				}
				raws[i] = strings.Replace(raws[i], "Subject: ", first, 1)
			}
			appendSortCorpusKeys(t, srv, "INBOX", raws, func(_ int, k *metadatapb.SortKeys) *metadatapb.SortKeys { return k })
			for seen := false; !seen; { // until the session's view holds the 30 (700-38-51+30)
				seen = slices.Contains(rc.ok("NOOP"), "* 641 EXISTS")
				if !seen {
					time.Sleep(10 * time.Millisecond)
				}
			}
			for _, q := range subjectRecordQueries {
				ask(q)
			}
			return out
		}
		want := plainAnswers(t, prepare, answers)
		asOwnerAndShared(t, prepare, func(owner bool, srv *embedded.Server, rc *rawConn) {
			before := imap.SubjectRecordsRead()
			wantSameAnswers(t, fmt.Sprintf("unnumbered %v, owner %v", unnumbered, owner), answers(srv, rc), want)
			// The first query reads the projection's 700-38-51 messages (up to the first
			// record without a number, then the column's strings).
			if n := imap.SubjectRecordsRead() - before; !unnumbered && n < 611 {
				t.Errorf("owner %v: %d messages read from the subject projection, want at least 611", owner, n)
			} else if n == 0 {
				t.Errorf("unnumbered %v, owner %v: no message read from the subject projection", unnumbered, owner)
			}
		})
	}
}

// TestSortSubjectThenDateReadsOnce: a session that alternates SORT (SUBJECT) and SORT
// (DATE) on its own mailbox reads the subject projection for the first, then once the
// thread-keys projection (subjects and dates) for the second, and nothing for the rest:
// the box dropped for lacking the dates widens the one read anew (dropLacking), so no
// command reads a whole projection again. The answers are the frontend's without a cache.
func TestSortSubjectThenDateReadsOnce(t *testing.T) {
	queries := []string{"UID SORT (SUBJECT) UTF-8 ALL", "UID SORT (DATE) UTF-8 ALL", "UID SORT (REVERSE SUBJECT) UTF-8 ALL", "UID SORT (REVERSE DATE) UTF-8 ALL"}
	prepare := func(srv *embedded.Server) *rawConn {
		return prepareSortMailboxWith(t, srv, 43, func(int) bool { return false })
	}
	want := plainAnswers(t, prepare, askAll(queries))
	srv := startServer(t)
	rc := prepare(srv)
	subjects, threadKeys, dates := imap.SubjectRecordsRead(), imap.ThreadKeyChunksRead(), imap.DateRecordsRead()
	wantSameAnswers(t, "cached", askAll(queries)(srv, rc), want)
	subjects, threadKeys, dates = imap.SubjectRecordsRead()-subjects, imap.ThreadKeyChunksRead()-threadKeys, imap.DateRecordsRead()-dates
	if subjects != 700-38-51 || threadKeys != 1 || dates != 0 {
		t.Fatalf("read %d subject records, %d thread-keys chunks, %d dates: want 611, 1, 0", subjects, threadKeys, dates)
	}
}

// columnReaderWithout is a metadata service of a build from before a ReadSortColumn field:
// it answers requests with forget applied to them (the field unset).
type columnReaderWithout struct {
	imap.ColumnReader
	forget func(*metadatapb.ReadSortColumnRequest)
}

func (r columnReaderWithout) ReadSortColumn(ctx context.Context, in *metadatapb.ReadSortColumnRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[metadatapb.SortColumnChunk], error) {
	in = proto.Clone(in).(*metadatapb.ReadSortColumnRequest)
	r.forget(in)
	return r.ColumnReader.ReadSortColumn(ctx, in, opts...)
}

// TestSortSubjectRecordsOlderService: the first SORT (SUBJECT) as the frontend asks for it
// (subject_records with thread_keys) orders the same, REVERSE too, whether the service
// answers with the subject projection, with the thread-keys projection (a service of level
// 5, which does not know subject_records) or with the whole column (one that knows
// neither), and reads 8 bytes a message only from the first.
func TestSortSubjectRecordsOlderService(t *testing.T) {
	srv := startServer(t)
	appendSortCorpus(t, srv, "INBOX", sortCorpus(500, 44), func(int) bool { return false })
	box := mailboxOf(t, srv, embedded.DemoAccount, "INBOX").GetId()
	uids := make([]uint32, 500)
	for i := range uids {
		uids[i] = uint32(i + 1)
	}
	services := []struct {
		name string
		md   imap.ColumnReader
	}{
		{"level 6", srv.Metadata()},
		{"level 5", columnReaderWithout{srv.Metadata(), func(r *metadatapb.ReadSortColumnRequest) { r.SubjectRecords = false }}},
		{"level 3", columnReaderWithout{srv.Metadata(), func(r *metadatapb.ReadSortColumnRequest) { r.SubjectRecords, r.ThreadKeys = false, false }}},
	}
	for _, reverse := range []bool{false, true} {
		keys := []sortthread.Criterion{{Key: sortthread.Subject, Reverse: reverse}}
		var want []int32
		for _, s := range services {
			req := &metadatapb.ReadSortColumnRequest{Account: embedded.DemoAccount, User: embedded.DemoAccount, MailboxId: box, Records: true, SubjectRecords: true, ThreadKeys: true}
			got, read, err := imap.FirstSort(t.Context(), s.md, req, true, uids, keys)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if want == nil {
				want = got
				if read > 500*8+4*500 { // the records, and the subject order (at most a number a message)
					t.Errorf("%s: read %d bytes, want 8 a message and the subject order", s.name, read)
				}
			} else if !slices.Equal(got, want) {
				t.Errorf("%s, reverse %v: order differs from the subject projection's", s.name, reverse)
			}
		}
	}
}
