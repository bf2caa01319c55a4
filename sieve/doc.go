// Package sieve is Strata's Sieve interpreter (RFC 5228 and extensions): a
// library with no I/O that LMTP delivery runs between parsing a message
// and committing it, and that ManageSieve and the CLI use to check scripts
// at upload.
//
// # Design
//
// A script goes through the stages of Go's own go/scanner and go/parser:
//
//   - lexer.go turns source into positioned tokens (RFC 5228 8.1): quoted
//     and multi-line strings, numbers with K/M/G, tags, comments;
//   - parser.go builds an untyped syntax tree (RFC 5228 8.2) and bounds its
//     nesting;
//   - compile.go checks the tree against the extension registry
//     (registry.go) and the script's require list, and produces a Program:
//     every command and test known, every tag enabled by a required
//     capability, argument kinds and counts right, constant arguments
//     validated (comparators, relations, addresses, zones, date parts);
//   - eval.go executes a Program against an Input; result.go collects the
//     actions, merges duplicates, refuses conflicts and renders Outcome.
//
// Each extension lives in its own ext_*.go file with its commands, tests,
// tags, checks and behaviour together, the way Pigeonhole lays them out;
// match.go holds the match types, comparators and relational matching that
// many tests share, message.go the Message interface and header and address
// parsing. Runner (runner.go) runs site scripts before and after the user's
// like Pigeonhole's sieve_before and sieve_after, with its chaining rules
// (checked against sieve-test -s by the corpus's chain/* cases).
//
// # Invariants
//
//   - No I/O and no clock: time comes in Input.Now; mailbox existence,
//     vacation and duplicate tracking and included scripts come through the
//     interfaces in Input that the caller implements. The interpreter never
//     writes state: vacation responses and duplicate IDs to remember come
//     back in the Result.
//   - A script that compiles has no unknown command, test or tag, uses no
//     extension it did not require, and has arguments of the right kind and
//     number; Compile reports the first problem as an *Error with line and
//     column, and never panics on any input (FuzzCompile). What is
//     questionable but runs (a :zone that is no zone) is a warning in
//     Program.Warnings, not an error.
//   - A Program is immutable after Compile and safe for concurrent Execute.
//   - Every execution is bounded: Limits caps script size and nesting at
//     compile time, and steps, actions, redirects and include depth at run
//     time. Matching is O(pattern x value); nothing backtracks
//     exponentially. A runtime error returns with a Result that holds only
//     the implicit keep (RFC 5228 2.10.6), which the caller delivers and
//     records the error.
//   - Outcome() is the normalized form the differential corpus compares
//     with Pigeonhole's sieve-test (sieve/testdata/differential).
//
// # RFCs
//
//	RFC 5228  Sieve                                  Yes
//	RFC 5228  encoded-character (2.4.2.4)            Yes
//	RFC 5429  reject, ereject                        Yes
//	RFC 5232  imap4flags                             Yes
//	RFC 5173  body                                   Yes (charsets: UTF-8, US-ASCII, Latin-1)
//	RFC 5229  variables                              Yes
//	RFC 5230  vacation                               Yes
//	RFC 6131  vacation-seconds                       Yes
//	RFC 5231  relational, i;ascii-numeric            Yes
//	RFC 5233  subaddress                             Yes
//	RFC 3894  copy                                   Yes
//	RFC 5260  date, index                            Yes
//	RFC 5490  mailbox                                Yes (mailbox only, not metadata)
//	RFC 6609  include                                Yes
//	RFC 5235  spamtest, spamtestplus, virustest      Yes
//	RFC 7352  duplicate                              Yes
//	RFC 8579  special-use                            Yes
//	RFC 5293  editheader                             Yes
//	RFC 5183  environment                            Yes
package sieve
