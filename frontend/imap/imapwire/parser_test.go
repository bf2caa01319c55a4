package imapwire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func mustParse(t *testing.T, line string) *Command {
	t.Helper()
	cmd, err := ParseCommand([]byte(line))
	if err != nil {
		t.Fatalf("ParseCommand(%q): %v", line, err)
	}
	return cmd
}

func TestParseSimpleCommands(t *testing.T) {
	for _, tc := range []struct {
		line string
		name string
		args any
	}{
		{"a1 CAPABILITY", "CAPABILITY", nil},
		{"a2 noop", "NOOP", nil},
		{`a3 LOGIN demo@example.com "pa ss\"w\\rd"`, "LOGIN", &LoginArgs{Username: "demo@example.com", Password: `pa ss"w\rd`}},
		{"a4 LOGIN {4}\r\nuser {3}\r\npwd", "LOGIN", &LoginArgs{Username: "user", Password: "pwd"}},
		{"a5 LOGIN {4+}\r\nuser pwd", "LOGIN", &LoginArgs{Username: "user", Password: "pwd"}},
		{"a6 AUTHENTICATE PLAIN AGRlbW8AZGVtbw==", "AUTHENTICATE", &AuthenticateArgs{Mechanism: "PLAIN", InitialResponse: []byte("AGRlbW8AZGVtbw==")}},
		{"a7 authenticate plain", "AUTHENTICATE", &AuthenticateArgs{Mechanism: "PLAIN"}},
		{"a8 AUTHENTICATE PLAIN =", "AUTHENTICATE", &AuthenticateArgs{Mechanism: "PLAIN", InitialResponse: []byte("=")}},
		{"a9 SELECT inbox", "SELECT", &MailboxArgs{Mailbox: "INBOX"}},
		{`b1 CREATE "Ünïcode/Sub"`, "CREATE", &MailboxArgs{Mailbox: "Ünïcode/Sub"}},
		{`b2 RENAME a "b c"`, "RENAME", &RenameArgs{From: "a", To: "b c"}},
		{`b3 LIST "" *`, "LIST", &ListArgs{Patterns: []string{"*"}}},
		{`b4 LIST "" %`, "LIST", &ListArgs{Patterns: []string{"%"}}},
		{`b5 LIST (SUBSCRIBED) "" ("INBOX" Sent/%) RETURN (CHILDREN special-use)`, "LIST",
			&ListArgs{SelectOptions: []string{"SUBSCRIBED"}, Patterns: []string{"INBOX", "Sent/%"}, ReturnOptions: []string{"CHILDREN", "SPECIAL-USE"}}},
		{`b6 LSUB "" "*"`, "LSUB", &ListArgs{Patterns: []string{"*"}}},
		{`b7 STATUS INBOX (MESSAGES UIDNEXT uidvalidity UNSEEN SIZE)`, "STATUS",
			&StatusArgs{Mailbox: "INBOX", Items: []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE"}}},
		{`b8 ENABLE IMAP4rev2 UTF8=ACCEPT`, "ENABLE", &EnableArgs{Capabilities: []string{"IMAP4REV2", "UTF8=ACCEPT"}}},
		{"b9 UID COPY 1:3,7 Trash", "UID COPY", &CopyArgs{Set: imap.UIDSet{{Start: 1, Stop: 3}, {Start: 7, Stop: 7}}, Mailbox: "Trash"}},
		{"c1 MOVE 5:3 Archive", "MOVE", &CopyArgs{Set: imap.SeqSet{{Start: 3, Stop: 5}}, Mailbox: "Archive"}},
		{"c2 UID EXPUNGE 4:*", "UID EXPUNGE", &UIDExpungeArgs{Set: imap.UIDSet{{Start: 4, Stop: 0}}}},
		{"c3 STORE 1 +FLAGS.SILENT (\\seen \\Deleted $Junk)", "STORE", &StoreArgs{
			Set:   imap.SeqSet{{Start: 1, Stop: 1}},
			Flags: imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, imap.FlagDeleted, "$Junk"}}}},
		{"c4 UID STORE 2:4 -FLAGS \\Flagged", "UID STORE", &StoreArgs{
			Set:   imap.UIDSet{{Start: 2, Stop: 4}},
			Flags: imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagFlagged}}}},
		{"c5 STORE * FLAGS ()", "STORE", &StoreArgs{Set: imap.SeqSet{{Start: 0, Stop: 0}}, Flags: imap.StoreFlags{Op: imap.StoreFlagsSet}}},
		{"c6 FETCH $ FLAGS", "FETCH", &FetchArgs{Set: imap.SearchRes(), Items: []FetchItem{{Attr: FetchFlags}}}},
	} {
		cmd := mustParse(t, tc.line)
		if cmd.Name != tc.name || !reflect.DeepEqual(cmd.Args, tc.args) {
			t.Errorf("ParseCommand(%q) = %s %#v, want %s %#v", tc.line, cmd.Name, cmd.Args, tc.name, tc.args)
		}
	}
}

