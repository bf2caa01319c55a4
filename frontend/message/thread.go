package message

import (
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Bounds of metadatapb.ThreadKeys, which the metadata service enforces (proto/metadata.proto).
const (
	maxThreadReferences = 32
	maxMessageIDBytes   = 250
	maxBaseSubjectBytes = 256
)

// subjectDecoder decodes RFC 2047 encoded-words in any charset go-message knows.
var subjectDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// ThreadKeys returns what the metadata service threads a message by (RFC 8474 5.2 THREADID,
// metadata/thread.go), from its parsed structure: its Message-ID, the ids it refers to and
// its RFC 5256 2.1 base subject. The references are In-Reply-To's ids, then References'
// from the last (the parent) to the first (the thread's root), without duplicates or the
// message's own id; beyond maxThreadReferences the root is kept with the nearest ones (the
// trimming RFC 5322 3.6.4 suggests to writers). Ids are taken as written between angle
// brackets, without the brackets and white space; an id longer than the metadata service
// indexes is left out. A header cut at MaxHeaderBytes keeps only the fields before the cut.
func ThreadKeys(s *metadatapb.MessageStructure) *metadatapb.ThreadKeys {
	return threadKeys(s, readKeySources(s))
}

func threadKeys(s *metadatapb.MessageStructure, src keySources) *metadatapb.ThreadKeys {
	keys := &metadatapb.ThreadKeys{MessageId: src.messageID}
	references := src.references
	ordered := messageIDs(s.GetEnvelope().GetInReplyTo())
	for i := len(references) - 1; i >= 0; i-- {
		ordered = append(ordered, references[i])
	}
	for _, id := range ordered {
		if id != keys.MessageId && !slices.Contains(keys.References, id) {
			keys.References = append(keys.References, id)
		}
	}
	if len(keys.References) > maxThreadReferences {
		keys.References = keys.References[:maxThreadReferences-1]
		if len(references) > 0 {
			if root := references[0]; root != keys.MessageId && !slices.Contains(keys.References, root) {
				keys.References = append(keys.References, root)
			}
		}
	}
	keys.BaseSubject = truncateUTF8(strings.ToLower(src.base), maxBaseSubjectBytes)
	keys.Reply = src.reply
	return keys
}

// messageIDs returns the msg-ids of a Message-ID, In-Reply-To or References value (RFC 5322
// 3.6.4): what stands between "<" and ">", without white space; a value without any "<" is
// taken as white-space separated ids that contain "@" (what some broken mailers write).
// Empty ids and ids longer than maxMessageIDBytes are left out.
func messageIDs(v string) []string {
	var ids []string
	add := func(id string) {
		if id = strings.Join(strings.Fields(id), ""); id != "" && len(id) <= maxMessageIDBytes {
			ids = append(ids, id)
		}
	}
	if !strings.Contains(v, "<") {
		for _, word := range strings.Fields(v) {
			if strings.Contains(word, "@") {
				add(word)
			}
		}
		return ids
	}
	for {
		open := strings.IndexByte(v, '<')
		if open < 0 {
			return ids
		}
		v = v[open+1:]
		end := strings.IndexByte(v, '>')
		if end < 0 {
			return ids
		}
		id := v[:end]
		if i := strings.LastIndexByte(id, '<'); i >= 0 {
			id = id[i+1:] // "<<a@b>": the innermost opening bracket starts the id
		}
		add(id)
		v = v[end+1:]
	}
}

// baseSubject returns the base subject of a decoded subject (RFC 5256 2.1, steps 1 to 7) and
// whether extracting it removed a reply or forward marker: a "Re:", "Fw:" or "Fwd:" leader, a
// "(fwd)" trailer or a "[Fwd: ...]" wrapper (what RFC 5256 4 calls a reply or forward).
func baseSubject(subject string) (base string, reply bool) {
	// (1) White space runs become one space.
	s := strings.Join(strings.FieldsFunc(subject, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }), " ")
	for {
		// (2) subj-trailer = "(fwd)" / WSP, repeatedly.
		for {
			t := strings.TrimRight(s, " ")
			if n := len(t) - len("(fwd)"); n >= 0 && strings.EqualFold(t[n:], "(fwd)") {
				t, reply = t[:n], true
			}
			if t == s {
				break
			}
			s = t
		}
		// (3) to (5): subj-leader and, when something is left after it, subj-blob.
		for {
			if rest, refwd, ok := cutLeader(s); ok {
				s, reply = rest, reply || refwd
				continue
			}
			if end, ok := blobEnd(s, 0); ok && strings.TrimLeft(s[end:], " ") != "" {
				s = s[end:]
				continue
			}
			break
		}
		// (6) subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]", then again from (2).
		if len(s) > len("[fwd:") && strings.EqualFold(s[:len("[fwd:")], "[fwd:") && strings.HasSuffix(s, "]") {
			s, reply = s[len("[fwd:"):len(s)-1], true
			continue
		}
		return s, reply
	}
}

// cutLeader removes one subj-leader = (*subj-blob subj-refwd) / WSP from the start of s;
// refwd says it was the first.
func cutLeader(s string) (rest string, refwd, ok bool) {
	if strings.HasPrefix(s, " ") {
		return s[1:], false, true
	}
	i := 0
	for {
		end, isBlob := blobEnd(s, i)
		if !isBlob {
			break
		}
		i = end
	}
	// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
	word := 0
	switch {
	case hasPrefixFold(s[i:], "re"):
		word = 2
	case hasPrefixFold(s[i:], "fwd"):
		word = 3
	case hasPrefixFold(s[i:], "fw"):
		word = 2
	default:
		return s, false, false
	}
	i += word
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if end, isBlob := blobEnd(s, i); isBlob {
		i = end
	}
	if i >= len(s) || s[i] != ':' {
		return s, false, false
	}
	return s[i+1:], true, true
}

// blobEnd returns the end of the subj-blob = "[" *BLOBCHAR "]" *WSP at s[i:], if there is one.
func blobEnd(s string, i int) (int, bool) {
	if i >= len(s) || s[i] != '[' {
		return 0, false
	}
	close := strings.IndexAny(s[i+1:], "[]")
	if close < 0 || s[i+1+close] != ']' {
		return 0, false
	}
	end := i + 1 + close + 1
	for end < len(s) && s[end] == ' ' {
		end++
	}
	return end, true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
