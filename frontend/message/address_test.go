package message

import (
	"strings"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	cases := []struct{ in, want string }{
		{`"Doe, John" <john@example.com>`, `(("Doe, John" NIL "john" "example.com"))`},
		{`=?UTF-8?Q?Andr=C3=A9?= Pirard <PIRARD@vm1.ulg.ac.be>`, `(("=?UTF-8?Q?Andr=C3=A9?= Pirard" NIL "PIRARD" "vm1.ulg.ac.be"))`},
		{`"john doe"@example.com`, `((NIL NIL "john doe" "example.com"))`},
		{`a@b, , c@d`, `((NIL NIL "a" "b")(NIL NIL "c" "d"))`},
		{`MAILER-DAEMON`, `((NIL NIL "MAILER-DAEMON" "MISSING_DOMAIN"))`},
		{`Mail Delivery System`, `(("Mail Delivery System" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))`},
		{`<>`, `((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))`},
		{`undisclosed-recipients:;`, `((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))`},
		{`team: a@b, c@d`, `((NIL NIL "team" NIL)(NIL NIL "a" "b")(NIL NIL "c" "d")(NIL NIL NIL NIL))`},
		{`x@[192.0.2.1]`, `((NIL NIL "x" "[192.0.2.1]"))`},
		{`"unterminated <a@b>`, `((NIL NIL "unterminated <a@b>" "MISSING_DOMAIN"))`},
		{`Name <a@b`, `(("Name" NIL "a" "b"))`},
		{``, `NIL`},
		// Comments are CFWS, never an address (RFC 5322 3.2.2, 3.4).
		{`group:;, group2: (foo) ;`, `((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL))`},
		{`(foo)`, `NIL`},
		{` (foo) (bar) `, `NIL`},
		{`a@b (one), (two), (three) c@d`, `(("one" NIL "a" "b")(NIL NIL "c" "d"))`},
		{`(lead) a@b`, `((NIL NIL "a" "b"))`},
		{`team: (x) a@b (A), (y) ;(after), c@d`, `((NIL NIL "team" NIL)("A" NIL "a" "b")(NIL NIL NIL NIL)(NIL NIL "c" "d"))`},
		{`<user-from (comment)@ (comment) domain.org>`, `((NIL NIL "user-from" "domain.org"))`},
		{`<a@b> (trailing)`, `((NIL NIL "a" "b"))`},
		{`(c) Name (d) <a@b>`, `(("Name" NIL "a" "b"))`},
		{`user (c1)@host (c2)`, `(("c2" NIL "user" "host"))`},
		{`MAILER-DAEMON (Mail Delivery)`, `(("Mail Delivery" NIL "MAILER-DAEMON" "MISSING_DOMAIN"))`},
		{`group: (unterminated`, `((NIL NIL "group" NIL)(NIL NIL NIL NIL))`},
	}
	for _, tc := range cases {
		got := string(Encoder{}.appendAddressList(nil, parseAddressList(tc.in)))
		if got != tc.want {
			t.Errorf("parseAddressList(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestAddressListText(t *testing.T) {
	cases := []struct{ in, want string }{
		{`user-from@domain.org`, `user-from@domain.org`},
		{`<user-from (comment)@ (comment) domain.org>`, `user-from@domain.org`},
		{`user-from@domain.org (RealFrom)`, `RealFrom <user-from@domain.org>`},
		{`"Doe, John" <john@example.com>`, `Doe, John <john@example.com>`},
		{`=?UTF-8?Q?Andr=C3=A9?= <andre@example.org>`, `=?UTF-8?Q?Andr=C3=A9?= <andre@example.org>`},
		{`<@route.test,@two.test:boss@nil.test>`, `<@route.test,@two.test:boss@nil.test>`},
		{`a@b, c@d`, `a@b, c@d`},
		{"groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  groupname2: groupuser3@domain.org;", `groupname: groupuser1@domain.org, groupuser2@domain.org;, groupname2: groupuser3@domain.org;`},
		{`group:;, group2: (foo) ;`, `group:;, group2:;`},
		{`MAILER-DAEMON`, `MAILER-DAEMON`},
		{`Mail Delivery System`, `Mail Delivery System`},
		{`<>`, ``},
		{`Name <>`, `Name`},
		{`(foo)`, ``},
		{``, ``},
	}
	for _, tc := range cases {
		if got := AddressListText(tc.in); got != tc.want {
			t.Errorf("AddressListText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEnvelopeFieldsRaw(t *testing.T) {
	fields := Fields([]byte(crlf("Subject: =?ISO-8859-1?Q?caf=E9?=\n  folded\nIn-Reply-To: <a@b>\n <c@d>\nMessage-ID: <id@x>\nMessage-ID: <second@x>\nSender:\n\n")))
	env := buildEnvelope(fields)
	if env.Subject != "=?ISO-8859-1?Q?caf=E9?=  folded" {
		t.Errorf("Subject = %q", env.Subject)
	}
	if env.InReplyTo != "<a@b> <c@d>" {
		t.Errorf("InReplyTo = %q", env.InReplyTo)
	}
	if env.MessageId != "<id@x>" {
		t.Errorf("MessageId = %q, want the first field", env.MessageId)
	}
	if got := string(AppendEnvelope(nil, env)); !strings.Contains(got, `"=?ISO-8859-1?Q?caf=E9?=  folded" NIL NIL NIL`) {
		t.Errorf("empty From must leave Sender and Reply-To NIL: %s", got)
	}
}
