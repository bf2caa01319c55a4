// Package imapresp encodes the responses of an IMAP server: each Append function appends one
// whole response, from "* " (or the tag) to its CRLF, to a byte slice and returns it, as
// strconv's Append functions do. It does no I/O and holds no state; the handlers of
// frontend/imap decide what to answer, and these functions alone decide how it is spelled
// on the wire. The tests beside each encoder pin its exact bytes.
//
// Strings go out through a message.Encoder, so that quoted strings carry UTF-8 only in
// sessions that enabled it (RFC 9051 4.3, RFC 6855 3). Mailbox names are passed in the
// session's form (modified UTF-7 or UTF-8, RFC 9051 5.1.3), which the caller chose.
//
// Every response code is a constant of this file (RFC 9051 7.1); the codes that carry
// arguments have a function of encode_status.go that renders them.
//
// Grammar references are to RFC 9051 section 9 (formal syntax) unless noted.
package imapresp

// Response codes without arguments.
const (
	// RFC 5530 3: the operation failed because its target exists already.
	CodeAlreadyExists = "ALREADYEXISTS"
	// RFC 5530 3: authentication failed for a reason the server does not give.
	CodeAuthenticationFailed = "AUTHENTICATIONFAILED"
	// RFC 5530 3: the authenticated identity may not act as the authorization identity.
	CodeAuthorizationFailed = "AUTHORIZATIONFAILED"
	// RFC 5530 3: the operation violates an invariant of the server.
	CodeCannot = "CANNOT"
	// RFC 5530 3: the server sees a client error that the command's result does not show.
	CodeClientBug = "CLIENTBUG"
	// RFC 7162 3.2.11, RFC 9051 7.1: the previously selected mailbox is now closed.
	CodeClosed = "CLOSED"
	// RFC 4978 3, RFC 5530 3: COMPRESS while compression is active.
	CodeCompressionActive = "COMPRESSIONACTIVE"
	// RFC 5530 3: the operation passes an administrative limit.
	CodeLimit = "LIMIT"
	// RFC 5267 4.3.1: the server will not keep a searching command's result up to date
	// (NoUpdateCode gives it its argument).
	CodeNoUpdate = "NOUPDATE"
	// RFC 5530 3: the operation's target does not exist.
	CodeNonExistent = "NONEXISTENT"
	// RFC 5530 3, RFC 4314 4: the access control list does not allow the operation.
	CodeNoPerm = "NOPERM"
	// RFC 5465 5.8: the server stops NOTIFY, as if NOTIFY NONE had been received.
	CodeNotificationOverflow = "NOTIFICATIONOVERFLOW"
	// RFC 5530 3, RFC 9208 4.3.1: the operation would pass a quota.
	CodeOverQuota = "OVERQUOTA"
	// RFC 5530 3: the operation needs a private (encrypted) connection.
	CodePrivacyRequired = "PRIVACYREQUIRED"
	// RFC 9051 7.1: the mailbox is selected read-only.
	CodeReadOnly = "READ-ONLY"
	// RFC 9051 7.1: the mailbox is selected read-write.
	CodeReadWrite = "READ-WRITE"
	// RFC 5530 3: the server found a bug of its own.
	CodeServerBug = "SERVERBUG"
	// RFC 7889 4 (the code of RFC 4469): the message is larger than the server accepts.
	CodeTooBig = "TOOBIG"
	// RFC 9051 7.1: the target mailbox of APPEND or COPY does not exist, and may be created.
	CodeTryCreate = "TRYCREATE"
	// RFC 9586 3: a UIDONLY session used message sequence numbers.
	CodeUIDRequired = "UIDREQUIRED"
	// RFC 5530 3: a temporary failure; the client may try again.
	CodeUnavailable = "UNAVAILABLE"
	// RFC 3516 4.3, RFC 9051 7.1: the server cannot decode a part's Content-Transfer-Encoding.
	CodeUnknownCTE = "UNKNOWN-CTE"
	// RFC 6154 3: the special-use attribute is not supported or not allowed here.
	CodeUseAttr = "USEATTR"
)

// Response codes with arguments; encode_status.go renders them with their arguments.
const (
	// RFC 4315 3: APPENDUID uidvalidity uid-set.
	CodeAppendUID = "APPENDUID"
	// RFC 9051 7.1: BADCHARSET (charset ...).
	CodeBadCharset = "BADCHARSET"
	// RFC 5465 3.1: BADEVENT (event ...), the events the server supports.
	CodeBadEvent = "BADEVENT"
	// RFC 9051 7.1: CAPABILITY capability ...
	CodeCapability = "CAPABILITY"
	// RFC 4315 3: COPYUID uidvalidity source-uid-set dest-uid-set.
	CodeCopyUID = "COPYUID"
	// RFC 7162 3.1.2.1: HIGHESTMODSEQ mod-sequence-value.
	CodeHighestModSeq = "HIGHESTMODSEQ"
	// RFC 8474 4.1, 4.2: MAILBOXID (objectid).
	CodeMailboxID = "MAILBOXID"
	// RFC 5464 4.2.1, 4.3: METADATA LONGENTRIES n, MAXSIZE n, TOOMANY, NOPRIVATE.
	CodeMetadata = "METADATA"
	// RFC 7162 3.1.3: MODIFIED sequence-set.
	CodeModified = "MODIFIED"
	// RFC 9051 7.1: PERMANENTFLAGS (flag-perm ...).
	CodePermanentFlags = "PERMANENTFLAGS"
	// RFC 9051 7.1: UIDNEXT nz-number.
	CodeUIDNext = "UIDNEXT"
	// RFC 9051 7.1: UIDVALIDITY nz-number.
	CodeUIDValidity = "UIDVALIDITY"
	// RFC 3501 7.1: UNSEEN nz-number, the first unseen message (IMAP4rev1 only).
	CodeUnseen = "UNSEEN"
)
