package metadata

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Delimiter is the mailbox hierarchy delimiter (RFC 9051 5.1.1).
const Delimiter = "/"

const (
	maxMailboxName = 1024
	maxEmail       = 254
	maxTenantName  = 128
	maxFlagLen     = 255
	maxFlags       = 128
)

// NormalizeMailboxName validates a mailbox name and returns its canonical form.
//   - RFC 9051 5.1: INBOX is case-insensitive; it is stored as "INBOX", also as the
//     first component of its inferiors ("inbox/x" is "INBOX/x").
//   - RFC 9051 6.3.4: a trailing delimiter only declares the intent to create
//     inferiors; it is dropped.
//   - "/" delimits components and none may be empty; "*" and "%" are LIST wildcards
//     (RFC 9051 6.3.9) and control characters cannot be sent, so neither is allowed.
func NormalizeMailboxName(name string) (string, bool) {
	name = strings.TrimSuffix(name, Delimiter)
	if name == "" || len(name) > maxMailboxName || !utf8.ValidString(name) {
		return "", false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '*' || r == '%' || (r >= 0x80 && r < 0xa0) {
			return "", false
		}
	}
	parts := strings.Split(name, Delimiter)
	for _, p := range parts {
		if p == "" {
			return "", false
		}
	}
	if strings.EqualFold(parts[0], "INBOX") {
		parts[0] = "INBOX"
	}
	return strings.Join(parts, Delimiter), true
}

// parentNames returns the superior names of name, outermost first.
func parentNames(name string) []string {
	var parents []string
	for i := 0; i < len(name); i++ {
		if name[i] == Delimiter[0] {
			parents = append(parents, name[:i])
		}
	}
	return parents
}

// specialUses are the RFC 6154 2 attributes a mailbox may carry.
var specialUses = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

func normalizeSpecialUse(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	for _, su := range specialUses {
		if strings.EqualFold(s, su) {
			return su, true
		}
	}
	return "", false
}

// NormalizeEmail lower-cases an account address and checks its shape: local part,
// "@", domain, no spaces or control characters, and not the "tenant:" prefix of the
// pseudo-owner of a tenant's shared mailboxes (acl.go), so that no account shares a
// keyspace with one.
func NormalizeEmail(email string) (string, bool) {
	email = strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || len(email) > maxEmail || !utf8.ValidString(email) || strings.HasPrefix(email, tenantOwnerPrefix) {
		return "", false
	}
	if _, ok := normalizeDomain(email[at+1:]); !ok {
		return "", false
	}
	for _, r := range email[:at] {
		if r <= 0x20 || r == 0x7f {
			return "", false
		}
	}
	return email, true
}

func emailDomain(email string) string { return email[strings.LastIndexByte(email, '@')+1:] }

func normalizeDomain(d string) (string, bool) {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if d == "" || len(d) > 253 || !utf8.ValidString(d) {
		return "", false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return "", false
		}
	}
	for _, r := range d {
		if r <= 0x20 || r == 0x7f || strings.ContainsRune("@/\\\"()<>,;:[]", r) {
			return "", false
		}
	}
	return d, true
}

func validTenantName(name string) bool {
	if name == "" || len(name) > maxTenantName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// The system flags (RFC 9051 2.3.2) in their canonical spelling and stored order.
// \Recent is not storable: RFC 9051 removed it.
var systemFlags = []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`}

const (
	flagSeen    = `\Seen`
	flagDeleted = `\Deleted`
)

// normalizeFlags validates flags and returns them in canonical form and order: the
// system flags spelled as in RFC 9051 2.3.2, in a fixed order, then keywords as
// first given, deduplicated case-insensitively (keywords compare case-insensitively,
// RFC 9051 2.3.2), sorted case-insensitively.
func normalizeFlags(flags []string) ([]string, bool) {
	if len(flags) > maxFlags {
		return nil, false
	}
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			if !slices.ContainsFunc(systemFlags, func(s string) bool { return strings.EqualFold(s, f) }) {
				return nil, false
			}
		} else if !validKeyword(f) {
			return nil, false
		}
	}
	return canonicalFlags(flags), true
}

// canonicalFlags orders and deduplicates valid flags.
func canonicalFlags(flags []string) []string {
	var sys [5]bool
	var keywords []string
	for _, f := range flags {
		if i := slices.IndexFunc(systemFlags, func(s string) bool { return strings.EqualFold(s, f) }); i >= 0 {
			sys[i] = true
			continue
		}
		if !slices.ContainsFunc(keywords, func(k string) bool { return strings.EqualFold(k, f) }) {
			keywords = append(keywords, f)
		}
	}
	out := make([]string, 0, len(flags))
	for i, set := range sys {
		if set {
			out = append(out, systemFlags[i])
		}
	}
	slices.SortFunc(keywords, func(a, b string) int {
		return cmp.Compare(strings.ToLower(a), strings.ToLower(b))
	})
	return append(out, keywords...)
}

// validKeyword reports whether k is an RFC 9051 9 atom: ASCII printable without
// atom-specials ( ) { SP % * " \ ].
func validKeyword(k string) bool {
	if k == "" || len(k) > maxFlagLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func hasFlag(flags []string, flag string) bool {
	return slices.ContainsFunc(flags, func(f string) bool { return strings.EqualFold(f, flag) })
}

// applyFlagOp returns the flags after an RFC 9051 6.4.6 STORE; current and flags
// are normalised.
func applyFlagOp(current []string, op metadatapb.FlagOp, flags []string) []string {
	switch op {
	case metadatapb.FlagOp_FLAG_OP_ADD:
		return canonicalFlags(append(slices.Clone(current), flags...))
	case metadatapb.FlagOp_FLAG_OP_REMOVE:
		return slices.DeleteFunc(slices.Clone(current), func(f string) bool { return hasFlag(flags, f) })
	default:
		return slices.Clone(flags)
	}
}

// validMailboxName normalizes a mailbox name from a command, or refuses it as InvalidArgument.
func validMailboxName(raw string) (string, error) {
	name, valid := NormalizeMailboxName(raw)
	if !valid {
		return "", errInvalid("invalid mailbox name %q", raw)
	}
	return name, nil
}
