package imapwire

import (
	"reflect"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestParseSort(t *testing.T) {
	for _, tc := range []struct {
		line string
		want *SortArgs
	}{
		{"a SORT (REVERSE DATE subject) UTF-8 ALL", &SortArgs{Keys: []SortKey{{"DATE", true}, {"SUBJECT", false}}, Charset: "UTF-8"}},
		{"a UID SORT RETURN (MIN PARTIAL 10:1) (SIZE) us-ascii SEEN", &SortArgs{
			Return: []string{"MIN", "PARTIAL"}, ESearch: true, Partial: &PartialRange{First: 1, Last: 10},
			Keys: []SortKey{{"SIZE", false}}, Charset: "US-ASCII", Criteria: imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}},
		}},
		{"a SORT RETURN (PARTIAL -1:-5) (ARRIVAL) UTF-8 OLDER 60", &SortArgs{
			Return: []string{"PARTIAL"}, ESearch: true, Partial: &PartialRange{First: -1, Last: -5},
			Keys: []SortKey{{"ARRIVAL", false}}, Charset: "UTF-8",
			Criteria: imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: SearchOlder, Value: "60"}}},
		}},
		{"a SORT RETURN () (BOGUS) X ALL", &SortArgs{Return: nil, ESearch: true, Keys: []SortKey{{"BOGUS", false}}, Charset: "X"}},
	} {
		cmd, err := ParseCommand([]byte(tc.line))
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if got := cmd.Args.(*SortArgs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
	for _, line := range []string{
		"a SORT (DATE) ALL",                             // no charset
		"a SORT DATE UTF-8 ALL",                         // no list
		"a SORT (DATE UTF-8 ALL",                        // unclosed
		"a SORT (DATE) UTF-8",                           // no search key
		"a SORT RETURN (PARTIAL 0:5) (DATE) UTF-8 ALL",  // nz-number
		"a SORT RETURN (PARTIAL -1:5) (DATE) UTF-8 ALL", // mixed signs
		"a THREAD REFERENCES",
		"a SEARCH OLDER 0",
		"a SEARCH YOUNGER x",
	} {
		if _, err := ParseCommand([]byte(line)); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
	search, err := ParseCommand([]byte("a SEARCH RETURN (UPDATE PARTIAL 500:1 context) UNSEEN"))
	if err != nil {
		t.Fatal(err)
	}
	wantSearch := &SearchArgs{Return: []string{"UPDATE", "PARTIAL", "CONTEXT"}, ESearch: true, Partial: &PartialRange{First: 1, Last: 500},
		Criteria: imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}}
	if got := search.Args.(*SearchArgs); !reflect.DeepEqual(got, wantSearch) {
		t.Errorf("SEARCH RETURN (UPDATE PARTIAL ...) = %+v", got)
	}
	cmd, err := ParseCommand([]byte("a UID THREAD orderedsubject UTF-8 YOUNGER 5"))
	if err != nil {
		t.Fatal(err)
	}
	want := &ThreadArgs{Algorithm: "ORDEREDSUBJECT", Charset: "UTF-8",
		Criteria: imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: SearchYounger, Value: "5"}}}}
	if got := cmd.Args.(*ThreadArgs); !cmd.UID || !reflect.DeepEqual(got, want) {
		t.Errorf("UID THREAD = %+v", got)
	}
}

// TestParseCancelUpdate: RFC 5267 5, command-select =/ "CANCELUPDATE" 1*(SP quoted).
func TestParseCancelUpdate(t *testing.T) {
	cmd, err := ParseCommand([]byte(`B04 CANCELUPDATE "B01" "a\\b" "C\"3"`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cmd.Args.(*CancelUpdateArgs).Tags; !reflect.DeepEqual(got, []string{"B01", `a\b`, `C"3`}) {
		t.Errorf("tags = %q", got)
	}
	for _, line := range []string{
		"a CANCELUPDATE",              // no tag
		"a CANCELUPDATE B01",          // an atom, not quoted
		"a CANCELUPDATE {3}\r\nB01",   // a literal, not quoted
		`a CANCELUPDATE "B01" `,       // trailing space
		`a CANCELUPDATE "B01"  "B02"`, // two spaces
	} {
		if _, err := ParseCommand([]byte(line)); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
}
