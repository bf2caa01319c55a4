package imapwire

import (
	"reflect"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestParseFuzzy: FUZZY (RFC 6203 3) takes one search key; its text keys travel as the
// SearchFuzzy* Header entries, any other key as itself, and RELEVANCY is a RETURN option
// (RFC 6203 4).
func TestParseFuzzy(t *testing.T) {
	for _, tc := range []struct {
		line string
		want *SearchArgs
	}{
		{"a UID SEARCH RETURN (ALL RELEVANCY) FUZZY SUBJECT quartely", &SearchArgs{ESearch: true, Return: []string{"ALL", "RELEVANCY"},
			Criteria: imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: SearchFuzzyHeader + "Subject", Value: "quartely"}}}}},
		{"a SEARCH FUZZY (BODY sushy TEXT x SEEN SMALLER 10) FROM bob", &SearchArgs{Criteria: imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: SearchFuzzyBody, Value: "sushy"}, {Key: SearchFuzzyText, Value: "x"}, {Key: "From", Value: "bob"}},
			Flag:   []imap.Flag{imap.FlagSeen}, Smaller: 10}}},
		{"a SEARCH SMALLER 5 FUZZY HEADER X-Tag foo", &SearchArgs{Criteria: imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: SearchFuzzyHeader + "X-Tag", Value: "foo"}}, Smaller: 5}}},
		{"a SEARCH NOT FUZZY TEXT abc", &SearchArgs{Criteria: imap.SearchCriteria{
			Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{{Key: SearchFuzzyText, Value: "abc"}}}}}}},
		{"a SEARCH FUZZY FUZZY SUBJECT x", &SearchArgs{Criteria: imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: SearchFuzzyHeader + "Subject", Value: "x"}}}}},
		{"a SEARCH FUZZY MODSEQ 7", &SearchArgs{ModSeq: true, Criteria: imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 7}}}},
	} {
		cmd, err := ParseCommand([]byte(tc.line))
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if got := cmd.Args.(*SearchArgs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
	for _, line := range []string{"a SEARCH FUZZY", "a SEARCH FUZZY ", "a SEARCH FUZZY NOPE x", "a SEARCH FUZZY (SUBJECT x"} {
		if _, err := ParseCommand([]byte(line)); err == nil {
			t.Errorf("%s: parsed, want an error", line)
		}
	}
}
