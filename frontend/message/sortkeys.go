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
	return sortKeys(s, readKeySources(s))
}

// Keys returns SortKeys(s) and ThreadKeys(s), from one reading of what both take from
// the header and the envelope (the References field, the Message-ID, the base subject):
// what every new message needs (frontend/ingest).
func Keys(s *metadatapb.MessageStructure) (*metadatapb.SortKeys, *metadatapb.ThreadKeys) {
	src := readKeySources(s)
	return sortKeys(s, src), threadKeys(s, src)
}

// keySources is what the sort and the thread keys of a message both derive from.
type keySources struct {
	// references are the ids of the References field (RFC 5322 3.6.4), root first;
	// none when the message has no such field.
	references []string
	// messageID is the first id of the Message-ID field, "" when it has none.
	messageID string
	// base is the RFC 5256 2.1 base subject of the decoded subject, reply whether
	// extracting it removed a reply or forward marker.
	base  string
	reply bool
}

func readKeySources(s *metadatapb.MessageStructure) keySources {
	env := s.GetEnvelope()
	var src keySources
	if v, found := fieldValue(s.GetHeader(), "References"); found {
		src.references = messageIDs(v)
	}
	if ids := messageIDs(env.GetMessageId()); len(ids) > 0 {
		src.messageID = ids[0]
	}
	// RFC 5256 2.1 (1): encoded-words are decoded before the base subject is extracted.
	subject := env.GetSubject()
	if decoded, err := subjectDecoder.DecodeHeader(subject); err == nil {
		// An encoded-word in UTF-8 is not checked by the decoder; protobuf strings must be.
		subject = strings.ToValidUTF8(decoded, "\uFFFD")
	}
	src.base, src.reply = baseSubject(subject)
	return src
}

func sortKeys(s *metadatapb.MessageStructure, src keySources) *metadatapb.SortKeys {
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
	keys.Subject, keys.Reply = sortForm(src.base), src.reply
	keys.From = sortForm(firstMailbox(env.GetFrom()))
	keys.To = sortForm(firstMailbox(env.GetTo()))
	keys.Cc = sortForm(firstMailbox(env.GetCc()))
	keys.DisplayFrom = sortForm(displayName(env.GetFrom()))
	keys.DisplayTo = sortForm(displayName(env.GetTo()))
	keys.MessageId = src.messageID
	keys.References = threadReferences(s, src.references)
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
// step 1.A): those of its References field (references, root first), or when it has none,
// the first id of In-Reply-To. Beyond maxSortReferences the root and the nearest ones are
// kept, in a slice of their own (references is the thread keys' too).
func threadReferences(s *metadatapb.MessageStructure, references []string) []string {
	refs := references
	if len(refs) == 0 {
		if ids := messageIDs(s.GetEnvelope().GetInReplyTo()); len(ids) > 0 {
			refs = ids[:1]
		}
	}
	if len(refs) > maxSortReferences {
		refs = append(append(make([]string, 0, maxSortReferences), refs[0]), refs[len(refs)-maxSortReferences+1:]...)
	}
	return refs
}
