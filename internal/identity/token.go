package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Admin tokens let tools without a client certificate act as an administrator. A token is
//
//	strata-admin-v1.<claims>.<signature>
//
// where <claims> is the base64url (unpadded) JSON of Claims and <signature> the base64url
// Ed25519 signature of "strata-admin-v1.<claims>" by the cluster's token key. There is one
// algorithm and no header to choose another, so no token can ask to be checked in a weaker
// way. The signing key stays with whoever issues tokens (`strata admin token issue`);
// metadata nodes hold only its public half. A token is a bearer secret: it is sent only over
// TLS (TokenCredentials), and only its ID (jti) and subject are ever logged.
const tokenPrefix = "strata-admin-v1."

// TokenHeader is the gRPC metadata key that carries a token, as "Bearer <token>".
const TokenHeader = "authorization"

const (
	// MaxTokenTTL bounds a token's lifetime at issue.
	MaxTokenTTL = 90 * 24 * time.Hour
	// maxTokenLen bounds what Verify reads; a real token is about 300 bytes.
	maxTokenLen = 2048
	// clockLeeway is how far in the future a token's issue time may be (clock skew).
	clockLeeway = time.Minute
)

// Claims are what a token asserts.
type Claims struct {
	// Subject is the identity URI of the administrator (admin kinds only).
	Subject string `json:"sub"`
	// IssuedAt and Expires are Unix seconds.
	IssuedAt int64 `json:"iat"`
	Expires  int64 `json:"exp"`
	// ID is random and names the token in audit logs.
	ID string `json:"jti"`
	// KeyID names the verification key (KeyID of its public key).
	KeyID string `json:"kid"`
}

// KeyID names a token verification key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateTokenKey makes a new token signing key.
func GenerateTokenKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// MarshalSigningKey encodes a signing key as PEM (PKCS #8 "PRIVATE KEY").
func MarshalSigningKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalVerifyKey encodes a verification key as PEM (PKIX "PUBLIC KEY").
func MarshalVerifyKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadSigningKey reads a PEM Ed25519 private key (MarshalSigningKey).
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("token signing key %s: no PEM PRIVATE KEY block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token signing key %s: %w", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token signing key %s is a %T, not Ed25519", path, key)
	}
	return priv, nil
}

// LoadVerifyKeys reads the PEM Ed25519 public keys (MarshalVerifyKey) in the files; a file
// may hold several, so that a key can be rotated with both keys accepted for a while.
func LoadVerifyKeys(paths ...string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read token verification keys: %w", err)
		}
		n := 0
		for {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			if block.Type != "PUBLIC KEY" {
				return nil, fmt.Errorf("token verification keys %s: a %q block; only PUBLIC KEY belongs here", path, block.Type)
			}
			key, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("token verification keys %s: %w", path, err)
			}
			pub, ok := key.(ed25519.PublicKey)
			if !ok {
				return nil, fmt.Errorf("token verification keys %s: a %T, not Ed25519", path, key)
			}
			keys = append(keys, pub)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("token verification keys %s: no PEM PUBLIC KEY block", path)
		}
	}
	return keys, nil
}

// b64 is strict: a token has one spelling, so no altered copy of it verifies.
var b64 = base64.RawURLEncoding.Strict()

// IssueToken signs a token for an administrator valid for ttl from now.
func IssueToken(priv ed25519.PrivateKey, id Identity, ttl time.Duration, now time.Time) (string, Claims, error) {
	if !id.IsAdmin() {
		return "", Claims{}, fmt.Errorf("tokens are for administrators; %s needs a certificate", id.Kind)
	}
	if _, err := Parse(id.URI()); err != nil {
		return "", Claims{}, err
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", Claims{}, fmt.Errorf("token lifetime %v: must be positive and at most %v", ttl, MaxTokenTTL)
	}
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", Claims{}, err
	}
	claims := Claims{
		Subject:  id.URI(),
		IssuedAt: now.Unix(),
		Expires:  now.Add(ttl).Unix(),
		ID:       hex.EncodeToString(jti[:]),
		KeyID:    KeyID(priv.Public().(ed25519.PublicKey)),
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", Claims{}, err
	}
	signed := tokenPrefix + b64.EncodeToString(body)
	sig := ed25519.Sign(priv, []byte(signed))
	return signed + "." + b64.EncodeToString(sig), claims, nil
}

// Errors of Verify, for tests and callers that tell them apart.
var (
	ErrTokenMalformed = errors.New("admin token is malformed")
	ErrTokenSignature = errors.New("admin token signature does not verify with any configured key")
	ErrTokenExpired   = errors.New("admin token expired")
)

// Verifier checks tokens against a set of verification keys.
type Verifier struct {
	keys map[string]ed25519.PublicKey
	// now is the clock; time.Now when nil.
	now func() time.Time
}

// NewVerifier returns a verifier that accepts tokens signed by any of keys.
func NewVerifier(keys ...ed25519.PublicKey) *Verifier {
	v := &Verifier{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, k := range keys {
		v.keys[KeyID(k)] = k
	}
	return v
}

// WithClock returns a copy of v that reads the time from now (tests).
func (v *Verifier) WithClock(now func() time.Time) *Verifier {
	c := *v
	c.now = now
	return &c
}

// Verify checks a token's form, signature and lifetime and returns the administrator it
// names. Errors never contain the token.
func (v *Verifier) Verify(token string) (Identity, Claims, error) {
	if len(token) > maxTokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return Identity{}, Claims{}, ErrTokenMalformed
	}
	dot := strings.LastIndexByte(token, '.')
	if dot < len(tokenPrefix) {
		return Identity{}, Claims{}, ErrTokenMalformed
	}
	signed, sigText := token[:dot], token[dot+1:]
	body, err := b64.DecodeString(signed[len(tokenPrefix):])
	if err != nil {
		return Identity{}, Claims{}, ErrTokenMalformed
	}
	sig, err := b64.DecodeString(sigText)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Identity{}, Claims{}, ErrTokenMalformed
	}
	var claims Claims
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&claims); err != nil || dec.More() {
		return Identity{}, Claims{}, ErrTokenMalformed
	}
	key, known := v.keys[claims.KeyID]
	if !known || !ed25519.Verify(key, []byte(signed), sig) {
		return Identity{}, Claims{}, ErrTokenSignature
	}
	now := time.Now()
	if v.now != nil {
		now = v.now()
	}
	if now.Unix() >= claims.Expires {
		return Identity{}, claims, ErrTokenExpired
	}
	if time.Unix(claims.IssuedAt, 0).After(now.Add(clockLeeway)) || claims.Expires-claims.IssuedAt > int64(MaxTokenTTL/time.Second) {
		return Identity{}, claims, fmt.Errorf("%w: lifetime out of bounds", ErrTokenMalformed)
	}
	id, err := Parse(claims.Subject)
	if err != nil || !id.IsAdmin() {
		return Identity{}, claims, fmt.Errorf("%w: subject is not an administrator", ErrTokenMalformed)
	}
	return id, claims, nil
}

// TokenCredentials sends an admin token with every call (grpc.WithPerRPCCredentials). It
// requires transport security: a bearer token never crosses a plaintext connection.
type TokenCredentials struct {
	Token string
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t TokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{TokenHeader: "Bearer " + t.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (TokenCredentials) RequireTransportSecurity() bool { return true }
