package metadata

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: the OWASP Password Storage Cheat Sheet minimum (m=19 MiB,
// t=2, p=1), 16-byte salt, 32-byte key.
const (
	argonMemoryKiB = 19456
	argonTime      = 2
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
	// maxPasswordLen bounds the work a caller can ask for.
	maxPasswordLen = 1024
)

var b64 = base64.RawStdEncoding

// HashPassword returns an argon2id hash in PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

type argonHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parseArgonHash(phc string) (*argonHash, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, errors.New("not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return nil, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	h := &argonHash{}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &h.threads); err != nil {
		return nil, fmt.Errorf("argon2 parameters %q: %w", parts[3], err)
	}
	if h.memory == 0 || h.memory > 1<<20 || h.time == 0 || h.time > 16 || h.threads == 0 {
		return nil, fmt.Errorf("argon2 parameters %q out of range", parts[3])
	}
	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil {
		return nil, fmt.Errorf("argon2 salt: %w", err)
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) == 0 {
		return nil, fmt.Errorf("argon2 key: %w", err)
	}
	return h, nil
}

// dummyHash is verified against when there is no usable hash, so that unknown,
// disabled and password-less accounts take as long to refuse as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("strata dummy password")
	if err != nil {
		panic(fmt.Sprintf("hash dummy password: %v", err))
	}
	return h
})

// argonSlots bounds the password verifications that run at once to twice the number of
// CPUs. Each one holds argonMemoryKiB (19 MiB) while it runs and is CPU-bound, so many more
// at once finish no sooner but hold more memory: 32 concurrent LOGINs took 600 MiB, which
// the runtime then kept from the OS. Waiters are served in order.
var argonSlots = make(chan struct{}, 2*runtime.GOMAXPROCS(0))

// VerifyPassword reports whether password matches the PHC hash, in constant time
// with respect to the key.
func VerifyPassword(phc, password string) bool {
	h, err := parseArgonHash(phc)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// credentialStampLen is the length of a credential stamp: 128 bits, too many to guess.
const credentialStampLen = 16

// credentialStamp names the stored password hash phc for the frontends' verified-credentials
// cache (Account.credential_stamp): it changes whenever the hash does, and a new hash has
// a new random salt, so a SetPassword (even to the same password) and a delete and
// re-create change it. It is a one-way digest of the PHC string, which it does not reveal
// and which is itself only testable with the full argon2id work, so holding it makes no
// password cheaper to guess.
func credentialStamp(phc string) []byte {
	sum := sha256.Sum256([]byte("strata credential stamp\x00" + phc))
	return sum[:credentialStampLen]
}
