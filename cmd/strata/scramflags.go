package main

import (
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/internal/scram"
	"github.com/strata-mail/strata/metadata"
)

// addScramFlags adds the SCRAM key derivation flags of the processes that set passwords
// (metadata, serve).
func addScramFlags(f *pflag.FlagSet) {
	f.Int("scram-iterations", scram.DefaultIterations, "PBKDF2 iterations of the SCRAM keys derived when a password is set (RFC 7677: at least 4096; a client pays them at every SCRAM login, see internal/scram)")
	addScramSHA1Flag(f)
}

// addScramSHA1Flag adds --scram-sha1, which the metadata service reads to derive SCRAM-SHA-1
// keys and frontends to offer the mechanism.
func addScramSHA1Flag(f *pflag.FlagSet) {
	f.Bool("scram-sha1", false, "also SCRAM-SHA-1 (RFC 5802) for old clients: the metadata service derives its keys at each password change, frontends offer it")
}

func scramConfig(f *pflag.FlagSet) metadata.ScramConfig {
	iterations, _ := f.GetInt("scram-iterations")
	sha1, _ := f.GetBool("scram-sha1")
	return metadata.ScramConfig{Iterations: iterations, SHA1: sha1}
}
