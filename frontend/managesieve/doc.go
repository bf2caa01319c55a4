// Package managesieve is Strata's ManageSieve server (RFC 5804): the protocol mail clients
// and webmail use to upload, check, list, activate and delete the Sieve scripts that LMTP
// delivery runs (sieve/ is the interpreter, metadata/ stores the scripts in the replicated
// state through the Metadata gRPC API).
//
// # Design
//
// The layout follows frontend/imap, smaller:
//
//   - sievewire/ reads commands (RFC 5804 4): a name, then strings (quoted, or literals
//     "{n+}" and "{n}") and numbers, to CRLF. It does no I/O but its bufio.Reader and
//     is fuzzed alone (sievewire.FuzzReadCommand). respond.go renders status lines and
//     strings and maps service errors to the response codes of RFC 5804 1.3.
//   - dispatch.go is the command table: handler, the states a command runs in, and the
//     kinds of its arguments, checked before the handler runs.
//   - session.go: CAPABILITY, LOGOUT, NOOP, STARTTLS, AUTHENTICATE, UNAUTHENTICATE;
//     scripts.go: HAVESPACE, PUTSCRIPT, CHECKSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT,
//     DELETESCRIPT, RENAMESCRIPT.
//   - server.go and conn.go: the connection limit, the greeting, timeouts, shutdown; the
//     accept loop, the registry of connections (one goroutine each, panics recovered) and
//     the graceful close are IMAP's too (frontend/connserver).
//
// Authentication is IMAP's: the same SASL mechanisms (frontend/sasl: SCRAM-SHA-256, -PLUS
// over TLS, PLAIN), the same password check against the metadata service (frontend/auth,
// with app passwords scoped to managesieve) and the same plaintext policy. STARTTLS uses the
// tls.Config IMAP uses (imap.KeyPair), so a certificate reload reaches both.
//
// # Invariants
//
//   - A script is stored only if sieve.Compile accepts it with the extensions the server
//     announces in SIEVE; one that does not compile is answered NO with its line and column
//     and never reaches the service (RFC 5804 2.6). SETACTIVE compiles the stored script
//     again before it becomes the one delivery runs.
//   - Bounded memory per connection: a command line outside literals is at most
//     Limits.MaxLine octets (longer: BYE); the literals of one command kept in memory are at
//     most Limits.MaxScriptSize octets together; a larger literal is read and dropped and
//     the command refused with QUOTA/MAXSIZE, and one over Limits.MaxDiscard ends the
//     connection (BYE), since the next command cannot be found without reading it.
//   - A command that cannot be parsed is skipped whole (with any literal its line
//     announces) and answered NO, so the next command is read in step; too many bad
//     commands in a row end the session with BYE. Nothing a client sends panics the server;
//     a panic in a handler is recovered and logged with the connection.
//   - One goroutine serves a connection and is its only writer; responses are buffered
//     and flushed once per command, every write has a deadline (Limits.WriteTimeout) and
//     every wait for a command a timer (LoginTimeout, then IdleTimeout).
//   - STARTTLS replaces the reader after its OK: plaintext pipelined behind it is dropped.
//     A password is accepted only where frontend/auth's policy allows plaintext (TLS, or
//     loopback when trusted); elsewhere AUTHENTICATE PLAIN is NO (ENCRYPT-NEEDED) and SASL
//     announces only SCRAM-SHA-256, which sends no password, beside STARTTLS (RFC 5804 1.7).
//   - AUTHENTICATE goes through frontend/sasl and IMAP's auth.Logins: a password meets the
//     metadata leader's brute-force guard, its delays waited out before the check; every
//     refusal (password, SCRAM proof, token) logs one fail2ban line; a login refused
//     unchecked (locked out, throttled too long) is NO (TRYLATER).
//   - Connections over Limits.MaxConnections or MaxConnectionsPerIP (client addresses, after
//     a trusted PROXY header; loopback not counted) are told BYE (TRYLATER) and closed.
//   - The service is the authority on names (RFC 5804 1.6), limits, the active script and
//     what exists; its refusals come back as RFC 5804 response codes (ACTIVE, NONEXISTENT,
//     ALREADYEXISTS, QUOTA/MAXSIZE, QUOTA/MAXSCRIPTS, TRYLATER), never as a dropped
//     connection. Every call has a deadline derived from the connection's context.
//
// # RFCs
//
//	RFC 5804  ManageSieve                   Yes: no referrals, no sieve: URLs;
//	                                        UNAUTHENTICATE (2.14.1); OK (SASL ...) (2.1)
//	RFC 4616  SASL PLAIN                    Yes (no proxy authorization)
//	RFC 7677  SASL SCRAM-SHA-256            Yes (frontend/sasl)
//	RFC 9266  SCRAM-SHA-256-PLUS            Yes: tls-exporter channel binding over TLS
//	RFC 7628  SASL OAUTHBEARER              Yes, and XOAUTH2 (frontend/sasl, frontend/oauth)
//	RFC 5435  enotify (NOTIFY capability)   No: announced only if the interpreter has it
package managesieve
