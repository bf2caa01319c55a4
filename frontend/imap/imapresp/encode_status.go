package imapresp

import (
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// AppendStatusResponse appends a status response (RFC 9051 7.1): tag SP typ SP ["[" code
// "]" SP] text CRLF, tagged, or untagged with tag "*". typ is OK, NO, BAD, PREAUTH or BYE;
// code is a response code with its arguments, without brackets, or "". The text is made one
// line of TEXT-CHARs (CR, LF and NUL become spaces) and "-" when empty, since resp-text
// needs at least one character.
func AppendStatusResponse(b []byte, tag, typ, code, text string) []byte {
	b = append(b, tag...)
	b = append(b, ' ')
	b = append(b, typ...)
	b = append(b, ' ')
	if code != "" {
		b = append(b, '[')
		b = append(b, code...)
		b = append(b, "] "...)
	}
	if text == "" {
		b = append(b, '-')
	}
	for i := 0; i < len(text); i++ {
		switch ch := text[i]; ch {
		case '\r', '\n', 0:
			b = append(b, ' ')
		default:
			b = append(b, ch)
		}
	}
	return append(b, '\r', '\n')
}

// AppendUIDCode renders the APPENDUID response code (RFC 4315 3): the UIDVALIDITY of the
// target mailbox and the UIDs of the appended messages (RFC 3502 6.3.11: all of them, in
// order).
func AppendUIDCode(uidValidity uint32, uids imap.UIDSet) string {
	return CodeAppendUID + " " + strconv.FormatUint(uint64(uidValidity), 10) + " " + uids.String()
}

// CopyUIDCode renders the COPYUID response code (RFC 4315 3): the UIDVALIDITY of the target
// mailbox, the source UIDs and the UIDs of their copies, in the same order.
func CopyUIDCode(uidValidity uint32, source, dest imap.UIDSet) string {
	return CodeCopyUID + " " + strconv.FormatUint(uint64(uidValidity), 10) + " " + source.String() + " " + dest.String()
}

// BadCharsetCode renders BADCHARSET with the charsets the server supports (RFC 9051 7.1).
func BadCharsetCode(charsets ...string) string {
	return CodeBadCharset + " (" + strings.Join(charsets, " ") + ")"
}

// NoUpdateCode renders "NOUPDATE" SP quoted (RFC 5267 4.3.1, 5): the server will not keep
// the result of the searching command tag up to date.
func NoUpdateCode(tag string) string {
	// A tag holds no quoted-specials (RFC 9051 9: tag is ASTRING-CHAR, which excludes
	// them); they are escaped all the same.
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return CodeNoUpdate + ` "` + r.Replace(tag) + `"`
}

// BadEventCode renders BADEVENT with the events the server supports (RFC 5465 3.1).
func BadEventCode(events []string) string {
	return CodeBadEvent + " (" + strings.Join(events, " ") + ")"
}

// CapabilityCode renders the CAPABILITY response code (RFC 9051 7.1) of caps, the
// space-separated capability list.
func CapabilityCode(caps string) string {
	return CodeCapability + " " + caps
}

// HighestModSeqCode renders HIGHESTMODSEQ (RFC 7162 3.1.2.1, 3.2.7).
func HighestModSeqCode(modseq uint64) string {
	return CodeHighestModSeq + " " + strconv.FormatUint(modseq, 10)
}

// MailboxIDCode renders MAILBOXID (objectid) (RFC 8474 4.1, 4.2).
func MailboxIDCode(objectID string) string {
	return CodeMailboxID + " (" + objectID + ")"
}

// ModifiedCode renders MODIFIED (RFC 7162 3.1.3): the messages, by number or UID as the
// command named them, that failed UNCHANGEDSINCE.
func ModifiedCode(set imap.UIDSet) string {
	return CodeModified + " " + set.String()
}

// PermanentFlagsCode renders PERMANENTFLAGS with the flags the session may store
// (RFC 9051 7.1); none for a read-only mailbox.
func PermanentFlagsCode(flags []string) string {
	return string(AppendFlagList([]byte(CodePermanentFlags+" "), flags))
}

// UIDNextCode renders UIDNEXT (RFC 9051 7.1).
func UIDNextCode(uidNext uint32) string {
	return CodeUIDNext + " " + strconv.FormatUint(uint64(uidNext), 10)
}

// UIDValidityCode renders UIDVALIDITY (RFC 9051 7.1).
func UIDValidityCode(uidValidity uint32) string {
	return CodeUIDValidity + " " + strconv.FormatUint(uint64(uidValidity), 10)
}

// UnseenCode renders UNSEEN, the number of the first unseen message (RFC 3501 7.1).
func UnseenCode(seq int) string {
	return CodeUnseen + " " + strconv.Itoa(seq)
}

// The METADATA response codes (RFC 5464 4.2.1, 4.3).
const (
	MetadataTooMany   = CodeMetadata + " TOOMANY"   // RFC 5464 4.3: too many entries
	MetadataNoPrivate = CodeMetadata + " NOPRIVATE" // RFC 5464 4.3: no private entries here
)

// MetadataLongEntriesCode renders METADATA LONGENTRIES n, the size of the longest value
// GETMETADATA left out for MAXSIZE (RFC 5464 4.2.1).
func MetadataLongEntriesCode(n uint64) string {
	return CodeMetadata + " LONGENTRIES " + strconv.FormatUint(n, 10)
}

// MetadataMaxSizeCode renders METADATA MAXSIZE n, the largest value SETMETADATA accepts
// (RFC 5464 4.3).
func MetadataMaxSizeCode(n uint64) string {
	return CodeMetadata + " MAXSIZE " + strconv.FormatUint(n, 10)
}