func TestParseFetch(t *testing.T) {
	cmd := mustParse(t, "A5 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)] BODY[1.2.MIME] BODY[2]<0.4096> BINARY.PEEK[1] BINARY.SIZE[1] BODYSTRUCTURE ENVELOPE RFC822.HEADER BODY[3.HEADER.FIELDS.NOT (X-A)] BODY[TEXT] BODY[])")
	args := cmd.Args.(*FetchArgs)
	if !reflect.DeepEqual(args.Set, imap.UIDSet{{Start: 1, Stop: 0}}) {
		t.Errorf("set = %v", args.Set)
	}
	want := []FetchItem{
		{Attr: FetchUID}, {Attr: FetchRFC822Size}, {Attr: FetchFlags},
		{Attr: FetchBodySection, Section: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true,
			HeaderFields: strings.Fields("From To Cc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To")}},
		{Attr: FetchBodySection, Section: &imap.FetchItemBodySection{Part: []int{1, 2}, Specifier: imap.PartSpecifierMIME}},
		{Attr: FetchBodySection, Section: &imap.FetchItemBodySection{Part: []int{2}, Partial: &imap.SectionPartial{Offset: 0, Size: 4096}}},
		{Attr: FetchBinarySection, Section: &imap.FetchItemBodySection{Part: []int{1}, Peek: true}},
		{Attr: FetchBinarySize, Section: &imap.FetchItemBodySection{Part: []int{1}}},
		{Attr: FetchBodyStructure}, {Attr: FetchEnvelope}, {Attr: FetchRFC822Header},
		{Attr: FetchBodySection, Section: &imap.FetchItemBodySection{Part: []int{3}, Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"X-A"}}},
		{Attr: FetchBodySection, Section: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}},
		{Attr: FetchBodySection, Section: &imap.FetchItemBodySection{}},
	}
	if !reflect.DeepEqual(args.Items, want) {
		for i := range args.Items {
			t.Logf("item %d: %+v %+v", i, args.Items[i], args.Items[i].Section)
		}
		t.Errorf("items differ")
	}

	for line, n := range map[string]int{"a FETCH 1 ALL": 4, "a FETCH 1 fast": 3, "a FETCH 1:2 FULL": 5, "a FETCH 2 body": 1} {
		if got := len(mustParse(t, line).Args.(*FetchArgs).Items); got != n {
			t.Errorf("%q: %d items, want %d", line, got, n)
		}
	}
}

func TestParseSearch(t *testing.T) {
	cmd := mustParse(t, `s1 UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 1:5 UNSEEN NOT DELETED OR FROM alice (SUBJECT "hi there" LARGER 100) ON 1-Feb-2024 UID 3:*`)
	args := cmd.Args.(*SearchArgs)
	day := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	want := &SearchArgs{
		ESearch: true, Return: []string{"MIN", "COUNT"}, Charset: "UTF-8",
		Criteria: imap.SearchCriteria{
			SeqNum:  []imap.SeqSet{{{Start: 1, Stop: 5}}},
			UID:     []imap.UIDSet{{{Start: 3, Stop: 0}}},
			NotFlag: []imap.Flag{imap.FlagSeen},
			Not:     []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagDeleted}}},
			Or: [][2]imap.SearchCriteria{{
				{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "alice"}}},
				{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "hi there"}}, Larger: 100},
			}},
			Since:  day,
			Before: day.AddDate(0, 0, 1),
		},
	}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("got %#v\nwant %#v", args, want)
	}
	if c := mustParse(t, "s2 SEARCH ALL").Args.(*SearchArgs); !reflect.DeepEqual(c.Criteria, imap.SearchCriteria{}) || c.ESearch {
		t.Errorf("SEARCH ALL = %#v", c)
	}
}

