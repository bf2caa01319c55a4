// Package metaclient is the frontend's client of a replicated metadata group: one
// grpc.ClientConnInterface over connections to every metadata node that sends writes and
// linearizable reads to the group's current Raft leader (DESIGN.md "Errors that route"),
// and, with Config.FollowerReads, spreads the reads of selected IMAP sessions over every
// healthy node as session-consistent reads (DESIGN.md "Metadata on Raft": "a frontend
// passes the index it last saw and any replica that has applied past it may answer").
//
// Invariants:
//
//   - A call is retried only with the identical request message, so a write keeps its
//     request_id and the metadata FSM applies it at most once even when a timed-out
//     attempt did commit ("outcome unknown, retry with the same request_id").
//   - Retries stay within the caller's deadline: attempts back off exponentially with full
//     jitter and stop when the context ends; the last error is returned.
//   - The leader is learned from the NOT_LEADER details of a refusal (leader_id, mapped to
//     the node's gRPC address through the node list) and from any node that answers a
//     leader-only call; with no usable hint the next node of the list is tried. A node
//     that answers a session read is not taken for the leader.
//   - A server stream (Watch, FetchMessages) is moved to another node only while it has
//     delivered nothing, by sending the same request again; once a message was delivered its
//     error goes to the caller, which resumes from what it received (the frontend's change
//     feed reconnects from its MODSEQ cursor), so no position is ever tracked twice.
//   - A stream never waits long on a node that cannot move it forward: a follower cut off
//     from the leader ends the streams it serves (metadata/consistency.go); a Watch on a
//     node that stopped answering ends when a session read finds it out, and any stream
//     there at the latest when keepalive pings go unanswered; callers resume elsewhere.
//
// # Read position
//
// Every response of a metadata node carries its applied Raft index
// (metadata.AppliedIndexHeader); the trailer's value covers all the state the response
// holds (metadata/consistency.go). The client keeps the highest index it has seen (the
// read position, SeenIndex) and sends it as metadata.MinIndexHeader on each session read;
// a node answers only once it has applied that index, and otherwise sends the read to
// the leader. Position and routing are per Client, that is per frontend process, shared
// by all its sessions.
//
// What the client hands to the caller without a covering index is a fence on the node it
// came from: each Watch batch (a feed never ends, and its batches reach the session at
// once), and any answer without a trailer. The records of FetchMessages are not fences:
// callers use them once the stream has ended, and its trailer covers them. A fenced
// node's state is ahead of the read position by an unknown amount, so while one node is
// fenced session reads go to that node (its state only grows), and while several are, to
// the leader as linearizable reads. A fence is lifted by an index from that node answering
// a call sent after the delivery, and all fences by a leader-only call (a write, or a
// linearizable read: its index covers every node's state when the call was sent). Fences
// are per client, not per session, so a busy change feed sends more reads to the leader.
//
// A session read whose node does not send the response header within FollowerTimeout,
// or cannot be reached, goes to the leader; the node is left out of the spread for a while
// (1s, doubling up to 30s while it keeps failing), and the Watch streams open on it are
// ended, so that they resume elsewhere instead of waiting for it.
//
// # Why session consistency keeps IMAP's guarantees
//
// The session reads are those a session makes to build and refresh its view of the
// mailboxes: ListMailboxes (LIST, LSUB), GetMailbox (SELECT, EXAMINE, STATUS, and the
// lookups before writes), ListMessages (SELECT), FetchMessages (FETCH, SEARCH), GetQuota
// (GETQUOTA) and Watch (the change feed). Authenticate, GetAccount, FindOAuthIssuer (an
// OAuth login must see the issuer an admin just set), ACL and admin reads,
// WatchAccount (NOTIFY's account feed, whose snapshot on every new stream makes up for what a
// broken one missed), the delivery reads (ResolveRecipient, which must find an account or
// alias created through any frontend a moment before, GetActiveSieveScript and the other
// Sieve script reads, CheckMarks, which must see the vacation and duplicate marks set
// through any frontend), and every write, stay on the leader.
//
//   - A session never sees state older than it already saw. Every answer it received was
//     covered by the read position or fenced, and the next read is served at or past the
//     position (or by the fenced node, or linearizably), so message counts shrink only
//     through EXPUNGE responses (RFC 9051 7.5.1), UIDs and UIDNEXT never go backwards
//     (RFC 9051 2.3.1.1), and HIGHESTMODSEQ and per-message MODSEQs only grow (RFC 7162
//     3.1.1, 3.1.2.1).
//   - A session reads its own writes, and those of every session of the same frontend: a
//     write's response comes from the leader after the FSM applied it, with an index at
//     least the write's, so the next read of any session here is served at or past it.
//     After an APPEND, COPY or STORE the session sees its message and flags in the same
//     UIDs and MODSEQs the response announced (RFC 4315 3, RFC 7162 3.1.3).
//   - A new session starts at least where the group was when it logged in: Authenticate is
//     a linearizable read on the leader, and its index raises the read position past
//     everything committed before the login, through any frontend.
//   - Changes made through other frontends while a session is open reach it through the
//     Watch feed of its selected mailbox, which any member serves from its journal after
//     the session's MODSEQ cursor, so none is skipped or repeated (DESIGN.md "Change
//     feed"); the batches are fences, so a FETCH of a UID that a Watch batch announced is
//     served by a node that holds it. IMAP requires no more: a server reports other
//     sessions' changes when it observes them, not at the instant they commit (RFC 9051
//     5.2, 7.4.1). A STATUS or LIST of a mailbox that another frontend just changed may lag
//     by the replication delay of the node that answers (milliseconds, bounded by
//     metadata's sessionReadWait before that node defers to the leader).
//
// The sessions of one frontend that have the same mailbox selected as the same user share
// its view and its one Watch stream (frontend/imap/mailview.go). That keeps the guarantees
// above: the view only grows along the feed, so no session sees older state than it saw; and
// a session joins the view only once the view is at or past the HIGHESTMODSEQ of the
// GetMailbox it made at SELECT, a session read served at or past the read position, so its
// starting copy holds every write acknowledged before its login and every write of this
// frontend acknowledged before the SELECT. A view whose feed lags waits for it (at most
// the call's deadline) before the SELECT answers.
//
// The view's feed also carries its user's rights (Watch with follow_rights), from which a
// session in another owner's mailbox checks its rights before each command instead of a
// GetMailbox (issue 14). The rights carry the mailbox's ACL version; SETACL and DELETEACL
// through this frontend, and each SELECT's GetMailbox, note the version they learned in the
// views, and a session whose view is behind such a version reads the mailbox as before: an
// ACL change acknowledged by this frontend applies at every session's next command here. One
// made through another frontend applies once the feed delivers it, as the replication delay
// of a session read would have it; every FetchMessages, ListMessages and write is still
// checked by the service under the rights in force. The frontend's record cache
// (frontend/imap/recordcache.go) holds only what a message keeps for life and serves only
// the owner's sessions, whose rights no ACL changes, so it changes none of the above.
//
// Config.FollowerReads off (the default of Config; `strata frontend --follower-reads=false`)
// sends every call to the leader, linearizable, as before.
package metaclient
