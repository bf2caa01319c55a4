// Package metadata is the metadata service of one Raft group: the replicated state
// machine (FSM) on Pebble that holds tenants, accounts, mailboxes, message records,
// flags, MODSEQs, tombstones and the change journal, and the gRPC Metadata service
// on top of a replication.Node.
//
// Invariants:
//
//   - Determinism. The FSM's state is a function of the log entries alone: commands
//     carry the leader's timestamp, password hashes (and the SCRAM keys and app password
//     digests of credentials.go, never a password) and every other input; the FSM
//     never reads the clock or randomness, never iterates a Go map into state or a
//     response, and does not depend on how Raft groups entries into batches (request
//     ID pruning and every counter advance per command; the retry horizon comes from the
//     entries' log indexes). Digest compares replicas.
//     The clock read to time commands for the metrics (metrics.go) never reaches the
//     state. What a batch caches (txn.go: values read, records decoded once per batch;
//     prunememo.go: ranges the prunes found empty) only saves reads and scans whose
//     outcome it knows, and every write of the batch, rollbacks included, keeps it true
//     (batchcache_test.go compares one batch with one entry per batch). A write of a key
//     that every command of a batch rewrites (the log clock, a mailbox record, quota
//     usage: txn.defers) waits in the cache, which answers its reads, and goes into the
//     batch once, with its last value, when the batch ends or an iterator over it opens:
//     only a key's last version in a batch is ever read, so the store is the same
//     (appendgolden_test.go compares a log's store and answers with a build's before). The column
//     chunks a batch writes once for all its commands (columnbatch.go) are those that
//     writing each command's edits gives (columnbatch_test.go cuts one log into batches
//     six ways and compares every key). An edit that only appends records of UIDs the
//     command allocated goes in as a Pebble merge operand (columnbatch.go): the store's
//     merger concatenates, so every read finds the bytes the rewrite would have written;
//     the logical state is the same, with no feature level, and a previous build (same
//     default merger) reads it (columnmerge_test.go compares with the merges off).
//   - Atomicity. One Raft batch is one Pebble batch, which also stores the applied
//     index. A command that fails is rolled back inside the batch (txn savepoints),
//     so it leaves no trace; a storage failure panics rather than skip an entry.
//   - Restart. Entries with an index at or below AppliedIndex are skipped. Batches
//     commit without fsync; Persist syncs the store before Raft truncates its log.
//   - Idempotency. Every write carries a request ID; its result is stored in the
//     same batch and returned, without re-applying, to a retry until both 10 minutes
//     of log time and the retry horizon have passed it. A request ID reused for another
//     command kind or account is refused.
//   - Log clock and retries (apply.go retryEntries). Log time is the proposing leaders'
//     wall clock and never goes back, so one leader whose clock is ahead jumps it
//     forward for good. What is kept for retries (request IDs, dedup keys, delivery
//     marks) is therefore dropped only once the retry horizon, the log time of an entry
//     100,000 to 200,000 entries back, has passed it too: a retry after a jump finds it.
//     Bound: the request IDs of the last 200,000 entries and of the last 10 minutes of
//     log time; dedup keys within their window or 200,000 entries past it; marks are
//     bounded per account anyway. The other things dropped by log time are safe under a
//     forward jump: history (journal, tombstones) past its retention only makes a Watch
//     end with OutOfRange and VANISHED (EARLIER) answer complete=false, after which
//     clients resynchronise from the messages, which are never dropped; a blob marked
//     deleting before its grace in real time is fenced by the blob epoch and the
//     deleting refusal (blobgc.go), which hold whatever the clock, so the frontend only
//     stores the body again. A jump stalls pruning (log time stands still) until real
//     time catches up; nothing is lost meanwhile.
//   - MODSEQ. A command that changes a mailbox allocates exactly one new MODSEQ in
//     it (HIGHESTMODSEQ + 1); every message it changes carries that MODSEQ, and the
//     changes are journaled under (mailbox id, MODSEQ). Messages it does not change
//     keep theirs. Expunged UIDs leave a tombstone keyed by the MODSEQ of the expunge.
//   - History (history.go). Journal entries and tombstones older than their retention (log
//     time) are dropped by later write commands of their mailbox, a bounded number per
//     command, raising the mailbox's journal_floor and vanished_floor; above its floor
//     each is complete. A Watch cursor below the journal floor ends with OutOfRange.
//     ClaimRecent changes no message, only a mailbox's \Recent mark and count: it
//     allocates no MODSEQ and journals nothing.
//   - UIDs. UIDNEXT only grows; UIDVALIDITY values are never reused in a group, so a
//     recreated name never repeats one; mailbox ids are never reused.
//   - Counters. A mailbox's messages, unseen, size and recent (the messages at or above
//     its \Recent mark) are updated with every change of its messages, in the same
//     command.
//   - \Recent (RFC 3501 2.3.2, recent.go). A mailbox's first_recent_uid only grows and
//     never passes UIDNEXT; ClaimRecent raises it and returns the old value in one
//     command, so no UID is ever claimed as recent by two sessions.
//   - Quotas. Account and tenant usage (messages, bytes) change in the command that
//     adds or removes messages; a command that would grow a root past a limit is
//     refused whole with ResourceExhausted (quota.go).
//   - Blobs. Each message record holds one reference on its blob key; a blob whose
//     count drops to zero is listed as an orphan for the collector. The body of every
//     blob record that is not deleting is in the blob store; an append that could
//     reference a deleted body is refused (blobgc.go).
//   - Reads. Every read uses a Pebble snapshot (a consistent view of whole batches)
//     of a store generation it holds a reference on; Restore swaps generations and
//     the old one closes when its last reader is done. Service reads go through
//     ReadBarrier first. No read holds a view while sending to a client.
//   - Change feed. Events are published after the batch commits and never block
//     apply. Watch subscribes before its first journal read and re-reads the
//     journal from its cursor on every signal, so it never misses or repeats one.
//     WatchAccount (watchaccount.go) subscribes to an account's events (its mailboxes,
//     including those created, and its subscription list) before the snapshot it sends
//     first, and answers each signal with the current state of the mailboxes named.
//   - Access (RFC 4314, acl.go). Every mailbox request names its acting user (empty: a
//     trusted admin call). Rights are checked where the operation happens: inside the
//     command the FSM applies, or on the view a read answers from. A mailbox the user may
//     not see (no l, no r, or another tenant's) is answered exactly as a missing one.
//   - ACL index. The ACL entries of every mailbox are indexed by tenant and identifier;
//     each command's finish moves the index from the stored name and ACL of the
//     mailboxes it touched to their final ones, so no command maintains it by hand.
//   - Private \Seen. In a mailbox a user does not own, its \Seen is a record of its own
//     (privateseen.go) that goes with the message, the mailbox and the user.
//   - Annotations (RFC 5464, annotations.go). Entries are keyed by mailbox id or tenant, so
//     RENAME moves them for free; they go with their mailbox, user and tenant. Every owner's
//     AnnotationUsage is the sum of the entries charged to it, changed in the command that
//     changes them, and a command that would pass a limit is refused whole.
//   - Object ids (RFC 8474, objectid.go). A mailbox's MAILBOXID is minted with each
//     UIDVALIDITY it gets and kept in its record; a message's EMAILID derives from its blob
//     key and its THREADID from the thread id stored with it, both kept by COPY and MOVE.
//   - Threads (thread.go). A message's thread id is assigned by the command that adds it,
//     from its owner's thread index, which that command updates; it never changes.
//   - Aliases (delivery.go). An alias names accounts of its domain's tenant only, and no
//     address is both an account and an alias. Aliases go with their domain and tenant; a
//     deleted account leaves every alias that named it ('b' index), and an alias left
//     without targets goes.
//   - Dedup (dedup.go). An append with a dedup key that its owner stored within the key's
//     window, or less than the retry horizon past it, adds nothing and answers the earlier
//     append, in the command itself; every command prunes a bounded number of expired
//     records, so they stay bounded.
//   - Sieve scripts (sieve.go). An account's active script exists: the active one cannot be
//     deleted (RFC 5804 2.10) and a rename takes the mark along. Every put keeps the size
//     and count limits of the owner's tenant. Scripts go with their account and tenant.
//   - Delivery marks (marks.go). An account holds at most maxMarksPerAccount marks of
//     at most maxMarkKey bytes (a new one evicts the one that expires first); each stored
//     mark expires after its set time and the retry horizon of the command that set it,
//     and at most maxMarkLifetime after that command's log time. Every command prunes a bounded number of marks expired at the
//     retry horizon; an account's count is the number of its marks; marks go with their
//     account.
//   - Sort-key column (sortcolumn.go). A message has an entry in its mailbox's sort-key
//     column exactly when its stored structure has sort keys, and the entry holds its
//     internal date, size and those keys; addMessage writes it and removeMessage and
//     destroyMailbox delete it, so every path that adds or removes a message keeps it.
//     Messages stored before the column was kept are not migrated at load or restore (the
//     state stays a function of the log, and the service cannot derive keys a structure
//     lacks); the frontend reads their keys from the records instead.
//   - Message-ID dictionary (messagenumbers.go). Within a mailbox, two column entries
//     written since the dictionary have equal Message-ID or reference numbers exactly when
//     the strings are equal; every number is at most the mailbox's last_message_number and
//     names one id; numbers are given in the apply in the order of the ids and never
//     reused (an expunge keeps them); none is given past maxMessageNumber (the entry
//     stays unnumbered); the dictionary goes with the mailbox. A mailbox with
//     numbers_complete has numbers on every entry that can have them; one stored before
//     the dictionary gets them only through NumberMessagesCommands (numberfill.go), in UID
//     order from its numbered_through_uid, never at load or restore.
//   - Dates projection (sortdates.go). A mailbox with dates_complete has, per column
//     entry and nothing else, a 28-byte record of its UID, sort date (sent, else
//     internal: RFC 5256 2.2), internal date and size in the 'F' chunk of its UID, written
//     and removed in the command that writes and removes the entry; one stored before the
//     projection, or created by a command below its level, gets it only through NumberMessagesCommands after its numbers, and until
//     then ReadSortColumn derives the records from the column.
//   - Feature levels (featurelevel.go). FeatureLevel is the highest level of commands this
//     build applies; it is bumped, with a named level, whenever a command type is added or
//     a command changes what it writes. A command of a new type is proposed only when every
//     member of the group reports its level or a higher one (replication/cluster,
//     StatusResponse.fsm_level), so no replica of an older build is handed a command it
//     would refuse. Every command carries the group's level as its leader knew it
//     (Command.feature_level; none: level 3), and what it writes is a function of that
//     level and the store, not of the build applying it: below a layout's level it marks
//     no mailbox it creates complete in the layout and writes the layout of no mailbox
//     that is not complete in it (or filled past the UID), as a build of that level does;
//     a mailbox complete in it keeps it. Such mailboxes are filled through the log
//     (numberfill.go) once the group has the level, and read meanwhile from what every
//     build keeps (records, column entries).
//   - Listing column (listingcolumn.go). A mailbox with listing_column has, per message
//     and nothing else, its UID, MODSEQ and shared flags in the 'k' chunk of its UID,
//     written and removed in the command that writes and removes the record; one stored
//     before the column, or created by a command below its level, gets it only through NumberMessagesCommands after its dates, and
//     meanwhile has exactly the entries of its records at or below listed_through_uid.
//   - Thread-keys projection (threadkeys.go). A mailbox with thread_keys_complete has,
//     per column entry and nothing else, the entry's projection (without addresses, and
//     without Message-ID strings when numbered) in the 't' chunk of its UID, written and
//     removed in the command that writes and removes the entry; one stored before the
//     projection gets it only through NumberMessagesCommands after its listing column,
//     and until then ReadSortColumn derives the entries from the column.
//   - Subject projection (subjectrecords.go). A mailbox with subject_records_complete
//     has, per column entry and nothing else, an 8-byte record of its UID and the entry's
//     subject number (UnnumberedSubject without one) in the 'u' chunk of its UID, written
//     and removed in the command that writes and removes the entry, and written again when
//     the numbering rewrites the entry; one stored before the projection, or created by a
//     command below level 6, gets it only through NumberMessagesCommands after its subject
//     numbers, and until then ReadSortColumn derives the records from the column.
//   - Passwords are hashed (argon2id) by the service before proposing; the log and
//     the store hold only the hash.
package metadata
