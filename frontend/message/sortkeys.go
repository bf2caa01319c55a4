package message

import (
	"strings"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Bounds of metadatapb.SortKeys: strings are cut at a character boundary, references keep
// the root and the nearest ones.
const (
	maxSortKeyBytes   = 256
	maxSortReferences = 64
)

// SortKeys returns what SORT (RFC 5256 3, RFC 5957) and THREAD (RFC 5256 4) order a message
// by, from its parsed structure, in the forms they compare (proto/metadata.proto SortKeys).
// It reads only the envelope and the top-level header (References), so it derives the keys
// of a message stored before they were kept as well as those of a new one.
func SortKeys(s *metadatapb.MessageStructure) *metadatapb.SortKeys {
	env := s.GetEnvelope()
	keys := &metadatapb.SortKeys{}
	// RFC 5256 2.2: the sent date is the Date field's, adjusted to UTC; one that is missing
	// or does not parse leaves it unset and SORT uses the internal date.
	if d := env.GetDate(); d != "" {
		if t, err := ParseDate(d); err == nil {
			u := t.Unix()
			keys.SentUnix = &u
		}
	}
	// RFC 5256 2.1 (1): encoded-words are decoded before the base subject is extracted.
	subject := env.GetSubject()
	if decoded, err := subjectDecoder.DecodeHeader(subject); err == nil {
		subject = strings.ToValidUTF8(decoded, "\uFFFD")
	}
	base, reply := baseSubject(subject)
	keys.Subject, keys.Reply = sortForm(base), reply
	keys.From = sortForm(firstMailbox(env.GetFrom()))
	keys.To = sortForm(firstMailbox(env.GetTo()))
	keys.Cc = sortForm(firstMailbox(env.GetCc()))
	keys.DisplayFrom = sortForm(displayName(env.GetFrom()))
	keys.DisplayTo = sortForm(displayName(env.GetTo()))
	if ids := messageIDs(env.GetMessageId()); len(ids) > 0 {
		keys.MessageId = ids[0]
	}
	keys.References = threadReferences(s)
	return keys
}

// sortForm is a sort key's stored form: casemapped (RFC 5051), cut to maxSortKeyBytes.
func sortForm(s string) string { return truncateUTF8(Casemap(s), maxSortKeyBytes) }

// firstAddress returns the first address of a list that is not a group marker.
func firstAddress(list []*metadatapb.Address) *metadatapb.Address {
	for _, a := range list {
		if a.GetHost() != "" {
			return a
		}
	}
	return nil
}

// firstMailbox is the addr-mailbox (local part) of the first address (RFC 5256 3: FROM,
// TO, CC), with encoded-words decoded; "" when there is none.
func firstMailbox(list []*metadatapb.Address) string {
	return decodeSortWords(firstAddress(list).GetMailbox())
}

// displayName is RFC 5957 3's sort value of an address list: the display-name of its first
// address, with encoded-words decoded, if there is one and it is not empty, else the
// addr-spec (mailbox@host); "" when the list has no address.
func displayName(list []*metadatapb.Address) string {
	a := firstAddress(list)
	if a == nil {
		return ""
	}
	if name := strings.TrimSpace(decodeSortWords(a.GetName())); name != "" {
		return name
	}
	return a.GetMailbox() + "@" + a.GetHost()
}

func decodeSortWords(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	if decoded, err := subjectDecoder.DecodeHeader(v); err == nil {
		return strings.ToValidUTF8(decoded, "\uFFFD")
	}
	return v
}

// threadReferences returns the ids a message refers to for THREAD=REFERENCES (RFC 5256 4,
// step 1.A): those of its References field, root first, or when it has none, the first id of
// In-Reply-To. Beyond maxSortReferences the root and the nearest ones are kept.
func threadReferences(s *metadatapb.MessageStructure) []string {
	var refs []string
	for _, f := range Fields(s.GetHeader()) {
		if strings.EqualFold(f.Name, "References") {
			refs = messageIDs(f.Value())
			break
		}
	}
	if len(refs) == 0 {
		if ids := messageIDs(s.GetEnvelope().GetInReplyTo()); len(ids) > 0 {
			refs = ids[:1]
		}
	}
	if len(refs) > maxSortReferences {
		refs = append(refs[:1], refs[len(refs)-maxSortReferences+1:]...)
	}
	return refs
}
