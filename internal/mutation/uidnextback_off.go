//go:build !jepsen_mutation_uidnextback

package mutation

// UIDNextBack is the switch of the jepsen_mutation_uidnextback build (see the package doc).
const UIDNextBack = false
