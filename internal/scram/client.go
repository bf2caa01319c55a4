package scram

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Client is the client half of one SCRAM exchange (RFC 5802 3, 5), for tests and the
// benchmark: First, then Final with the server-first-message, then Verify with the
// server-final-message.
type Client struct {
	Hash     Hash
	Username string
	Password string
	// GS2Header is the gs2-header (RFC 5802 7); "n,," when empty. A -PLUS exchange sets
	// "p=tls-exporter,," and ChannelBinding.
	GS2Header string
	// ChannelBinding is the channel binding data (RFC 9266 2: tls-exporter) sent after the
	// gs2 header in c=.
	ChannelBinding []byte
	// Nonce is the client nonce; a random one when empty.
	Nonce string
	// SaltedPassword, when set, is used instead of deriving it from Password: a client
	// that cached it for the server's salt and iteration count (RFC 5802 5.1 allows it).
	SaltedPassword []byte

	clientFirstBare string
	authMessage     string
	salted          []byte
}

// First returns the client-first-message.
func (c *Client) First() []byte {
	if c.GS2Header == "" {
		c.GS2Header = "n,,"
	}
	if c.Nonce == "" {
		c.Nonce = NewNonce()
	}
	c.clientFirstBare = "n=" + EscapeName(c.Username) + ",r=" + c.Nonce
	return []byte(c.GS2Header + c.clientFirstBare)
}

// Final returns the client-final-message answering serverFirst.
func (c *Client) Final(serverFirst []byte) ([]byte, error) {
	attrs := strings.Split(string(serverFirst), ",")
	if len(attrs) < 3 || !strings.HasPrefix(attrs[0], "r=") || !strings.HasPrefix(attrs[1], "s=") || !strings.HasPrefix(attrs[2], "i=") {
		return nil, fmt.Errorf("malformed server-first-message %q", serverFirst)
	}
	nonce := attrs[0][2:]
	if !strings.HasPrefix(nonce, c.Nonce) || len(nonce) == len(c.Nonce) {
		return nil, errors.New("server nonce does not extend the client's") // RFC 5802 5.1 r=
	}
	salt, err := base64.StdEncoding.DecodeString(attrs[1][2:])
	if err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	iterations, err := strconv.Atoi(attrs[2][2:])
	if err != nil || iterations < 1 || iterations > MaxIterations {
		return nil, fmt.Errorf("iteration count %q", attrs[2][2:])
	}
	c.salted = c.SaltedPassword
	if c.salted == nil {
		c.salted = c.Hash.SaltedPassword(c.Password, salt, iterations)
	}
	cbind := base64.StdEncoding.EncodeToString(append([]byte(c.GS2Header), c.ChannelBinding...))
	withoutProof := "c=" + cbind + ",r=" + nonce
	c.authMessage = c.clientFirstBare + "," + string(serverFirst) + "," + withoutProof
	proof := c.Hash.ClientProof(c.salted, c.authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks the server-final-message: the server proves it holds ServerKey.
func (c *Client) Verify(serverFinal []byte) error {
	s := string(serverFinal)
	if strings.HasPrefix(s, "e=") {
		return fmt.Errorf("server error %q", s[2:])
	}
	if !strings.HasPrefix(s, "v=") {
		return fmt.Errorf("malformed server-final-message %q", s)
	}
	got, err := base64.StdEncoding.DecodeString(s[2:])
	if err != nil {
		return fmt.Errorf("server signature: %w", err)
	}
	serverKey := c.Hash.hmac(c.salted, "Server Key")
	if !hmac.Equal(got, c.Hash.ServerSignature(serverKey, c.authMessage)) {
		return errors.New("wrong server signature")
	}
	return nil
}

// NewNonce returns a random printable nonce (RFC 5802 7: printable, no ","): 18 random
// bytes in base64, 144 bits.
func NewNonce() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// EscapeName encodes a user name for n= and a= (RFC 5802 5.1): "=" as "=3D", "," as "=2C".
func EscapeName(name string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(name)
}

// UnescapeName decodes n= and a= values; false when an "=" is not followed by 2C or 3D
// (RFC 5802 5.1: the server MUST fail the authentication).
func UnescapeName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}
