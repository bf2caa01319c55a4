package imapwire

import (
	"strings"
	"testing"
)

// TestParseQuota: the arguments of GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 4.1.1 to
// 4.1.3, grammar in 9), with the shapes of the RFC's examples.
func TestParseQuota(t *testing.T) {
	checkParses(t, []parseCase{
		{`a GETQUOTA ""`, &QuotaRootArgs{Root: ""}},
		{`a getquota Tenant`, &QuotaRootArgs{Root: "Tenant"}},
		{"a GETQUOTA {6}\r\nTenant", &QuotaRootArgs{Root: "Tenant"}},
		{`a GETQUOTAROOT INBOX`, &MailboxArgs{Mailbox: "INBOX"}},
		{`a GETQUOTAROOT inbox`, &MailboxArgs{Mailbox: "INBOX"}}, // RFC 9051 5.1: INBOX in any case
		{`a GETQUOTAROOT "Other Users/alice@example.com/Sent"`, &MailboxArgs{Mailbox: "Other Users/alice@example.com/Sent"}},
		{`a SETQUOTA "" (STORAGE 512)`, &SetQuotaArgs{Root: "", Limits: []QuotaLimit{{Resource: "STORAGE", Limit: 512}}}},
		// Resource names are case-insensitive atoms (RFC 9208 9), kept upper-case.
		{`a SETQUOTA Tenant (storage 512 Message 1000)`, &SetQuotaArgs{Root: "Tenant", Limits: []QuotaLimit{{Resource: "STORAGE", Limit: 512}, {Resource: "MESSAGE", Limit: 1000}}}},
		// An empty list removes every limit (RFC 9208 4.1.3).
		{`a SETQUOTA "" ()`, &SetQuotaArgs{Root: ""}},
		// resource-limit is a 63-bit number (RFC 9208 9, number64 of RFC 9051).
		{`a SETQUOTA "" (STORAGE 9223372036854775807)`, &SetQuotaArgs{Root: "", Limits: []QuotaLimit{{Resource: "STORAGE", Limit: 1<<63 - 1}}}},
		{`a SETQUOTA "" (X-UNKNOWN 0)`, &SetQuotaArgs{Root: "", Limits: []QuotaLimit{{Resource: "X-UNKNOWN", Limit: 0}}}},
		{`a SETQUOTA "" (` + strings.TrimSpace(strings.Repeat("STORAGE 1 ", maxQuotaResources)) + `)`,
			&SetQuotaArgs{Root: "", Limits: repeatLimit(QuotaLimit{Resource: "STORAGE", Limit: 1}, maxQuotaResources)}},
	})
	checkRefused(t, []string{
		`a GETQUOTA`,
		`a GETQUOTA "" extra`,
		`a GETQUOTA ("")`,
		`a GETQUOTAROOT`,
		`a GETQUOTAROOT INBOX Sent`,
		`a SETQUOTA ""`,
		`a SETQUOTA "" STORAGE 512`,           // the list needs its parentheses
		`a SETQUOTA "" (STORAGE 512`,          // unclosed
		`a SETQUOTA "" (STORAGE)`,             // a resource without its limit
		`a SETQUOTA "" (STORAGE 512 MESSAGE)`, // the second without its limit
		`a SETQUOTA "" (512 STORAGE)`,         // limit and name swapped
		`a SETQUOTA "" (STORAGE -1)`,          // limits are unsigned
		`a SETQUOTA "" (STORAGE 1.5)`,
		`a SETQUOTA "" (STORAGE 9223372036854775808)`, // past 63 bits
		`a SETQUOTA "" ( STORAGE 512)`,
		`a SETQUOTA "" (STORAGE 512 )`,
		`a SETQUOTA "" (STORAGE  512)`,
		`a SETQUOTA "" (STORAGE 512)(MESSAGE 1)`,
		`a SETQUOTA "" ("STORAGE" 512)`, // resource-name is an atom
		`a SETQUOTA "" (STORAGE 512) extra`,
		`a SETQUOTA "" (` + strings.TrimSpace(strings.Repeat("STORAGE 1 ", maxQuotaResources+1)) + `)`,
	})
}

func repeatLimit(l QuotaLimit, n int) []QuotaLimit {
	out := make([]QuotaLimit, n)
	for i := range out {
		out[i] = l
	}
	return out
}
