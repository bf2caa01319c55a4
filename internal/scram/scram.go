// Package scram is the arithmetic of SCRAM (RFC 5802 3, RFC 7677): deriving the keys a
// server stores from a password, checking a client proof against them, and the server
// signature. The metadata service derives the keys when a password is set; the frontend's
// SASL server (frontend/sasl) checks proofs; the client half (Client) serves tests and
// the benchmark. No I/O.
//
// Invariants:
//
//   - Keys are derived from the password normalized as RFC 5802 2.2 asks (SASLprep, here
//     its successor, the PRECIS OpaqueString profile of RFC 8265 4.2, which RFC 7677 allows);
//     a password PRECIS refuses is used as given, as most clients do.
//   - Comparisons of keys and signatures are constant time.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"hash"

	"golang.org/x/text/secure/precis"
)

// Hash is the hash function of a SCRAM mechanism family (RFC 5802 4).
type Hash struct {
	// Name is the hash's name in the mechanism name and the stored keys: "SHA-256", "SHA-1".
	Name string
	New  func() hash.Hash
}

var (
	// SHA256 is SCRAM-SHA-256 (RFC 7677).
	SHA256 = Hash{Name: "SHA-256", New: sha256.New}
	// SHA1 is SCRAM-SHA-1 (RFC 5802), kept for old clients; offered only when configured.
	SHA1 = Hash{Name: "SHA-1", New: sha1.New}
)

// Iteration counts. RFC 7677 4 asks for at least 4096 with SHA-256. Strata's default is 16
// times that: the stored keys are the weakest stored form of a password (PBKDF2, where
// PLAIN's hash is argon2id), so their count sets what a stolen store costs to attack; 65536
// rounds cost about 16 ms per guess on one core here (BenchmarkDerive, docs/benchmarks.md),
// near the ~40 ms of the argon2id hash. A login pays it once on the client (Cyrus SASL
// derives at every login; a phone is a few times slower) and not at all on the server,
// which only hashes and XORs, so the count is cheap for the server to raise.
const (
	MinIterations     = 4096
	DefaultIterations = 65536
	// MaxIterations bounds the work a stored record can ask of the service.
	MaxIterations = 10_000_000
	// SaltLen is the salt length the service draws, in bytes.
	SaltLen = 16
)

// Keys are what a server keeps of a password (RFC 5802 3).
type Keys struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Normalize is the password preparation of RFC 5802 2.2.
func Normalize(password string) string {
	if p, err := precis.OpaqueString.String(password); err == nil {
		return p
	}
	return password
}

// SaltedPassword is Hi(Normalize(password), salt, i) of RFC 5802 3: PBKDF2 with HMAC.
func (h Hash) SaltedPassword(password string, salt []byte, iterations int) []byte {
	key, err := pbkdf2.Key(h.New, Normalize(password), salt, iterations, h.New().Size())
	if err != nil {
		// pbkdf2.Key fails only for FIPS-only key sizes and invalid parameters, which the
		// iteration bounds above exclude.
		panic("scram: pbkdf2: " + err.Error())
	}
	return key
}

// Derive returns the keys of password with salt and iterations (RFC 5802 3).
func (h Hash) Derive(password string, salt []byte, iterations int) Keys {
	return h.keys(h.SaltedPassword(password, salt, iterations), salt, iterations)
}

func (h Hash) keys(salted, salt []byte, iterations int) Keys {
	clientKey := h.hmac(salted, "Client Key")
	return Keys{
		Salt:       salt,
		Iterations: iterations,
		StoredKey:  h.sum(clientKey),
		ServerKey:  h.hmac(salted, "Server Key"),
	}
}

func (h Hash) hmac(key []byte, msg string) []byte {
	m := hmac.New(h.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (h Hash) sum(b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

// VerifyProof reports whether proof is the ClientProof of authMessage for storedKey:
// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), then H(ClientKey) must be
// StoredKey (RFC 5802 3).
func (h Hash) VerifyProof(storedKey []byte, authMessage string, proof []byte) bool {
	signature := h.hmac(storedKey, authMessage)
	if len(proof) != len(signature) {
		return false
	}
	clientKey := make([]byte, len(proof))
	subtle.XORBytes(clientKey, proof, signature)
	return subtle.ConstantTimeCompare(h.sum(clientKey), storedKey) == 1
}

// ServerSignature is HMAC(ServerKey, AuthMessage) (RFC 5802 3), sent in server-final-message.
func (h Hash) ServerSignature(serverKey []byte, authMessage string) []byte {
	return h.hmac(serverKey, authMessage)
}

// ClientProof is ClientKey XOR HMAC(StoredKey, AuthMessage) from the salted password (RFC
// 5802 3), the client's half.
func (h Hash) ClientProof(salted []byte, authMessage string) []byte {
	clientKey := h.hmac(salted, "Client Key")
	signature := h.hmac(h.sum(clientKey), authMessage)
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, signature)
	return proof
}
