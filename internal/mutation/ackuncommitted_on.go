//go:build jepsen_mutation_ackuncommitted

package mutation

// AckUncommitted is the switch of the jepsen_mutation_ackuncommitted build (see the package doc).
const AckUncommitted = true
