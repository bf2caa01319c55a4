// Package spam talks to rspamd and turns its verdicts into a score: scanning at delivery
// through rspamd's HTTP API, the verdict as the value Sieve's spamtest and spamtestplus read
// (RFC 5235), and learning from what users file as spam or not spam. Reading the verdict
// headers an MTA's filter already added is frontend/lmtp's (SpamVerdict); ScoreOf puts that
// score on the same scale.
//
// # Design
//
// Checker (check.go) posts a message to the normal worker's /checkv2 with the envelope as
// the request headers rspamd reads (From, Rcpt per recipient, IP, Helo, Hostname,
// Deliver-To, Queue-Id, User) and parses the JSON answer: action, score, required_score
// (the reject score) and symbols. A call is bounded by its timeout. When rspamd cannot be
// reached, times out or answers without a verdict, the Checker fails open (the message is
// delivered untested, sieve.Score{} for spamtest: "0", RFC 5235 3.1) or, configured so,
// fails closed with an error wrapping ErrUnavailable that delivery answers with a
// temporary failure so the MTA retries.
//
// Verdict.SieveScore (score.go) maps the verdict onto RFC 5235's scales: rspamd's reject
// action is certain spam (spamtest 10, spamtestplus 100%); otherwise the score is placed
// linearly between 0 (1, 0%) and the reject score (10, 100%). A GTUBE message comes back
// from rspamd as is_skipped with a pre-result "reject": that is a verdict, not a skip.
//
// Learner (learn.go) teaches rspamd's Bayes classifier through the controller's
// /learnspam and /learnham, with its password in the Password header and the account in
// Deliver-To (for a per-user classifier). Learn only puts a job on a bounded queue and
// returns; a fixed set of workers open the message (OpenFunc: frontend/imap's reads it from
// the metadata service and the blob store, in the worker's time, never the IMAP
// command's), post it, and retry failures with exponential backoff. rspamd's 204 (too few
// tokens, learn condition) and 208 (already learnt) end a job as skipped; 401/403 and
// other 4xx, and a message that is gone, end it as failed without retry.
//
// Config (config.go) is the --rspamd-* flags of `strata serve` and `strata frontend`;
// Learner is a Prometheus collector of its counters (metrics.go).
//
// # Invariants
//
//   - Learn never blocks and never fails: a job that does not fit the queue, or comes
//     after Close, is dropped and counted in Dropped; every job queued (Accepted) ends in
//     exactly one of LearnedSpam, LearnedHam, Skipped, Failures or Dropped.
//   - Check's error is either the caller's (a bad envelope value, an unreadable message),
//     whatever the fail mode, or, with FailClosed only, one wrapping ErrUnavailable. With
//     fail-open a scanner failure is never an error; it is counted in Failures.
//   - No request is sent with a header value holding a line break or NUL; such a value is
//     refused before anything is sent.
//   - Every request has a deadline (the timeout), and Close cancels those in flight.
package spam
