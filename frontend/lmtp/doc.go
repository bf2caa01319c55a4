// Package lmtp is Strata's mail intake: an LMTP server (RFC 2033) that a provider's MTA
// (Postfix, Exim, Haraka, ...) hands accepted mail to for final delivery. The protocol is
// github.com/emersion/go-smtp in LMTP mode; this package is its backend (session.go).
//
// A transaction goes:
//
//   - LHLO announces PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, CHUNKING, BINARYMIME,
//     SMTPUTF8 and SIZE (RFC 2033 4.1 with RFC 2920, RFC 6152, RFC 2034, RFC 3030, RFC 6531,
//     RFC 1870).
//   - RCPT TO resolves the address through the metadata service (ResolveRecipient: the
//     account, an alias or the domain's catch-all; the RFC 5233 subaddress detail split off
//     by the tenant's delimiter) and checks the account's quota, so that an unknown or
//     disabled account is refused with 550 5.1.1 and a full one with 452 4.2.2 (552 5.2.2
//     when the tenant says so) before any byte of the message is sent.
//   - DATA (or BDAT) streams the message once into a spool (memory, then a file past
//     spoolMemory bytes) behind the trace fields this server adds: Return-Path and Received
//     (RFC 5321 4.4), and Delivered-To when the transaction has exactly one recipient. The
//     spool is parsed once (frontend/message) and stored once per tenant in the blob store:
//     keys are content hashes, so all recipients of a tenant share one body.
//   - For each recipient the Filer (filer.go) decides the target mailboxes: the default one
//     files by the spam verdict of the MTA's filter into the account's \Junk mailbox, by the
//     subaddress detail into the mailbox of that name when it exists (Dovecot's
//     lmtp_save_to_detail_mailbox), and otherwise into INBOX. SieveFiler (sievefiler.go),
//     which strata serve and strata frontend use, runs the account's Sieve scripts
//     between the tenant's before and after scripts and falls back to the default one
//     for the implicit keep and for accounts without scripts. Work that must wait for
//     the store (redirect and vacation mail, duplicate and vacation marks) is registered
//     with Message.OnDelivered and runs only after the recipient's Appends committed.
//   - Each target is one metadata Append. The target mailboxes are looked up while the
//     bodies are stored, and once the bodies are durable all Appends of the transaction go
//     out at once (at most maxConcurrentAppends in flight), so that Raft commits them in
//     one or a few log writes rather than one round trip each. Each keeps its own request
//     ID and dedup key, and its own result: LMTP answers one reply per recipient (RFC 2033
//     4.2), in RCPT order, from that recipient's Appends alone.
//
// Invariants:
//
//   - Nothing answered 250 is lost: the reply for a recipient is sent only after its body is
//     durable in the blob store and its Append has committed on a Raft quorum (the metadata
//     service answers Append after the commit), exactly as IMAP APPEND (frontend/ingest).
//   - Nothing refused is half-stored: a recipient refused at RCPT gets nothing; a refusal at
//     DATA (size, 8-bit data not announced, a body that cannot be stored) comes before any
//     Append. A blob stored for a transaction that then fails is unreferenced and left to
//     the blob collector.
//   - An MTA that retries after a lost reply does not create a duplicate: every Append
//     carries a dedup key, sha256 of the envelope sender, the recipient, the target's index
//     and the hash of the message as received (without the trace fields, which differ per
//     attempt), and the metadata service answers a key it remembers within the tenant's
//     window with the earlier UID instead of appending again. A recipient with several
//     targets whose reply was a 4xx is retried whole; the targets already committed dedup.
//   - Per-recipient headers never force one stored body per recipient: the only one,
//     Delivered-To, is added only when there is exactly one recipient. The one exception
//     is asked for by the user: an account whose Sieve script edits the header (RFC 5293)
//     gets the edited message as a body of its own (editheader.go), for every target of
//     that script run; the other recipients share the message as received. Its dedup key
//     stays that of the message as received, since a retry repeats the same edits.
//   - Sieve side effects follow the store: an account whose Appends failed has sent no
//     redirect or vacation and recorded no mark, so the MTA's retry does not repeat them
//     (an address that expands to several accounts is retried whole, and the accounts
//     that succeeded before run theirs again: vacation marks stop a second response); a
//     runtime error keeps the message in INBOX (RFC 5228 2.10.6); a missing outbound
//     relay drops redirect and vacation (logged, counted) and never fails delivery.
//   - A recipient's reply is its own: one recipient's failure (quota at commit, a mailbox
//     that vanished) does not change another's.
//   - go-smtp serves each connection in one goroutine, except that a BDAT transfer runs
//     LMTPData in a goroutine of its own while commands are read; the envelope is guarded
//     by the session's mutex and LMTPData works on a snapshot of it.
//   - The server serves loopback and private clients only unless Config.AllowPublic: it
//     listens on a loopback, private or wildcard address (CheckListenAddress) and answers a
//     connection from any other source 554 5.7.1 (privateListener); LMTP has no
//     authentication, and whoever reaches it can deliver
//     to every account, including forged spam verdict headers (the MTA's filter must strip
//     or overwrite them, as rspamd and SpamAssassin do).
//   - Shutdown (a draining frontend) ends every session with 421 4.3.0 (RFC 5321 3.8): one
//     between transactions at once, one in a transaction once its recipients are answered;
//     a session that starts during it is refused with the same 421.
//   - Bad input never panics and gets a 5xx with an enhanced status code (RFC 2034): go-smtp
//     answers malformed commands with 500/501/502 5.5.x; this package refuses 8-bit data
//     in a message declared BODY=7BIT and NUL bytes without BODY=BINARYMIME with 554
//     5.6.1, and messages over the size limit with 552 5.3.4. 8-bit data without a BODY
//     parameter is accepted: MTAs relay such mail as they received it (Postfix does unless
//     strict_8bitmime), so refusing it would bounce mail the MTA already accepted. go-smtp recovers panics in
//     each connection and answers 421.
package lmtp
