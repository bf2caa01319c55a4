package imapwire

import (
	"testing"
)

func TestParseACL(t *testing.T) {
	checkParses(t, []parseCase{
		// RFC 4314 3.1 - 3.8, with the examples' shapes.
		{`a SETACL INBOX bob@example.com +lrs`, &ACLArgs{Mailbox: "INBOX", Identifier: "bob@example.com", Rights: "+lrs"}},
		{`a setacl "Other Users/alice@example.com/Projects" "-anyone" ""`, &ACLArgs{Mailbox: "Other Users/alice@example.com/Projects", Identifier: "-anyone", Rights: ""}},
		{"a SETACL {5}\r\ninbox anyone {2}\r\n-w", &ACLArgs{Mailbox: "INBOX", Identifier: "anyone", Rights: "-w"}},
		{`a DELETEACL Shared/Support anyone`, &ACLArgs{Mailbox: "Shared/Support", Identifier: "anyone"}},
		{`a GETACL INBOX`, &ACLArgs{Mailbox: "INBOX"}},
		{`a LISTRIGHTS ~/Mail/saved smith`, &ACLArgs{Mailbox: "~/Mail/saved", Identifier: "smith"}},
		{`a MYRIGHTS "Shared/Sales"`, &ACLArgs{Mailbox: "Shared/Sales"}},
		// mod-rights is an astring (RFC 4314 7); its letters are checked by the handler.
		{`a SETACL INBOX anyone lrx`, &ACLArgs{Mailbox: "INBOX", Identifier: "anyone", Rights: "lrx"}},
		{`a SETACL INBOX anyone "+"`, &ACLArgs{Mailbox: "INBOX", Identifier: "anyone", Rights: "+"}},
		{`a SETACL INBOX "" ""`, &ACLArgs{Mailbox: "INBOX", Identifier: "", Rights: ""}},
		{`a SETACL INBOX anyone NIL`, &ACLArgs{Mailbox: "INBOX", Identifier: "anyone", Rights: "NIL"}}, // an atom, not nil
	})
	checkRefused(t, []string{
		`a SETACL INBOX bob@example.com`,
		`a SETACL INBOX`,
		`a DELETEACL INBOX`,
		`a GETACL INBOX anyone`,
		`a LISTRIGHTS INBOX`,
		`a MYRIGHTS`,
		`a MYRIGHTS INBOX x`,
		`a SETACL INBOX anyone (lr)`,
		`a SETACL INBOX anyone lr extra`,
		`a SETACL INBOX anyone  lr`,
		`a GETACL`,
		`a GETACL (INBOX)`,
		`a DELETEACL INBOX anyone extra`,
		`a LISTRIGHTS INBOX anyone x`,
		"a SETACL INBOX anyone {3}\r\nlr",
	})
}
