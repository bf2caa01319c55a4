// Package bench is Strata's IMAP load generator and benchmark toolkit, behind
// `strata bench`. It speaks IMAP itself (imapconn.go) so that it can pipeline LITERAL+ APPENDs
// and check every response it reads, and it measures any IMAP4rev1 server with LITERAL+ and
// UIDPLUS, Strata and Dovecot alike.
//
//   - profile.go parses a weighted workload ("login=1,select=5,fetch-body=10,...");
//   - corpus.go generates realistic messages deterministically from a seed;
//   - stats.go keeps bounded-memory latency histograms and error counts;
//   - loadgen.go runs the mixed workload, in a closed loop or, with Config.Rate, open-loop
//     (openloop.go: operations due at a fixed rate, Poisson or uniform, each timed from when it
//     was due, so that servers are compared at the same offered load without coordinated
//     omission); cycle.go the login-per-session cycle (imaptest's shape: each client repeats
//     connect, LOGIN, SELECT, FETCH, STORE, APPEND, EXPUNGE, LOGOUT), populate.go fills
//     mailboxes, scenarios.go holds the big-mailbox and
//     idle-connection scenarios, report.go prints tables, JSON and ratios;
//   - lmtp.go is the LMTP delivery load (`strata bench lmtp`), a go-smtp client in LMTP mode
//     (RFC 2033) against Strata's or Dovecot's LMTP;
//   - vm/idle-vm.sh (manual, not in `make test`) runs the idle scenario in a qemu guest whose
//     /init is vm/init (a static Go program as PID 1), where one `strata serve` may hold more
//     descriptors than the host's hard limit allows (100,000 IDLE connections, issue 14).
//
// Invariant: an operation is counted as a success only when the server answered OK and the
// answer holds what was asked for (the requested items for the requested messages, APPENDUID
// for APPEND, known UIDs for SEARCH, a 250 for every RCPT and one 250 per recipient after an LMTP
// DATA); anything else is counted as an error of a named kind.
package bench
