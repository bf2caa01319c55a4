package imapresp

import (
	"bytes"
	"strconv"

	"github.com/strata-mail/strata/frontend/message"
)

// List is a LIST or LSUB response (RFC 9051 7.3.1, RFC 3501 7.2.3).
type List struct {
	LSUB      bool     // LSUB instead of LIST (RFC 3501 6.3.9)
	Attrs     []string // mailbox attributes, backslash included
	Delimiter byte     // the hierarchy delimiter
	Mailbox   string   // in the session's form
	// ChildInfoSubscribed adds the CHILDINFO extended data item for a parent of subscribed
	// mailboxes (RFC 5258 3.5).
	ChildInfoSubscribed bool
	// OldName, when not "", adds the OLDNAME extended data item of a renamed mailbox (RFC
	// 9051 7.3.1, RFC 5465 5.4), in the session's form.
	OldName string
}

// AppendList appends `* LIST (attrs) "/" mailbox` and its extended data items.
func AppendList(b []byte, enc message.Encoder, l List) []byte {
	if l.LSUB {
		b = append(b, "* LSUB ("...)
	} else {
		b = append(b, "* LIST ("...)
	}
	for i, a := range l.Attrs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, a...)
	}
	b = append(b, ") \""...)
	b = append(b, l.Delimiter, '"', ' ')
	b = enc.AppendAString(b, l.Mailbox)
	if l.ChildInfoSubscribed {
		b = append(b, ` ("CHILDINFO" ("SUBSCRIBED"))`...)
	}
	if l.OldName != "" {
		b = enc.AppendAString(append(b, ` ("OLDNAME" (`...), l.OldName)
		b = append(b, "))"...)
	}
	return append(b, '\r', '\n')
}

// StatusItem is one status-att and its value in a STATUS response (RFC 9051 7.3.2).
type StatusItem struct {
	Name  string // MESSAGES, UIDNEXT, ..., as the client asked for it
	Value uint64
	// ObjectID, for MAILBOXID, is the value instead: "(" objectid ")" (RFC 8474 4.3).
	ObjectID string
}

// AppendMailboxStatus appends "* STATUS mailbox (name value ...)" (RFC 9051 7.3.2).
func AppendMailboxStatus(b []byte, enc message.Encoder, mailbox string, items []StatusItem) []byte {
	b = enc.AppendAString(append(b, "* STATUS "...), mailbox)
	b = appendParenList(append(b, ' '), len(items), func(b []byte, i int) []byte {
		b = append(append(b, items[i].Name...), ' ')
		if items[i].ObjectID != "" {
			return AppendObjectID(b, items[i].ObjectID)
		}
		return strconv.AppendUint(b, items[i].Value, 10)
	})
	return append(b, '\r', '\n')
}

// ACLEntry is an identifier and its rights in an ACL response (RFC 4314 3.6).
type ACLEntry struct {
	Identifier string
	Rights     string
}

// AppendACL appends "* ACL mailbox identifier rights ..." (RFC 4314 3.6).
func AppendACL(b []byte, enc message.Encoder, mailbox string, entries []ACLEntry) []byte {
	b = enc.AppendAString(append(b, "* ACL "...), mailbox)
	for _, e := range entries {
		b = enc.AppendAString(append(b, ' '), e.Identifier)
		b = enc.AppendAString(append(b, ' '), e.Rights)
	}
	return append(b, '\r', '\n')
}

// AppendListRights appends "* LISTRIGHTS mailbox identifier required optional ..." (RFC 4314
// 3.7): the rights always granted to identifier, then each group of rights that may be
// granted on its own.
func AppendListRights(b []byte, enc message.Encoder, mailbox, identifier, required string, optional []string) []byte {
	b = enc.AppendAString(append(b, "* LISTRIGHTS "...), mailbox)
	b = enc.AppendAString(append(b, ' '), identifier)
	b = enc.AppendAString(append(b, ' '), required)
	for _, r := range optional {
		b = enc.AppendAString(append(b, ' '), r)
	}
	return append(b, '\r', '\n')
}

// AppendMyRights appends "* MYRIGHTS mailbox rights" (RFC 4314 3.8).
func AppendMyRights(b []byte, enc message.Encoder, mailbox, rights string) []byte {
	b = enc.AppendAString(append(b, "* MYRIGHTS "...), mailbox)
	b = enc.AppendAString(append(b, ' '), rights)
	return append(b, '\r', '\n')
}

