// Package imapwire is the IMAP wire layer of the frontend: a Framer that reads command lines
// and literals with bounded memory, and a parser without I/O that turns the bytes of one
// command (literals inline, as sent) into a typed Command. The parser never panics, whatever
// the input, and bounds nesting depth; the framer bounds line length, and its caller bounds
// literal sizes.
//
// Grammar references are to RFC 9051 section 9 (formal syntax) unless noted.
package imapwire

import (
	"time"

	"github.com/emersion/go-imap/v2"
)

// Command is one parsed client command.
type Command struct {
	Tag string
	// Name is the upper-case command name; UID commands are "UID FETCH", "UID STORE", ...
	// It is the key of the dispatch table and the name responses use.
	Name string
	// Base is the name without its UID prefix ("FETCH" for FETCH and UID FETCH), and UID
	// tells the UID form (RFC 9051 6.4.9: numbers in the arguments and in the responses'
	// message references are UIDs). Handlers test these, never Name's spelling.
	Base string
	UID  bool
	// Args holds the command's arguments: one of the *...Args types of this package, or nil
	// for commands without arguments.
	Args any
}

// LoginArgs are the arguments of LOGIN (RFC 9051 6.2.3).
type LoginArgs struct {
	Username string
	Password string
}

// AuthenticateArgs are the arguments of AUTHENTICATE (RFC 9051 6.2.2) with the optional
// SASL initial response of RFC 4959.
type AuthenticateArgs struct {
	Mechanism string // upper-case
	// InitialResponse is the base64 initial response as sent ("=" for an empty one); nil
	// when the client sent none.
	InitialResponse []byte
}

// CompressArgs are the arguments of COMPRESS (RFC 4978 3).
type CompressArgs struct {
	Mechanism string // upper-case; DEFLATE is the only one defined
}

// EnableArgs are the arguments of ENABLE (RFC 9051 6.3.1).
type EnableArgs struct {
	Capabilities []string // upper-case
}

// MailboxArgs are the arguments of the commands that take one mailbox name: SELECT, EXAMINE,
// CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE.
type MailboxArgs struct {
	Mailbox string
	// SpecialUse lists the RFC 6154 3 attributes of CREATE's USE parameter, as sent.
	SpecialUse []string
	// CondStore is SELECT/EXAMINE's CONDSTORE parameter (RFC 7162 3.1.8).
	CondStore bool
	// QResync is SELECT/EXAMINE's QRESYNC parameter (RFC 7162 3.2.5); nil when not given.
	QResync *QResyncParams
}

// QResyncParams are the parameters of SELECT/EXAMINE (QRESYNC (...)) (RFC 7162 3.2.5):
// what the client knew of the mailbox when it last had it.
type QResyncParams struct {
	UIDValidity uint32
	ModSeq      uint64 // mod-sequence-value: at least 1
	// KnownUIDs are the UIDs the client knows; nil: not given (all UIDs, 3.2.5.1).
	KnownUIDs imap.UIDSet
	// SeqMatch is the message sequence match data (3.2.5.2): message numbers and the UIDs
	// they had for the client, pairwise in order; nil when not given.
	SeqMatchSeqs imap.SeqSet
	SeqMatchUIDs imap.UIDSet
}

// RenameArgs are the arguments of RENAME (RFC 9051 6.3.6).
type RenameArgs struct {
	From, To string
}

// ListArgs are the arguments of LIST (RFC 9051 6.3.9, with the RFC 5258 extended syntax) and
// LSUB (RFC 3501 6.3.9).
type ListArgs struct {
	SelectOptions []string // upper-case, e.g. SUBSCRIBED
	Reference     string
	Patterns      []string
	ReturnOptions []string // upper-case, e.g. CHILDREN, SPECIAL-USE
	// StatusItems are the items of the STATUS return option (RFC 5819), upper-case.
	StatusItems []string
}

// StatusArgs are the arguments of STATUS (RFC 9051 6.3.11).
type StatusArgs struct {
	Mailbox string
	Items   []string // upper-case
}

// AppendArgs are the arguments of APPEND (RFC 9051 6.3.12) up to its message literal, which
// the caller streams from the connection.
type AppendArgs struct {
	Mailbox string
	Flags   []imap.Flag
	Date    time.Time // zero when not given
	// UTF8 is set when the message came as the UTF8 data extension, "UTF8 (" literal8 ")"
	// (RFC 6855 4); the ")" follows the literal.
	UTF8    bool
	Literal Literal
	// Replace is the message REPLACE or UID REPLACE replaces (RFC 8508 6): a message
	// sequence number, or a UID for UID REPLACE; 0 for APPEND.
	Replace uint32
}

// FetchAttr names one FETCH data item (RFC 9051 6.4.5).
type FetchAttr int

