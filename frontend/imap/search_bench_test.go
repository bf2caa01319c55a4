package imap

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// searchBenchMessages is the size of the in-memory mailbox BenchmarkSearchEval searches.
const searchBenchMessages = 10_000

// searchBenchPeople are the From addresses of the benchmark mailbox, some with RFC 2047
// encoded display names that SEARCH FROM must decode.
var searchBenchPeople = []string{
	"Alice Martin <alice@example.org>",
	"=?UTF-8?Q?Zo=C3=AB_M=C3=BCller?= <zoe@example.de>",
	"\"Bob O'Neil\" <bob@example.net>",
	"=?UTF-8?B?5p2O5bCP6b6N?= <li@example.cn>",
	"carol@example.com",
	"=?ISO-8859-1?Q?Fran=E7ois_Dupr=E9?= <francois@example.fr>",
}

// searchBenchSubjects are subjects in plain ASCII, raw UTF-8 and RFC 2047 encodings.
var searchBenchSubjects = []string{
	"Quarterly report %d",
	"Meeting agenda for week %d",
	"=?UTF-8?B?UmU6IHF1YXJ0ZXJseSByw6l1bmlvbiByZXBvcnQ=?= %d",
	"Budget review %d",
	"=?UTF-8?Q?Caf=C3=A9_in_Z=C3=BCrich?= %d",
	"Re: Project deadline %d",
	"Statusbericht Straße %d",
}

// searchBenchMailbox builds a selected mailbox of n messages with their stored records, as a
// session holds them after SELECT and as metadata returns them for SEARCH: headers parsed by
// message.Parse at ingest, varied sizes, internal dates over ~14 months, every third message
// \Seen, every tenth \Flagged, every fiftieth \Answered, a keyword on every seventh.
func searchBenchMailbox(b *testing.B, n int) (*conn, []*metadatapb.MessageRecord) {
	b.Helper()
	base := time.Date(2025, 11, 3, 8, 0, 0, 0, time.UTC)
	sel := &selected{uidValidity: 1, uidNext: uint32(n + 1)}
	records := make([]*metadatapb.MessageRecord, n)
	for i := range n {
		uid := uint32(i + 1)
		date := base.Add(time.Duration(i) * 61 * time.Minute)
		raw := fmt.Sprintf("Date: %s\r\nFrom: %s\r\nTo: Team <team@example.org>\r\n"+
			"Subject: "+searchBenchSubjects[i%len(searchBenchSubjects)]+"\r\n"+
			"Message-ID: <%d.bench@strata.test>\r\n%sMIME-Version: 1.0\r\n"+
			"Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
			date.Format(time.RFC1123Z), searchBenchPeople[i%len(searchBenchPeople)], i, i,
			references(i), strings.Repeat("Body text of the benchmark message.\r\n", 1+i%97))
		st, err := message.Parse(strings.NewReader(raw))
		if err != nil {
			b.Fatalf("parse message %d: %v", i, err)
		}
		var flags []string
		if i%3 == 0 {
			flags = append(flags, `\Seen`)
		}
		if i%10 == 0 {
			flags = append(flags, `\Flagged`)
		}
		if i%50 == 0 {
			flags = append(flags, `\Answered`)
		}
		if i%7 == 0 {
			flags = append(flags, "$Label1")
		}
		sel.msgs.append(uid, 1, flags)
		records[i] = &metadatapb.MessageRecord{Uid: uid, Size: uint64(len(raw)),
			InternalDateUnix: date.Add(90 * time.Second).Unix(), Flags: flags, Structure: st}
	}
	return &conn{state: stateSelected, sel: sel}, records
}

// references makes every fourth message a reply to the one before it.
func references(i int) string {
	if i%4 != 3 {
		return ""
	}
	return fmt.Sprintf("In-Reply-To: <%d.bench@strata.test>\r\nReferences: <%d.bench@strata.test>\r\n", i-1, i-1)
}

// BenchmarkSearchEval measures SEARCH evaluation alone (RFC 9051 6.4.4), without a socket
// or metadata calls: the command line is parsed once, then each iteration folds the
// criteria and matches every message of a 10,000-message mailbox as cmdSearch does, against
// the session's flags and, for keys that need them, the stored records held in memory.
// ns/msg is the cost per message; matches is the size of the result.
//
//	go test ./frontend -run '^$' -bench BenchmarkSearchEval -benchmem
func BenchmarkSearchEval(b *testing.B) {
	c, records := searchBenchMailbox(b, searchBenchMessages)
	for _, bm := range []struct{ name, criteria string }{
		{"Unseen", "UNSEEN"},
		{"FlaggedUnseenUIDRange", "FLAGGED UNSEEN UID 2000:*"},
		{"Keyword", "KEYWORD $Label1"},
		{"NotOrSeenAnswered", "NOT OR SEEN ANSWERED"},
		{"Since", "SINCE 1-Mar-2026"},
		{"SentBefore", "SENTBEFORE 1-Feb-2026"},
		{"Larger", "LARGER 2048"},
		{"Subject", "SUBJECT report"},
		{"SubjectEncodedWord", `SUBJECT "zürich"`},
		{"From", `FROM "müller"`},
		{"HeaderMessageID", "HEADER Message-ID <4711.bench@"},
		{"HeaderReferencesAny", `HEADER References ""`},
		{"OrNotTree", "OR (FLAGGED SINCE 1-Feb-2026) NOT (OR SUBJECT report FROM alice) UNANSWERED"},
		{"DeepOr", "OR OR OR SUBJECT agenda FROM carol KEYWORD $Label1 OR SENTSINCE 1-Jan-2027 HEADER Message-ID <99."},
	} {
		cmd, err := imapwire.ParseCommand([]byte("b1 UID SEARCH CHARSET UTF-8 " + bm.criteria))
		if err != nil {
			b.Fatalf("parse %q: %v", bm.criteria, err)
		}
		args := cmd.Args.(*imapwire.SearchArgs)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			matches := 0
			for b.Loop() {
				crit := foldCriteria(&args.Criteria)
				needRecord, _ := criteriaNeeds(crit)
				matches = 0
				for i := range c.sel.msgs.len() {
					var rec *metadatapb.MessageRecord
					if needRecord {
						rec = records[i]
					}
					ok, err := c.matchCriteria(crit, i, rec, nil)
					if err != nil {
						b.Fatal(err)
					}
					if ok {
						matches++
					}
				}
			}
			if matches == 0 || matches == searchBenchMessages {
				b.Fatalf("%s matched %d of %d messages: the benchmark mailbox does not exercise it", bm.criteria, matches, searchBenchMessages)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/searchBenchMessages, "ns/msg")
			b.ReportMetric(float64(matches), "matches")
		})
	}
}