// Namespace is one namespace of a NAMESPACE response: its prefix and hierarchy delimiter
// (RFC 2342 5, RFC 9051 7.3.6).
type Namespace struct {
	Prefix    string
	Delimiter byte
}

// AppendNamespace appends "* NAMESPACE personal other shared" (RFC 2342 5, RFC 9051 7.3.6),
// each a list of namespaces, or NIL when there are none of the kind.
func AppendNamespace(b []byte, enc message.Encoder, personal, otherUsers, shared []Namespace) []byte {
	b = append(b, "* NAMESPACE"...)
	for _, list := range [][]Namespace{personal, otherUsers, shared} {
		if len(list) == 0 {
			b = append(b, " NIL"...)
			continue
		}
		b = append(b, " ("...)
		for _, ns := range list {
			b = enc.AppendString(append(b, '('), ns.Prefix)
			b = append(b, ' ', '"', ns.Delimiter, '"', ')')
		}
		b = append(b, ')')
	}
	return append(b, '\r', '\n')
}

// QuotaResource is one resource of a QUOTA response with its usage and limit, in the
// resource's units (RFC 9208 5).
type QuotaResource struct {
	Name         string // STORAGE, MESSAGE, ...
	Usage, Limit uint64
}

// AppendQuota appends "* QUOTA root (resource usage limit ...)" (RFC 9208 4.2.1).
func AppendQuota(b []byte, enc message.Encoder, root string, resources []QuotaResource) []byte {
	b = enc.AppendAString(append(b, "* QUOTA "...), root)
	b = appendParenList(append(b, ' '), len(resources), func(b []byte, i int) []byte {
		b = strconv.AppendUint(append(append(b, resources[i].Name...), ' '), resources[i].Usage, 10)
		return strconv.AppendUint(append(b, ' '), resources[i].Limit, 10)
	})
	return append(b, '\r', '\n')
}

// AppendQuotaRoot appends "* QUOTAROOT mailbox root ..." (RFC 9208 4.2.2).
func AppendQuotaRoot(b []byte, enc message.Encoder, mailbox string, roots []string) []byte {
	b = enc.AppendAString(append(b, "* QUOTAROOT "...), mailbox)
	for _, r := range roots {
		b = enc.AppendAString(append(b, ' '), r)
	}
	return append(b, '\r', '\n')
}

// MetadataEntry is an entry and its value in a METADATA response (RFC 5464 4.4.1).
type MetadataEntry struct {
	Name  string
	Value []byte // nil for NIL
}

// AppendMetadata appends "* METADATA mailbox (entry value ...)" (RFC 5464 4.4.1); mailbox is
// "" for the server's entries. A value goes out as a string (RFC 9051 4.3), or as a
// literal8 when it holds NUL, which no string can carry (RFC 5464 5, RFC 3516 4.3).
func AppendMetadata(b []byte, enc message.Encoder, mailbox string, entries []MetadataEntry) []byte {
	b = enc.AppendAString(append(b, "* METADATA "...), mailbox)
	b = appendParenList(append(b, ' '), len(entries), func(b []byte, i int) []byte {
		e := entries[i]
		b = append(enc.AppendAString(b, e.Name), ' ')
		switch {
		case e.Value == nil:
			return append(b, "NIL"...)
		case bytes.IndexByte(e.Value, 0) >= 0:
			b = strconv.AppendInt(append(b, "~{"...), int64(len(e.Value)), 10)
			return append(append(b, "}\r\n"...), e.Value...)
		default:
			return enc.AppendString(b, string(e.Value))
		}
	})
	return append(b, '\r', '\n')
}

// appendParenList appends "(" item *(SP item) ")", the parenthesized list of STATUS, QUOTA,
// METADATA and ID (RFC 9051 9 status-att-list, RFC 9208 4.2.1, RFC 5464 4.4.1, RFC 2971 4);
// appendItem renders item i of n.
func appendParenList(b []byte, n int, appendItem func(b []byte, i int) []byte) []byte {
	b = append(b, '(')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendItem(b, i)
	}
	return append(b, ')')
}
