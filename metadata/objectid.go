package metadata

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// Object identifiers (RFC 8474). All three are objectids (RFC 8474 7: 1*255 of
// [A-Za-z0-9_-]) that start with a letter naming the kind and the algorithm, followed by
// lower-case hex: safe as file names, never read as numbers, and free to change algorithm
// later under a new letter (RFC 8474 10).
//
//   - MAILBOXID "F" + 24 hex digits (RFC 8474 4). Mailbox ids and UIDVALIDITY values are
//     counters of one Raft group, so two groups can hand out the same pair, and an account
//     that moves to another group would get new ones. The object id is therefore minted
//     once, when the mailbox gets its UIDVALIDITY, from a SHA-256 of the owner, the mailbox
//     id, the UIDVALIDITY and the log time of the command, and stored in the mailbox record:
//     unique across groups (the same owner never gets the same id at the same nanosecond of
//     log time in two groups), kept by RENAME (which changes only the name), never repeated
//     for a recreated name (a new mailbox id, or for a \Noselect placeholder made real again
//     a new UIDVALIDITY and a new mint), and carried over as data by anything that copies the
//     record. RENAME of INBOX moves its messages to a new mailbox (RFC 9051 6.3.6): INBOX
//     keeps its MAILBOXID, the new mailbox has its own.
//   - EMAILID "M" + 64 hex digits (RFC 8474 5.1): the SHA-256 of the message's blob key,
//     which is itself the SHA-256 of the content under the tenant's prefix. Copies and moves
//     keep the blob key, so they keep the EMAILID, as 5.1 requires; a message appended again
//     with the same bytes gets the same EMAILID, as 5.1 allows (as in Cyrus, whose EMAILID is
//     its content GUID). The same content in two tenants has two blob keys and two EMAILIDs.
//     The whole digest is kept: a truncated one would let a sender craft two messages that
//     share an EMAILID (RFC 8474 10: digests must resist collisions).
//   - THREADID "T" + 16 hex digits (RFC 8474 5.2): the 64-bit thread id thread.go assigns
//     at ingest, which is the first 64 bits of the EMAILID digest of the message that
//     started the thread (as Cyrus derives its conversation ids).
//
// An id is shown only with the message or mailbox it names, to users who may read it, so
// the digests prove nothing to anyone who could not fetch the bytes (RFC 8474 10).

// mailboxObjectID mints the MAILBOXID of mailbox id of owner with uidValidity at log time
// minted (unix nanoseconds; 0 for a record stored before MAILBOXIDs were minted).
func mailboxObjectID(owner string, id uint64, uidValidity uint32, minted int64) string {
	h := sha256.New()
	h.Write([]byte(owner))
	h.Write([]byte{0})
	h.Write(binary.BigEndian.AppendUint64(nil, id))
	h.Write(binary.BigEndian.AppendUint32(nil, uidValidity))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(minted)))
	return "F" + hex.EncodeToString(h.Sum(nil)[:12])
}

// contentDigest is the digest EMAILID and new thread ids derive from.
func contentDigest(blobKey string) [sha256.Size]byte { return sha256.Sum256([]byte(blobKey)) }

// emailObjectID returns the EMAILID of a message with blobKey.
func emailObjectID(blobKey string) string {
	d := contentDigest(blobKey)
	return "M" + hex.EncodeToString(d[:])
}

// threadOfContent returns the thread id of a thread that the message with blobKey starts:
// the first 64 bits of its content digest (never 0, which means "no thread" in the store).
func threadOfContent(blobKey string) uint64 {
	d := contentDigest(blobKey)
	return max(binary.BigEndian.Uint64(d[:8]), 1)
}

// threadObjectID returns the THREADID of thread id.
func threadObjectID(thread uint64) string {
	s := strconv.FormatUint(thread, 16)
	return "T" + "0000000000000000"[len(s):] + s
}
