package imap_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// sortCorpus returns n raw messages whose sort and thread keys collide often: few distinct
// subjects under Re:/Fwd:/[tag] prefixes and RFC 2047 words, few senders, missing and
// unparseable dates, equal dates, replies by References and by In-Reply-To, and some
// without a Message-ID.
func sortCorpus(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	subjects := []string{"Meeting", "=?UTF-8?Q?=C3=89t=C3=A9?=", "budget", "Lunch?", "[list] news", "hello"}
	prefixes := []string{"", "", "Re: ", "RE: re: ", "Fwd: ", "[tag] Re: "}
	froms := []string{"Zoe <z@x.org>", "=?UTF-8?Q?=C3=89lodie?= <e@x.org>", "a@x.org", "Bob <bob@y.org>", ""}
	out := make([]string, n)
	for i := range out {
		var h strings.Builder
		if f := froms[rng.IntN(len(froms))]; f != "" {
			fmt.Fprintf(&h, "From: %s\n", f)
		}
		fmt.Fprintf(&h, "To: %s\nSubject: %s%s\n", froms[rng.IntN(len(froms)-1)], prefixes[rng.IntN(len(prefixes))], subjects[rng.IntN(len(subjects))])
		switch rng.IntN(6) {
		case 0: // no Date: the internal date
		case 1:
			h.WriteString("Date: not a date\n")
		default:
			fmt.Fprintf(&h, "Date: %s\n", day("2020-01-01").Add(time.Duration(rng.IntN(50))*time.Hour).Format(time.RFC1123Z))
		}
		if rng.IntN(8) > 0 {
			fmt.Fprintf(&h, "Message-ID: <%d@x>\n", i)
		}
		if i > 0 {
			switch rng.IntN(3) {
			case 0:
				fmt.Fprintf(&h, "References: <%d@x> <%d@x>\n", rng.IntN(i), rng.IntN(i))
			case 1:
				fmt.Fprintf(&h, "In-Reply-To: <%d@x>\n", rng.IntN(i))
			}
		}
		out[i] = h.String() + "\nbody " + strings.Repeat("x", rng.IntN(300)) + "\n"
	}
	return out
}

// appendSortCorpus appends raws to mailbox through the metadata service as the frontend's
// ingest stores them, with sort keys, or without them (stored before they were kept) for
// the indexes in legacy.
func appendSortCorpus(t *testing.T, srv *embedded.Server, mailbox string, raws []string, legacy func(i int) bool) {
	t.Helper()
	appendSortCorpusKeys(t, srv, mailbox, raws, func(i int, keys *metadatapb.SortKeys) *metadatapb.SortKeys {
		if legacy(i) {
			return nil
		}
		return keys
	})
}

