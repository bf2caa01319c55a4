// Package outbound builds and sends the mail a delivery generates: Sieve
// redirects (RFC 5228 4.2), vacation replies (RFC 5230, RFC 3834) and the
// rejection notices of reject (RFC 5429 2.2, an MDN per RFC 8098). Nothing
// else sends mail from Strata.
//
// # Design
//
//   - build.go turns a delivered message and a sieve.Action into an
//     Envelope and the bytes of the message to send, or says why none goes
//     out (loop protection, a null sender). It has no I/O.
//   - spool.go keeps the queue on disk: one file per message holding its
//     envelope and bytes, written to tmp/, fsynced and renamed into place,
//     so a message is either whole in the spool or absent.
//   - queue.go is the Queue: Enqueue puts a message in the spool and
//     returns; one sender goroutine hands due messages to the relay
//     (relay.go, go-smtp's client with STARTTLS or implicit TLS and AUTH
//     PLAIN) and schedules a failed attempt again with exponential backoff
//     and jitter.
//
// # RFCs
//
//	RFC 5321 (SMTP)         client side: envelope, 4yz/5yz, RSET; Yes
//	RFC 3207 (STARTTLS)     may, starttls; the EHLO before TLS names "localhost"
//	RFC 8314 3.3            implicit TLS (--smtp-relay-tls tls)
//	RFC 4954, RFC 4616      AUTH PLAIN only
//	RFC 6531                SMTPUTF8 when an address needs it, else a permanent failure
//	RFC 5228 4.2            redirect: message unchanged, <> kept, loop control by fields
//	RFC 5230 5, RFC 3834    vacation reply from <>, Auto-Submitted, threading; :mime
//	RFC 5429 2.2, RFC 8098  reject notice as an MDN, disposition "deleted"; ereject is
//	                        refused in LMTP itself and sends nothing here
//
// # Invariants
//
//   - Enqueue returns nil only after the message is durable in the spool
//     (file and directory fsynced); a full spool is an error wrapping
//     ErrSpoolFull, never a silent drop.
//   - Enqueue never talks to the relay: a relay that is down or slow never
//     blocks delivery. Only the sender goroutine does network I/O.
//   - A spool file is removed only after the relay accepted the message
//     for every recipient (250 after DATA), refused it permanently (5xx, or
//     SMTPUTF8 needed and not offered), or after it stayed longer than
//     MaxAge; each of these is logged and counted. A temporary failure
//     (4xx, network, TLS, AUTH) keeps it. A file that cannot be read back
//     is moved to bad/ for a human, never deleted.
//   - The password is sent only over TLS whose certificate was verified,
//     or to a relay on a loopback address.
package outbound
