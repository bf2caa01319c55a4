package imapresp

import (
	"testing"

	"github.com/strata-mail/strata/frontend/message"
)

func TestAppendList(t *testing.T) {
	var rev1 message.Encoder
	checkEncoded(t, []encodeCase{
		{"root", AppendList(nil, rev1, List{Attrs: []string{`\Noselect`}, Delimiter: '/'}), "* LIST (\\Noselect) \"/\" \"\"\r\n"},
		{"LSUB", AppendList(nil, rev1, List{LSUB: true, Attrs: []string{`\Noselect`}, Delimiter: '/'}), "* LSUB (\\Noselect) \"/\" \"\"\r\n"},
		{"attributes", AppendList(nil, rev1, List{Attrs: []string{`\Subscribed`, `\Sent`, `\HasNoChildren`}, Delimiter: '/', Mailbox: "Sent"}),
			"* LIST (\\Subscribed \\Sent \\HasNoChildren) \"/\" Sent\r\n"},
		{"no attributes", AppendList(nil, rev1, List{Delimiter: '/', Mailbox: "INBOX"}), "* LIST () \"/\" INBOX\r\n"},
		{"quoted name", AppendList(nil, rev1, List{Attrs: []string{`\HasChildren`}, Delimiter: '/', Mailbox: "Other Users"}),
			"* LIST (\\HasChildren) \"/\" \"Other Users\"\r\n"},
		{"CHILDINFO", AppendList(nil, rev1, List{Attrs: []string{`\NonExistent`}, Delimiter: '/', Mailbox: "Foo", ChildInfoSubscribed: true}),
			"* LIST (\\NonExistent) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"},
		{"OLDNAME", AppendList(nil, rev1, List{Attrs: []string{`\HasNoChildren`}, Delimiter: '/', Mailbox: "New", OldName: "Old Name"}),
			"* LIST (\\HasNoChildren) \"/\" New (\"OLDNAME\" (\"Old Name\"))\r\n"},
	})
}

func TestAppendMailboxStatus(t *testing.T) {
	checkEncoded(t, []encodeCase{
		{"STATUS", AppendMailboxStatus(nil, message.Encoder{}, "blurdybloop", []StatusItem{{Name: "MESSAGES", Value: 231}, {Name: "UIDNEXT", Value: 44292}}),
			"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"},
		{"MAILBOXID", AppendMailboxStatus(nil, message.Encoder{}, "INBOX", []StatusItem{{Name: "MAILBOXID", ObjectID: "F2212ea87"}, {Name: "SIZE", Value: 0}}),
			"* STATUS INBOX (MAILBOXID (F2212ea87) SIZE 0)\r\n"},
		{"no items", AppendMailboxStatus(nil, message.Encoder{}, "a b", nil), "* STATUS \"a b\" ()\r\n"},
	})
}

func TestAppendACLResponses(t *testing.T) {
	var enc message.Encoder
	checkEncoded(t, []encodeCase{
		{"ACL", AppendACL(nil, enc, "INBOX", []ACLEntry{{"alice@example.com", "lrswipkxtecda"}, {"anyone", "lr"}}),
			"* ACL INBOX alice@example.com lrswipkxtecda anyone lr\r\n"},
		{"ACL empty", AppendACL(nil, enc, "Shared/Support", nil), "* ACL Shared/Support\r\n"},
		{"ACL empty rights", AppendACL(nil, enc, "INBOX", []ACLEntry{{"bob", ""}}), "* ACL INBOX bob \"\"\r\n"},
		{"LISTRIGHTS", AppendListRights(nil, enc, "INBOX", "bob", "", []string{"l", "r", "s"}), "* LISTRIGHTS INBOX bob \"\" l r s\r\n"},
		{"LISTRIGHTS owner", AppendListRights(nil, enc, "INBOX", "alice", "lrswipkxtecda", nil), "* LISTRIGHTS INBOX alice lrswipkxtecda\r\n"},
		{"MYRIGHTS", AppendMyRights(nil, enc, "Other Users/alice/Projects", "lr"), "* MYRIGHTS \"Other Users/alice/Projects\" lr\r\n"},
	})
}

func TestAppendNamespace(t *testing.T) {
	checkEncoded(t, []encodeCase{
		{"three namespaces", AppendNamespace(nil, message.Encoder{}, []Namespace{{"", '/'}}, []Namespace{{"Other Users/", '/'}}, []Namespace{{"Shared/", '/'}}),
			"* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))\r\n"},
		{"NIL", AppendNamespace(nil, message.Encoder{}, []Namespace{{"", '.'}, {"#mh/", '/'}}, nil, nil),
			"* NAMESPACE ((\"\" \".\")(\"#mh/\" \"/\")) NIL NIL\r\n"},
	})
}

func TestAppendQuotaResponses(t *testing.T) {
	var enc message.Encoder
	checkEncoded(t, []encodeCase{
		{"QUOTA", AppendQuota(nil, enc, "", []QuotaResource{{"STORAGE", 10, 512}, {"MESSAGE", 3, 1000}}), "* QUOTA \"\" (STORAGE 10 512 MESSAGE 3 1000)\r\n"},
		{"QUOTA one", AppendQuota(nil, enc, "Tenant", []QuotaResource{{"MESSAGE", 0, 5}}), "* QUOTA Tenant (MESSAGE 0 5)\r\n"},
		{"QUOTA none", AppendQuota(nil, enc, "x", nil), "* QUOTA x ()\r\n"},
		{"QUOTAROOT", AppendQuotaRoot(nil, enc, "INBOX", []string{"", "Tenant"}), "* QUOTAROOT INBOX \"\" Tenant\r\n"},
		{"QUOTAROOT none", AppendQuotaRoot(nil, enc, "comp.mail.mime", nil), "* QUOTAROOT comp.mail.mime\r\n"},
	})
}

func TestAppendMetadata(t *testing.T) {
	var enc message.Encoder
	checkEncoded(t, []encodeCase{
		{"server", AppendMetadata(nil, enc, "", []MetadataEntry{{"/shared/comment", []byte("Shared comment")}}),
			"* METADATA \"\" (/shared/comment \"Shared comment\")\r\n"},
		{"NIL and two lines", AppendMetadata(nil, enc, "INBOX", []MetadataEntry{{"/private/comment", nil}, {"/shared/comment", []byte("a\r\nb")}}),
			"* METADATA INBOX (/private/comment NIL /shared/comment {4}\r\na\r\nb)\r\n"},
		{"empty value", AppendMetadata(nil, enc, "INBOX", []MetadataEntry{{"/private/x", []byte{}}}), "* METADATA INBOX (/private/x \"\")\r\n"},
		{"literal8", AppendMetadata(nil, enc, "Archive", []MetadataEntry{{"/private/vendor/acme/blob", []byte("a\x00\r\n")}}),
			"* METADATA Archive (/private/vendor/acme/blob ~{4}\r\na\x00\r\n)\r\n"},
	})
}