// appendSortCorpusKeys is appendSortCorpus storing for raws[i] the sort keys keys(i, the
// frontend's keys of it) (nil: none).
func appendSortCorpusKeys(t *testing.T, srv *embedded.Server, mailbox string, raws []string, keys func(i int, keys *metadatapb.SortKeys) *metadatapb.SortKeys) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	box, err := srv.Metadata().GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Name: mailbox})
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(raws); start += 100 {
		req := &metadatapb.AppendRequest{RequestId: embedded.NewRequestID(), Account: embedded.DemoAccount, MailboxId: box.GetId()}
		for i := start; i < min(start+100, len(raws)); i++ {
			msg := []byte(strings.ReplaceAll(raws[i], "\n", "\r\n"))
			structure, err := message.Parse(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			structure.SortKeys = keys(i, message.SortKeys(structure))
			req.Messages = append(req.Messages, &metadatapb.NewMessage{BlobKey: blobstore.Key("example", sha256.Sum256(msg)),
				Size: uint64(len(msg)), InternalDateUnix: day("2020-01-01").Unix() + int64(i%40)*3600, Structure: structure})
		}
		if _, err := srv.Metadata().Append(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
}

var columnQueries = []string{
	"UID SORT (DATE) UTF-8 ALL", "UID SORT (SUBJECT) UTF-8 ALL", "UID SORT (REVERSE ARRIVAL) UTF-8 ALL",
	"UID SORT (FROM SIZE) UTF-8 ALL", "UID SORT (DISPLAYFROM REVERSE DATE) UTF-8 ALL", "UID SORT (TO CC) UTF-8 ALL",
	"UID SORT (DISPLAYTO SUBJECT) UTF-8 ALL", "SORT (REVERSE SUBJECT) UTF-8 ALL",
	"UID THREAD REFERENCES UTF-8 ALL", "UID THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD REFS UTF-8 ALL",
	"UID THREAD REFERENCES UTF-8 NOT SUBJECT budget",
}

// TestSortColumnMatchesRecords: SORT and THREAD answer the same whether the keys come from
// the sort-key column (ReadSortColumn) or from the stored records (FetchMessages), on a
// mailbox where some messages were stored without keys (the column lacks them: they are
// read the old way) and some are expunged. With the frontend's cache on, messages appended
// after the first SORT are read from the column above what it read before, and the
// answers are those of the frontend without a cache.
func TestSortColumnMatchesRecords(t *testing.T) {
	reference := map[string][]string{} // by step, the answers without a cache
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", cached), func(t *testing.T) {
			srv := startServerWith(t, func(cfg *embedded.Config) {
				if !cached {
					cfg.IMAPLimits.SortCacheMessages = -1
				}
			})
			raws := sortCorpus(900, 3)
			appendSortCorpus(t, srv, "INBOX", raws[:600], func(i int) bool { return i%10 == 3 })
			rc := loginRaw(t, srv)
			rc.ok("SELECT INBOX")
			rc.ok("UID STORE 5:40,77,300 +FLAGS (\\Deleted)")
			rc.ok("EXPUNGE")
			answers := func(column bool) []string {
				t.Helper()
				least := int64(math.MaxInt64)
				if column {
					least = 1
				}
				imap.SetSortColumnMin(t, least)
				var out []string
				for _, q := range columnQueries {
					got := rc.ok(q)
					if len(got) != 1 {
						t.Fatalf("%s answered %q", q, got)
					}
					out = append(out, got[0])
				}
				return out
			}
			check := func(step string) {
				t.Helper()
				viaColumn := answers(true)
				viaRecords := answers(false)
				if cached {
					viaRecords = reference[step]
				}
				reference[step] = viaRecords
				for i, q := range columnQueries {
					if viaColumn[i] != viaRecords[i] {
						t.Errorf("%s: %s\n column:  %.300s\n records: %.300s", step, q, viaColumn[i], viaRecords[i])
					}
				}
			}
			check("first")
			appendSortCorpus(t, srv, "INBOX", raws[600:], func(int) bool { return false })
			// The session learns of the appends from the change feed: wait until it has.
			for i := 0; !slices.Contains(rc.ok("NOOP"), "* 862 EXISTS"); i++ {
				if i == 200 {
					t.Fatal("the session never saw the appended messages")
				}
				time.Sleep(50 * time.Millisecond)
			}
			check("after appends")
			if got := rc.ok("UID SORT (ARRIVAL) UTF-8 ALL")[0]; len(strings.Fields(got)) != 2+900-38 {
				t.Errorf("SORT names %d messages, want %d", len(strings.Fields(got))-2, 900-38)
			}
			if got := rc.ok("UID SORT (ARRIVAL) UTF-8 UID 890:*"); !slices.Equal(got, []string{"* SORT 890 891 892 893 894 895 896 897 898 899 900"}) {
				t.Errorf("the last appended messages sort as %q", got)
			}
		})
	}
}

// TestSortSharedMailboxMatchesOwner: another owner's mailbox is ordered from a structure
// made for the command alone, which keeps only the keys the command orders by (RFC 4314:
// read under the rights in force, never cached); its answers are the owner's, from the
// frontend's cache, by the column and by the records, with messages stored without keys and
// expunged ones.
func TestSortSharedMailboxMatchesOwner(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := srv.Metadata().CreateAccount(ctx, &metadatapb.CreateAccountRequest{
		RequestId: embedded.NewRequestID(), Email: bob, Password: testPassword,
	}); err != nil {
		t.Fatal(err)
	}
	appendSortCorpus(t, srv, "INBOX", sortCorpus(500, 5), func(i int) bool { return i%9 == 4 })
	owner := loginRaw(t, srv)
	owner.ok("SETACL INBOX " + bob + " lr")
	owner.ok("SELECT INBOX")
	owner.ok("UID STORE 10:30,99 +FLAGS (\\Deleted)")
	owner.ok("EXPUNGE")
	shared := loginRawAs(t, srv, bob)
	shared.ok(`SELECT "Other Users/demo@example.com/INBOX"`)
	for _, least := range []int64{1, math.MaxInt64} {
		imap.SetSortColumnMin(t, least)
		for _, q := range append(columnQueries, "UID SORT (SIZE REVERSE TO) UTF-8 ALL", "SORT (CC) UTF-8 SUBJECT budget") {
			want, got := owner.ok(q), shared.ok(q)
			if len(want) != 1 || !slices.Equal(got, want) {
				t.Errorf("column from UID %d: %s\n shared: %.300q\n owner:  %.300q", least, q, got, want)
			}
		}
	}
}
