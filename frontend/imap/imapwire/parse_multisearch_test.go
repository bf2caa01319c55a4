package imapwire

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestParseMultiSearch(t *testing.T) {
	chad := imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "chad"}}}
	checkParses(t, []parseCase{
		// RFC 7377 2's examples.
		{`tag1 ESEARCH IN (mailboxes "folder1" subtree-one "folder2") subject "chad"`, &MultiSearchArgs{
			Sources: []SearchSource{{Filter: NotifyMailboxes, Mailboxes: []string{"folder1"}}, {Filter: SearchSubtreeOne, Mailboxes: []string{"folder2"}}},
			Search:  SearchArgs{Criteria: chad},
		}},
		{`tag1 ESEARCH IN (mailboxes "folder1" subtree "folder2") unseen`, &MultiSearchArgs{
			Sources: []SearchSource{{Filter: NotifyMailboxes, Mailboxes: []string{"folder1"}}, {Filter: NotifySubtree, Mailboxes: []string{"folder2"}}},
			Search:  SearchArgs{Criteria: imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}},
		}},
		{"a esearch in (Personal SUBSCRIBED inboxes Selected selected-delayed mailboxes (inbox {4}\r\nWork)) RETURN (MIN COUNT) CHARSET utf-8 1:* MODSEQ 5", &MultiSearchArgs{
			Sources: []SearchSource{{Filter: NotifyPersonal}, {Filter: NotifySubscribed}, {Filter: NotifyInboxes}, {Filter: NotifySelected},
				{Filter: NotifySelectedDelayed}, {Filter: NotifyMailboxes, Mailboxes: []string{"INBOX", "Work"}}},
			Search: SearchArgs{ESearch: true, Return: []string{"MIN", "COUNT"}, Charset: "UTF-8", ModSeq: true, Criteria: imap.SearchCriteria{
				SeqNum: []imap.SeqSet{{{Start: 1, Stop: 0}}}, ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 5},
			}},
		}},
		// Without IN: the selected mailbox (RFC 7377 2.2); "$" is the saved result.
		{`a ESEARCH RETURN (SAVE) $`, &MultiSearchArgs{
			Search: SearchArgs{ESearch: true, Return: []string{"SAVE"}, Criteria: imap.SearchCriteria{UID: []imap.UIDSet{imap.SearchRes()}}},
		}},
	})
	checkRefused(t, []string{
		`a ESEARCH`,
		`a ESEARCH IN (personal)`,
		`a ESEARCH IN () ALL`,
		`a ESEARCH IN personal ALL`,
		`a ESEARCH IN (everything) ALL`,
		`a ESEARCH IN (subtree) ALL`,
		`a ESEARCH IN (mailboxes ()) ALL`,
		`a ESEARCH IN (subtree-one (a b) ALL`,
		`a ESEARCH IN (personal (depth 1)) ALL`, // RFC 7377 defines no scope option
		`a ESEARCH IN (personal  inboxes) ALL`,
		`a ESEARCH IN (personal) RETURN (MIN ALL`,
		`a ESEARCH IN (personal) ALL extra(`,
		`a UID ESEARCH ALL`,
	})
}