func TestParseAppendHead(t *testing.T) {
	cmd, err := ParseAppendHead([]byte(`a APPEND "Sent Items" (\Seen $Forwarded) " 7-Feb-1994 21:52:25 -0800" {310}`))
	if err != nil {
		t.Fatal(err)
	}
	args := cmd.Args.(*AppendArgs)
	wantDate := time.Date(1994, 2, 7, 21, 52, 25, 0, time.FixedZone("", -8*3600))
	if args.Mailbox != "Sent Items" || !reflect.DeepEqual(args.Flags, []imap.Flag{imap.FlagSeen, "$Forwarded"}) ||
		!args.Date.Equal(wantDate) || args.Literal != (Literal{Size: 310}) {
		t.Errorf("got %+v", args)
	}
	cmd, err = ParseAppendHead([]byte("a append {5}\r\ninbox ~{12+}"))
	if err != nil {
		t.Fatal(err)
	}
	if args := cmd.Args.(*AppendArgs); args.Mailbox != "INBOX" || args.Literal != (Literal{Size: 12, NonSync: true, Binary: true}) {
		t.Errorf("got %+v", args)
	}
	// The mailbox name itself is a literal: not yet at the message.
	if _, err := ParseAppendHead([]byte("a APPEND {5}")); err == nil {
		t.Error("mailbox literal taken for the message")
	}
}

func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"", "a", "a ", " NOOP", "+ NOOP", "a NOOP extra", "a FOO", "a LOGIN user", "a LOGIN {5}\r\nuser pass",
		"a FETCH 0 FLAGS", "a FETCH 1 (FLAGS", "a FETCH 1 BODY[1.HEADER.FIELDS ()]", "a FETCH 1 BODY[]<1.0>",
		"a SELECT \"unterminated", "a SELECT \"bad\rchar\"", "a STORE 1 FLAGS", "a FETCH 99999999999 FLAGS",
		"a SEARCH " + strings.Repeat("NOT ", 100) + "ALL", "a SEARCH " + strings.Repeat("(", 100) + "ALL" + strings.Repeat(")", 100),
		"a SEARCH BEFORE 31-Foo-2020", "a APPEND INBOX", "a LOGIN {99999999999999999999}\r\n",
		"a SELECT \"\xff\xfe\"", "a STATUS INBOX ()",
	} {
		cmd, err := ParseCommand([]byte(line))
		var perr *ParseError
		if !errors.As(err, &perr) {
			t.Errorf("ParseCommand(%q) = %+v, %v; want a ParseError", line, cmd, err)
		}
	}
	if cmd, _ := ParseCommand([]byte("x17 FETCH 1 (BOGUS)")); cmd == nil || cmd.Tag != "x17" || cmd.Name != "FETCH" {
		t.Errorf("error result %+v lacks tag and name", cmd)
	}
}

func TestFramer(t *testing.T) {
	long := strings.Repeat("x", 300)
	input := "a NOOP\r\nb LOGIN {4}\r\nuser pass\n" + long + " {5+}\r\nhello\r\nc NOOP\r\n"
	f := NewFramer(strings.NewReader(input), 100)
	line, err := f.ReadLine()
	if err != nil || string(line) != "a NOOP" {
		t.Fatalf("line 1 = %q, %v", line, err)
	}
	line, err = f.ReadLine()
	if err != nil || string(line) != "b LOGIN {4}" {
		t.Fatalf("line 2 = %q, %v", line, err)
	}
	lit, ok := LiteralAtEnd(line)
	if !ok || lit != (Literal{Size: 4}) {
		t.Fatalf("literal = %+v %v", lit, ok)
	}
	buf, err := f.ReadLiteral([]byte("x"), lit.Size)
	if err != nil || string(buf) != "xuser" {
		t.Fatalf("literal data = %q, %v", buf, err)
	}
	if line, err = f.ReadLine(); err != nil || string(line) != " pass" {
		t.Fatalf("line 3 = %q, %v", line, err)
	}
	tail, err := f.ReadLine()
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v", err)
	}
	lit, ok = LiteralAtEnd(tail)
	if !ok || lit != (Literal{Size: 5, NonSync: true}) {
		t.Fatalf("literal at the end of a long line = %+v %v (tail %q)", lit, ok, tail)
	}
	if err := f.Discard(lit.Size); err != nil {
		t.Fatal(err)
	}
	if line, err = f.ReadLine(); err != nil || len(line) != 0 {
		t.Fatalf("after literal = %q, %v", line, err)
	}
	if line, err = f.ReadLine(); err != nil || string(line) != "c NOOP" {
		t.Fatalf("last line = %q, %v", line, err)
	}
}

