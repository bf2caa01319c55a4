package imapwire

import (
	"strings"
	"testing"
)

func maxSize(n uint32) *uint32 { return &n }

func TestParseGetMetadata(t *testing.T) {
	checkParses(t, []parseCase{
		// RFC 5464 4.2 and 4.4.1, with the examples' shapes.
		{`a GETMETADATA "" /shared/comment`, &GetMetadataArgs{Entries: []string{"/shared/comment"}}},
		{`a getmetadata "INBOX" /private/comment`, &GetMetadataArgs{Mailbox: "INBOX", Entries: []string{"/private/comment"}}},
		{`a GETMETADATA inbox (/shared/comment /Private/Comment)`, &GetMetadataArgs{Mailbox: "INBOX", Entries: []string{"/shared/comment", "/private/comment"}}},
		{`a GETMETADATA "INBOX" /private/comment /shared/comment`, &GetMetadataArgs{Mailbox: "INBOX", Entries: []string{"/private/comment", "/shared/comment"}}},
		// The options before the mailbox (the ABNF of RFC 5464 5) and after it (the
		// examples of 4.2.1 and 4.2.2).
		{`a GETMETADATA (MAXSIZE 1024 DEPTH infinity) "" "/shared"`, &GetMetadataArgs{MaxSize: maxSize(1024), Depth: DepthInfinity, Entries: []string{"/shared"}}},
		{`a GETMETADATA "INBOX" (MAXSIZE 1024) (/shared/comment /private/comment)`, &GetMetadataArgs{Mailbox: "INBOX", MaxSize: maxSize(1024), Entries: []string{"/shared/comment", "/private/comment"}}},
		{`a GETMETADATA "INBOX" (DEPTH 1) (/private/filters/values)`, &GetMetadataArgs{Mailbox: "INBOX", Depth: DepthOne, Entries: []string{"/private/filters/values"}}},
		{`a GETMETADATA (depth 0 maxsize 0) Work {16}` + "\r\n/private/comment", &GetMetadataArgs{Mailbox: "Work", MaxSize: maxSize(0), Entries: []string{"/private/comment"}}},
		// DEPTH roots that hold no value of their own.
		{`a GETMETADATA (DEPTH 1) "" (/private /shared/vendor/acme)`, &GetMetadataArgs{Depth: DepthOne, Entries: []string{"/private", "/shared/vendor/acme"}}},
	})
	checkRefused(t, []string{
		`a GETMETADATA`,
		`a GETMETADATA INBOX`,
		`a GETMETADATA INBOX ()`,
		`a GETMETADATA () INBOX /private/comment`,
		`a GETMETADATA (MAXSIZE) INBOX /private/comment`,
		`a GETMETADATA (MAXSIZE -1) INBOX /private/comment`,
		`a GETMETADATA (DEPTH 2) INBOX /private/comment`,
		`a GETMETADATA (DEPTH 1 DEPTH 0) INBOX /private/comment`,
		`a GETMETADATA (COLOUR red) INBOX /private/comment`,
		`a GETMETADATA (DEPTH 1) INBOX (DEPTH 0) /private/comment`,
		`a GETMETADATA INBOX /private/comment)`,
		// RFC 5464 3.2: BAD for invalid entry names.
		`a GETMETADATA INBOX /comment`,
		`a GETMETADATA INBOX /private//comment`,
		`a GETMETADATA INBOX /private/comment/`,
		`a GETMETADATA INBOX "/private/*"`,
		`a GETMETADATA INBOX "/private/50%"`,
		`a GETMETADATA INBOX "/private/caf` + "\xc3\xa9" + `"`,
		"a GETMETADATA INBOX {11}\r\n/private/\x01x",
		`a GETMETADATA INBOX ""`,
		`a GETMETADATA INBOX /` + strings.Repeat("p", 1025),
	})
}

func TestParseSetMetadata(t *testing.T) {
	checkParses(t, []parseCase{
		// RFC 5464 4.3, with the examples' shapes.
		{"a SETMETADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)",
			&SetMetadataArgs{Mailbox: "INBOX", Entries: []MetadataEntry{{Name: "/private/comment", Value: []byte("My new comment across\r\ntwo lines.")}}}},
		{`a SETMETADATA INBOX (/private/comment NIL)`, &SetMetadataArgs{Mailbox: "INBOX", Entries: []MetadataEntry{{Name: "/private/comment", Nil: true}}}},
		{`a SetMetadata inbox (/Private/Comment "My new comment" /shared/comment "This one is for you!")`,
			&SetMetadataArgs{Mailbox: "INBOX", Entries: []MetadataEntry{{Name: "/private/comment", Value: []byte("My new comment")}, {Name: "/shared/comment", Value: []byte("This one is for you!")}}}},
		{`a SETMETADATA "" (/shared/comment "" /private/vendor/acme/x nil)`,
			&SetMetadataArgs{Entries: []MetadataEntry{{Name: "/shared/comment", Value: []byte{}}, {Name: "/private/vendor/acme/x", Nil: true}}}},
		// value = nstring / literal8: binary data in a literal8 (RFC 3516).
		{"a SETMETADATA Work (/private/blob ~{3}\r\na\x00b /shared/q \"\\\"quoted\\\"\")",
			&SetMetadataArgs{Mailbox: "Work", Entries: []MetadataEntry{{Name: "/private/blob", Value: []byte("a\x00b")}, {Name: "/shared/q", Value: []byte(`"quoted"`)}}}},
	})
	checkRefused(t, []string{
		`a SETMETADATA INBOX`,
		`a SETMETADATA INBOX ()`,
		`a SETMETADATA INBOX /private/comment "x"`,
		`a SETMETADATA INBOX (/private/comment)`,
		`a SETMETADATA INBOX (/private/comment value)`,
		`a SETMETADATA INBOX (/private/comment "x" /shared/comment)`,
		"a SETMETADATA INBOX (/private/comment {3}\r\na\x00b)",
		// RFC 5464 3.2: an entry that holds a value has two components, four under vendor.
		`a SETMETADATA INBOX (/private "x")`,
		`a SETMETADATA INBOX (/shared/vendor "x")`,
		`a SETMETADATA INBOX (/shared/vendor/acme "x")`,
		`a SETMETADATA INBOX (/private/a* "x")`,
		`a SETMETADATA INBOX (/private/x/ "x")`,
	})
}
