package imapwire

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestParseCondStore: the CONDSTORE and QRESYNC syntax of RFC 7162 7.
func TestParseCondStore(t *testing.T) {
	checkParses(t, []parseCase{
		{`a SELECT INBOX (CONDSTORE)`, &MailboxArgs{Mailbox: "INBOX", CondStore: true}},
		{`a EXAMINE INBOX (QRESYNC (67890007 20050715194045000))`, &MailboxArgs{Mailbox: "INBOX",
			QResync: &QResyncParams{UIDValidity: 67890007, ModSeq: 20050715194045000}}},
		{`a SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))`, &MailboxArgs{Mailbox: "INBOX",
			QResync: &QResyncParams{UIDValidity: 67890007, ModSeq: 90060115194045000,
				KnownUIDs: imap.UIDSet{{Start: 41, Stop: 211}, {Start: 214, Stop: 541}}}}},
		{`a select inbox (qresync (1 2 1:100 (1:3,20 1,5,100)) condstore)`, &MailboxArgs{Mailbox: "INBOX", CondStore: true,
			QResync: &QResyncParams{UIDValidity: 1, ModSeq: 2, KnownUIDs: imap.UIDSet{{Start: 1, Stop: 100}},
				SeqMatchSeqs: imap.SeqSet{{Start: 1, Stop: 3}, {Start: 20, Stop: 20}},
				SeqMatchUIDs: imap.UIDSet{{Start: 1, Stop: 1}, {Start: 5, Stop: 5}, {Start: 100, Stop: 100}}}}},
		{`a SELECT INBOX (QRESYNC (1 2 (1 5)))`, &MailboxArgs{Mailbox: "INBOX",
			QResync: &QResyncParams{UIDValidity: 1, ModSeq: 2, SeqMatchSeqs: imap.SeqSet{{Start: 1, Stop: 1}},
				SeqMatchUIDs: imap.UIDSet{{Start: 5, Stop: 5}}}}},
		{`a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)`, &FetchArgs{Set: imap.SeqSet{{Start: 1, Stop: 0}},
			Items: []FetchItem{{Attr: FetchFlags}}, ChangedSince: 12345}},
		// UID FETCH adds no UID item in the parser; the handler does.
		{`a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)`, &FetchArgs{Set: imap.UIDSet{{Start: 300, Stop: 500}},
			Items: []FetchItem{{Attr: FetchFlags}}, ChangedSince: 12345, Vanished: true}},
		{`a UID FETCH 1:* MODSEQ (vanished changedsince 1)`, &FetchArgs{Set: imap.UIDSet{{Start: 1, Stop: 0}},
			Items: []FetchItem{{Attr: FetchModSeq}}, ChangedSince: 1, Vanished: true}},
		{`a SEARCH MODSEQ "/flags/\\draft" all 620162338`, &SearchArgs{ModSeq: true, Criteria: imap.SearchCriteria{
			ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 620162338, MetadataName: `/flags/\draft`, MetadataType: imap.SearchCriteriaMetadataAll}}}},
		{`a SEARCH OR NOT MODSEQ 720162338 LARGER 50000`, &SearchArgs{ModSeq: true, Criteria: imap.SearchCriteria{
			Or: [][2]imap.SearchCriteria{{{Not: []imap.SearchCriteria{{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 720162338}}}}, {Larger: 50000}}}}}},
	})
	checkRefused(t, []string{
		`a SELECT INBOX ()`,
		`a SELECT INBOX (CONDSTORE CONDSTORE)`,
		`a SELECT INBOX (FOO)`,
		`a SELECT INBOX (QRESYNC (0 1))`,
		`a SELECT INBOX (QRESYNC (1 0))`,
		`a SELECT INBOX (QRESYNC (1))`,
		`a SELECT INBOX (QRESYNC (1 2 1:*))`,
		`a SELECT INBOX (QRESYNC (1 2 1:5 (1:2)))`,
		`a FETCH 1 FLAGS (CHANGEDSINCE 0)`,
		`a FETCH 1 FLAGS (VANISHED CHANGEDSINCE 5)`,
		`a UID FETCH 1 FLAGS (VANISHED)`,
		`a FETCH 1 FLAGS (CHANGEDSINCE 5 CHANGEDSINCE 6)`,
		`a FETCH 1 FLAGS ()`,
		`a SEARCH MODSEQ`,
		`a SEARCH MODSEQ "/flags/\\seen" everything 5`,
		`a DELETE INBOX (CONDSTORE)`,
	})
}