func TestLiteralAtEnd(t *testing.T) {
	for line, want := range map[string]Literal{
		"a LOGIN {12}": {Size: 12}, "x {0+}": {NonSync: true}, "a APPEND INBOX ~{7}": {Size: 7, Binary: true},
	} {
		if got, ok := LiteralAtEnd([]byte(line)); !ok || got != want {
			t.Errorf("LiteralAtEnd(%q) = %+v, %v", line, got, ok)
		}
	}
	for _, line := range []string{"", "}", "{}", "a {x}", "a {+}", "a {1234567890123456789}", "a 12}"} {
		if _, ok := LiteralAtEnd([]byte(line)); ok {
			t.Errorf("LiteralAtEnd(%q) found a literal", line)
		}
	}
}

func TestFramerBoundsMemory(t *testing.T) {
	// A 1 MiB line without a newline ends in an error with the line dropped, not buffered.
	f := NewFramer(bytes.NewReader(bytes.Repeat([]byte("a"), 1<<20)), 1024)
	if _, err := f.ReadLine(); err == nil {
		t.Fatal("expected an error")
	}
}

// rot13Layer is a layer for TestFramerLayer that reads below one byte at a time up to a "|"
// and changes the letters it passes, so that what it did not use stays below.
type rot13Layer struct{ below *bufio.Reader }

func (l rot13Layer) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := l.below.ReadByte()
		if err != nil {
			return n, err
		}
		if c == '|' {
			return n, io.EOF
		}
		if c >= 'a' && c <= 'z' {
			c = 'a' + (c-'a'+13)%26
		}
		p[n] = c
		n++
	}
	return n, nil
}

func TestFramerLayer(t *testing.T) {
	// What the framer read ahead before Push goes through the layer; after Pop the framer
	// reads from where the layer stopped.
	f := NewFramer(strings.NewReader("a pbzcerff\r\nb abbc\r\n|c noop\r\n"), 100)
	if f.Pop() != 0 {
		t.Fatal("Pop without a layer dropped bytes")
	}
	f.Push(func(below *bufio.Reader) io.Reader { return rot13Layer{below} })
	if line, err := f.ReadLine(); err != nil || string(line) != "n compress" {
		t.Fatalf("line 1 = %q, %v", line, err)
	}
	if line, err := f.ReadLine(); err != nil || string(line) != "o noop" {
		t.Fatalf("line 2 = %q, %v", line, err)
	}
	if dropped := f.Pop(); dropped != 0 {
		t.Fatalf("Pop dropped %d bytes", dropped)
	}
	if line, err := f.ReadLine(); err != nil || string(line) != "c noop" {
		t.Fatalf("line after Pop = %q, %v", line, err)
	}

	// Output of the layer that was read and not returned is dropped by Pop.
	f = NewFramer(strings.NewReader("n abbc\r\nn abbc\r\n|plain\r\n"), 100)
	f.Push(func(below *bufio.Reader) io.Reader { return rot13Layer{below} })
	if line, err := f.ReadLine(); err != nil || string(line) != "a noop" {
		t.Fatalf("layered line = %q, %v", line, err)
	}
	if dropped := f.Pop(); dropped != len("a noop\r\n") {
		t.Fatalf("Pop dropped %d bytes, want %d", dropped, len("a noop\r\n"))
	}
	if line, err := f.ReadLine(); err != nil || string(line) != "plain" {
		t.Fatalf("line after Pop = %q, %v", line, err)
	}
}
