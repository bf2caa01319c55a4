package imapresp

import (
	"testing"

	"github.com/strata-mail/strata/frontend/message"
)

func TestAppendMultiSearch(t *testing.T) {
	utf8 := message.Encoder{UTF8: true}
	checkEncoded(t, []encodeCase{
		// RFC 7377 2's example.
		{"ALL", AppendMultiSearch(nil, message.Encoder{}, "folder2/salmon", 1111111, ESearch{Tag: "tag1", Returns: []string{"ALL"}, Nums: []uint32{50003, 50006, 50009, 50012}}),
			"* ESEARCH (TAG \"tag1\" MAILBOX \"folder2/salmon\" UIDVALIDITY 1111111) UID ALL 50003,50006,50009,50012\r\n"},
		{"MIN MAX COUNT MODSEQ", AppendMultiSearch(nil, message.Encoder{}, "INBOX", 7, ESearch{Tag: "t", Returns: []string{"MIN", "MAX", "COUNT"}, Nums: []uint32{3, 4, 9}, ModSeq: 12}),
			"* ESEARCH (TAG \"t\" MAILBOX \"INBOX\" UIDVALIDITY 7) UID MIN 3 MAX 9 COUNT 3 MODSEQ 12\r\n"},
		{"quoted", AppendMultiSearch(nil, message.Encoder{}, `Other Users/bob@example.com/a"b`, 1, ESearch{Tag: `x"y`, Returns: []string{"COUNT"}}),
			"* ESEARCH (TAG \"x\\\"y\" MAILBOX \"Other Users/bob@example.com/a\\\"b\" UIDVALIDITY 1) UID COUNT 0\r\n"},
		{"UTF-8 name", AppendMultiSearch(nil, utf8, "Répertoire", 2, ESearch{Tag: "u", Returns: []string{"ALL"}, Nums: []uint32{1}}),
			"* ESEARCH (TAG \"u\" MAILBOX \"Répertoire\" UIDVALIDITY 2) UID ALL 1\r\n"},
		{"8-bit tag, IMAP4rev1", AppendMultiSearch(nil, message.Encoder{}, "INBOX", 3, ESearch{Tag: "tä", Returns: []string{"COUNT"}}),
			"* ESEARCH (TAG {3}\r\ntä MAILBOX \"INBOX\" UIDVALIDITY 3) UID COUNT 0\r\n"},
	})
}
