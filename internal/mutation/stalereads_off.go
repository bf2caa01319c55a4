//go:build !jepsen_mutation_stalereads

package mutation

// StaleReads is the switch of the jepsen_mutation_stalereads build (see the package doc).
const StaleReads = false