// The FETCH data items.
const (
	FetchFlags FetchAttr = iota
	FetchUID
	FetchInternalDate
	FetchRFC822Size
	FetchEnvelope
	FetchBodyStructure // BODYSTRUCTURE: extended
	FetchBody          // BODY without section: non-extended body structure
	FetchBodySection   // BODY[...] and BODY.PEEK[...]
	FetchBinarySection // BINARY[...] and BINARY.PEEK[...] (RFC 3516)
	FetchBinarySize    // BINARY.SIZE[...] (RFC 3516)
	FetchRFC822        // RFC822: BODY[] named RFC822 (RFC 3501)
	FetchRFC822Header  // RFC822.HEADER: BODY.PEEK[HEADER] named RFC822.HEADER
	FetchRFC822Text    // RFC822.TEXT: BODY[TEXT] named RFC822.TEXT
	FetchModSeq        // MODSEQ (RFC 7162)
	FetchPreview       // PREVIEW and PREVIEW (LAZY) (RFC 8970)
	FetchSaveDate      // SAVEDATE (RFC 8514)
	FetchEmailID       // EMAILID (RFC 8474 5.3)
	FetchThreadID      // THREADID (RFC 8474 5.3)
)

// go-imap's SearchCriteria has no field for the SAVEDBEFORE, SAVEDON and SAVEDSINCE keys of
// RFC 8514, so the parser carries each as a Header entry whose key no header field can
// have (a field name has no ":", RFC 5322 2.2) and whose value is the date as "2006-01-02".
const (
	SearchSavedBefore = ":SAVEDBEFORE"
	SearchSavedOn     = ":SAVEDON"
	SearchSavedSince  = ":SAVEDSINCE"
)

// The EMAILID and THREADID search keys of RFC 8474 6 travel the same way, as a Header entry
// with one of these keys and the objectid as its value.
const (
	SearchEmailID  = ":EMAILID"
	SearchThreadID = ":THREADID"
)

// WITHIN's OLDER and YOUNGER keys (RFC 5032 3) travel the same way, with the interval in
// seconds as the value.
const (
	SearchOlder   = ":OLDER"
	SearchYounger = ":YOUNGER"
)

// The text keys under FUZZY (RFC 6203 3) travel the same way: FUZZY BODY and FUZZY TEXT as
// a Header entry with key SearchFuzzyBody or SearchFuzzyText, FUZZY SUBJECT, FROM, TO, CC,
// BCC and HEADER as one whose key is SearchFuzzyHeader followed by the field name; the value
// is the needle. FUZZY over any other key is that key (RFC 6203 3: the matching is the
// server's to define, and the exact match is one).
const (
	SearchFuzzyBody   = ":FUZZY:BODY"
	SearchFuzzyText   = ":FUZZY:TEXT"
	SearchFuzzyHeader = ":FUZZY:HEADER:"
)

// FetchItem is one FETCH data item; Section is set for the BODY[...], BINARY[...] and
// BINARY.SIZE[...] forms.
type FetchItem struct {
	Attr    FetchAttr
	Section *imap.FetchItemBodySection
}

// FetchArgs are the arguments of FETCH and UID FETCH (RFC 9051 6.4.5, 6.4.9). Set is an
// imap.SeqSet, or an imap.UIDSet for UID FETCH; "$" (RFC 5182) is imap.SearchRes().
type FetchArgs struct {
	Set   imap.NumSet
	Items []FetchItem
	// ChangedSince is the CHANGEDSINCE modifier (RFC 7162 3.1.4.1); 0 when not given.
	ChangedSince uint64
	// Vanished is the VANISHED modifier of UID FETCH (RFC 7162 3.2.6).
	Vanished bool
}

// StoreArgs are the arguments of STORE and UID STORE (RFC 9051 6.4.6).
type StoreArgs struct {
	Set            imap.NumSet
	Flags          imap.StoreFlags
	UnchangedSince uint64 // RFC 7162 3.1.3; 0: not given
}

// CopyArgs are the arguments of COPY, MOVE and their UID forms (RFC 9051 6.4.7, 6.4.8).
type CopyArgs struct {
	Set     imap.NumSet
	Mailbox string
}

// SearchArgs are the arguments of SEARCH and UID SEARCH (RFC 9051 6.4.4).
type SearchArgs struct {
	// ModSeq is set when a MODSEQ search key occurs anywhere in Criteria (RFC 7162 3.1.5),
	// so that the result carries the highest MODSEQ of the messages found (3.1.6).
	ModSeq bool
	// Return lists the RFC 9051 6.4.4 / RFC 4731 return options (upper-case); ESearch is
	// true when a RETURN clause was given, so the result is an ESEARCH response.
	Return  []string
	ESearch bool
	// Partial is the range of RETURN (PARTIAL range) (RFC 5267 4.4, RFC 9394 3.1), if given.
	Partial  *PartialRange
	Charset  string
	Criteria imap.SearchCriteria
}

// CancelUpdateArgs are the arguments of CANCELUPDATE (RFC 5267 4.3.5): the tags of the
// searching commands whose updates end.
type CancelUpdateArgs struct {
	Tags []string
}

// UIDExpungeArgs are the arguments of UID EXPUNGE (RFC 9051 6.4.9, RFC 4315 2.1).
type UIDExpungeArgs struct {
	Set imap.UIDSet
}
