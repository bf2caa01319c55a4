package imapwire

import (
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestParseFetchGrammar(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []FetchItem
	}{
		{"a FETCH 1 body.peek[1.2.3.header.fields.not (a \"B c\")]<10.20>", []FetchItem{{Attr: FetchBodySection, Section: &imap.FetchItemBodySection{
			Part: []int{1, 2, 3}, Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"a", "B c"}, Peek: true,
			Partial: &imap.SectionPartial{Offset: 10, Size: 20},
		}}}},
		{"a FETCH 1 (BINARY[] BINARY.PEEK[4.1]<0.1> binary.size[2])", []FetchItem{
			{Attr: FetchBinarySection, Section: &imap.FetchItemBodySection{}},
			{Attr: FetchBinarySection, Section: &imap.FetchItemBodySection{Part: []int{4, 1}, Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: 1}}},
			{Attr: FetchBinarySize, Section: &imap.FetchItemBodySection{Part: []int{2}}},
		}},
		{"a FETCH 1 (BODY BODY[2.MIME] RFC822 RFC822.header rfc822.TEXT)", []FetchItem{
			{Attr: FetchBody},
			{Attr: FetchBodySection, Section: &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME}},
			{Attr: FetchRFC822}, {Attr: FetchRFC822Header}, {Attr: FetchRFC822Text},
		}},
		{"a FETCH 1 fast", []FetchItem{{Attr: FetchFlags}, {Attr: FetchInternalDate}, {Attr: FetchRFC822Size}}},
	} {
		cmd, err := ParseCommand([]byte(tc.line))
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if got := cmd.Args.(*FetchArgs).Items; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
	checkRefused(t, []string{
		"a FETCH 1 BINARY.SIZE[1]<0.5>", "a FETCH 1 BINARY[1.TEXT]", "a FETCH 1 BINARY[HEADER]",
		"a FETCH 1 BODY[1.0]", "a FETCH 1 BODY[]<1>", "a FETCH 1 BODY[]<1.0>", "a FETCH 1 (FAST)",
		"a FETCH 1 BODY[MIME]", "a FETCH 1 BODY[HEADER.FIELDS]", "a FETCH $,1 FLAGS", "a FETCH 1:$ FLAGS",
		"a FETCH 1 BODY[1." + strings.Repeat("1.", 200) + "1]",
	})
}

func TestParseSearchGrammar(t *testing.T) {
	cmd, err := ParseCommand([]byte(`a UID SEARCH RETURN (save min) CHARSET "utf-8" (OR $ UID 5:2 NOT (KEYWORD $Junk)) SUBJECT {2+}` + "\r\n\xc3\xa9"))
	if err != nil {
		t.Fatal(err)
	}
	args := cmd.Args.(*SearchArgs)
	if !reflect.DeepEqual(args.Return, []string{"SAVE", "MIN"}) || !args.ESearch || args.Charset != "UTF-8" {
		t.Errorf("return %q esearch %v charset %q", args.Return, args.ESearch, args.Charset)
	}
	c := args.Criteria
	if len(c.Or) != 1 || len(c.Not) != 1 || len(c.Header) != 1 || c.Header[0].Value != "é" {
		t.Fatalf("criteria %+v", c)
	}
	if !imap.IsSearchRes(c.Or[0][0].UID[0]) || c.Or[0][1].UID[0].String() != "2:5" {
		t.Errorf("OR operands %+v", c.Or[0])
	}
	checkRefused(t, []string{
		"a SEARCH", "a SEARCH ()", "a SEARCH NOT", "a SEARCH RETURN SAVE ALL", "a SEARCH CHARSET", "a SEARCH ON 1-Jan-99999",
		"a SEARCH " + strings.Repeat("NOT ", 1000) + "ALL", "a SEARCH " + strings.Repeat("(", 1000) + "ALL" + strings.Repeat(")", 1000),
	})
}
