package imapwire

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestParseObjectID: the OBJECTID syntax of RFC 8474 7: the EMAILID and THREADID fetch-atts
// and search keys, which travel as Header entries (SearchEmailID); the MAILBOXID status-att
// is an atom like the others.
func TestParseObjectID(t *testing.T) {
	checkParses(t, []parseCase{
		{`a FETCH 1:* (EMAILID threadid)`, &FetchArgs{Set: imap.SeqSet{{Start: 1, Stop: 0}},
			Items: []FetchItem{{Attr: FetchEmailID}, {Attr: FetchThreadID}}}},
		{`a UID FETCH 7 EMAILID`, &FetchArgs{Set: imap.UIDSet{{Start: 7, Stop: 7}},
			Items: []FetchItem{{Attr: FetchEmailID}}}},
		{`a SEARCH EMAILID M6d99ac3275bb4e`, &SearchArgs{Criteria: imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: SearchEmailID, Value: "M6d99ac3275bb4e"}}}}},
		{`a SEARCH threadid T_a-9 UNSEEN OR NOT EMAILID x THREADID y`, &SearchArgs{Criteria: imap.SearchCriteria{
			Header:  []imap.SearchCriteriaHeaderField{{Key: SearchThreadID, Value: "T_a-9"}},
			NotFlag: []imap.Flag{imap.FlagSeen},
			Or: [][2]imap.SearchCriteria{{
				{Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{{Key: SearchEmailID, Value: "x"}}}}},
				{Header: []imap.SearchCriteriaHeaderField{{Key: SearchThreadID, Value: "y"}}},
			}},
		}}},
		// A HEADER key cannot pose as one.
		{`a SEARCH HEADER :EMAILID x`, &SearchArgs{Criteria: imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: "\x00:EMAILID", Value: "x"}}}}},
	})
	checkRefused(t, []string{
		"a SEARCH EMAILID", "a SEARCH EMAILID ()", "a SEARCH EMAILID a!b", `a SEARCH THREADID "T1"`,
		"a SEARCH EMAILID " + strings.Repeat("M", 256), "a FETCH 1 EMAILID[]", "a FETCH 1 (THREADID.PEEK)",
	})
	if _, err := ParseCommand([]byte("a SEARCH EMAILID " + strings.Repeat("M", 255))); err != nil {
		t.Errorf("an objectid of 255 characters: %v", err)
	}
}
