// Package mutation holds the switches of the deliberately broken builds that the
// consistency checker (jepsen/, issue 13) is tested against: each is a constant that is
// false in every normal build and true only when the binary is built with its tag, so the
// compiler removes the broken path from a production binary entirely.
//
//	jepsen_mutation_ackuncommitted  a frontend acknowledges an APPEND whose commit it never
//	                                saw (the metadata call failed or timed out)
//	jepsen_mutation_stalereads      session reads go to followers without the session's
//	                                read point, so a follower that lags serves them
//	jepsen_mutation_uidnextback     a snapshot restore sets every mailbox's UIDNEXT one lower
//
// A test of the checker builds `strata` with one tag at a time and expects a short seeded run
// to report an anomaly (e2e/jepsen_test.go). Nothing else may read these constants.
package mutation
