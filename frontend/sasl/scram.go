package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/internal/scram"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// tlsExporterLabel and tlsExporterLen are the tls-exporter channel binding (RFC 9266 2):
// 32 bytes of keying material exported with this label and no context.
const (
	tlsExporterLabel = "EXPORTER-Channel-Binding"
	tlsExporterLen   = 32
	tlsExporterName  = "tls-exporter"
	// maxNonceLen bounds the client nonce kept and echoed (RFC 5802 leaves it open).
	maxNonceLen = 256
)

// channelBinding returns the connection's tls-exporter data, false when it has none
// (no TLS, or TLS 1.2 without the extended master secret, where Go refuses to export and
// RFC 9266 2 forbids it).
func (c *Conn) channelBinding() ([]byte, bool) {
	if c.TLS == nil {
		return nil, false
	}
	data, err := c.TLS.ExportKeyingMaterial(tlsExporterLabel, nil, tlsExporterLen)
	return data, err == nil
}

func channelBindingOffered(c *Conn) bool {
	_, ok := c.channelBinding()
	return ok
}

// scramExchange is the server side of SCRAM (RFC 5802 3, 5; RFC 7677), with tls-exporter
// channel binding in the -PLUS form (RFC 5802 6, RFC 9266).
type scramExchange struct {
	c    *Conn
	hash scram.Hash
	plus bool

	step            int    // 0: awaiting client-first, 1: awaiting client-final
	username        string // as the client gave it (n=), for Logins; "" until parsed
	asked           bool
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce
	creds           *metadatapb.ScramCredentials
	known           bool // false: made-up credentials, the exchange fails at the proof
}

func startScram(h scram.Hash, plus bool) func(*Conn) Exchange {
	return func(c *Conn) Exchange { return &scramExchange{c: c, hash: h, plus: plus} }
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Next runs a step and settles the outcome through Logins (auth.Logins.Settle): the
// metadata leader's brute-force guard admits it (else the exchange ends in
// auth.ErrTooManyFailures, whatever the proof) and counts it, and a refusal (a wrong
// proof, a refused channel binding, a malformed or unauthorized message) is logged in the
// fail2ban line; the metadata service failing is counted as an error.
func (s *scramExchange) Next(ctx context.Context, response []byte) (Step, error) {
	step, err := s.next(ctx, response)
	var outcome auth.Outcome
	switch {
	case err == nil && !step.Done:
		return step, nil
	case err == nil:
		outcome = auth.Success
	case errors.Is(err, ErrAuthFailed), errors.Is(err, ErrAuthorization), errors.Is(err, ErrMalformed):
		outcome = auth.Failure
	default:
		outcome = auth.Unchecked
	}
	if serr := s.c.Logins.Settle(ctx, s.c.Metadata, s.c.attempt(s.username), outcome, auth.ReasonProof, s.c.log()); serr != nil {
		return Step{}, serr
	}
	return step, err
}

func (s *scramExchange) next(ctx context.Context, response []byte) (Step, error) {
	switch s.step {
	case 0:
		if response == nil && !s.asked {
			// RFC 4422 3.3: SCRAM is client-first; without an initial response an empty
			// challenge asks for the client-first-message.
			s.asked = true
			return Step{Challenge: []byte{}}, nil
		}
		return s.clientFirst(ctx, string(response))
	case 1:
		return s.clientFinal(string(response))
	}
	return Step{}, malformed("SCRAM exchange already ended")
}

// clientFirst reads client-first-message (RFC 5802 7) and answers server-first-message.
func (s *scramExchange) clientFirst(ctx context.Context, msg string) (Step, error) {
	// gs2-header = gs2-cbind-flag "," [ authzid ] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return Step{}, malformed("no gs2 header")
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return Step{}, malformed("no gs2 header")
	}
	s.gs2Header = msg[:len(msg)-len(bare)]
	switch {
	case flag == "p="+tlsExporterName:
		// RFC 5802 6: channel binding with a mechanism that is not -PLUS must fail.
		if !s.plus {
			return Step{}, ErrAuthFailed
		}
	case strings.HasPrefix(flag, "p="):
		// RFC 5802 6: a channel binding type the server does not support
		// (tls-unique, tls-server-end-point): e=unsupported-channel-binding-type.
		return Step{}, ErrAuthFailed
	case flag == "y":
		// RFC 5802 6: the client supports channel binding but thinks the server does
		// not; when the server offered a -PLUS mechanism, this is a downgrade.
		if s.plus || channelBindingOffered(s.c) {
			return Step{}, ErrAuthFailed
		}
	case flag == "n":
		if s.plus { // RFC 5802 6: -PLUS requires channel binding
			return Step{}, ErrAuthFailed
		}
	default:
		return Step{}, malformed("gs2-cbind-flag %q", flag)
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 {
		return Step{}, malformed("client-first-message has no n= and r=")
	}
	if strings.HasPrefix(attrs[0], "m=") {
		// RFC 5802 5.1 m: an extension the server does not support must fail it.
		return Step{}, ErrAuthFailed
	}
	if !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return Step{}, malformed("client-first-message must start n=...,r=...")
	}
	username, ok := scram.UnescapeName(attrs[0][2:])
	if !ok || username == "" {
		return Step{}, malformed("user name %q", attrs[0][2:])
	}
	s.username = username
	if authzid != "" {
		if !strings.HasPrefix(authzid, "a=") {
			return Step{}, malformed("authzid %q", authzid)
		}
		if name, ok := scram.UnescapeName(authzid[2:]); !ok || !strings.EqualFold(name, username) {
			return Step{}, ErrAuthorization
		}
	}
	clientNonce := attrs[1][2:]
	if clientNonce == "" || len(clientNonce) > maxNonceLen || !printable(clientNonce) {
		return Step{}, malformed("client nonce") // RFC 5802 7: printable, no ","
	}
	s.clientFirstBare = bare
	email := strings.ToLower(username)
	callCtx, cancel := s.c.callContext(ctx)
	creds, err := s.c.Metadata.GetScramCredentials(callCtx, &metadatapb.GetScramCredentialsRequest{Email: email, Hash: s.hash.Name})
	cancel()
	switch {
	case err == nil && creds.GetIterations() >= 1 && creds.GetIterations() <= scram.MaxIterations:
		s.creds, s.known = creds, true
	case err == nil || status.Code(err) == codes.NotFound:
		// An unknown account, or one whose password predates SCRAM: go on with made-up
		// keys that stay the same for the name, so the answer does not tell them apart.
		s.creds = madeUpCredentials(s.hash, email)
	default:
		return Step{}, err
	}
	s.nonce = clientNonce + scram.NewNonce()
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.creds.GetSalt()) +
		",i=" + strconv.FormatUint(uint64(s.creds.GetIterations()), 10)
	s.step = 1
	return Step{Challenge: []byte(s.serverFirst)}, nil
}

// clientFinal reads client-final-message (RFC 5802 7): the channel binding, the nonce and
// the proof, and answers server-final-message.
func (s *scramExchange) clientFinal(msg string) (Step, error) {
	s.step = 2
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return Step{}, malformed("client-final-message has no proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+len(",p="):]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return Step{}, malformed("client-final-message must start c=...,r=...")
	}
	cbind, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil {
		return Step{}, malformed("channel binding: %v", err)
	}
	// RFC 5802 7 c=: the gs2 header of client-first, then the channel binding data when
	// the client used channel binding. RFC 9266: the data is this connection's
	// tls-exporter, which a man in the middle with another TLS session cannot produce.
	want := []byte(s.gs2Header)
	if s.plus {
		data, ok := s.c.channelBinding()
		if !ok {
			return Step{}, ErrAuthFailed
		}
		want = append(want, data...)
	}
	if subtle.ConstantTimeCompare(cbind, want) != 1 {
		return Step{}, ErrAuthFailed
	}
	// RFC 5802 5.1 r=: the nonce must be the one this exchange made; a replayed
	// client-final-message carries the nonce of another exchange.
	if subtle.ConstantTimeCompare([]byte(attrs[1][2:]), []byte(s.nonce)) != 1 {
		return Step{}, ErrAuthFailed
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil {
		return Step{}, malformed("proof: %v", err)
	}
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	if !s.hash.VerifyProof(s.creds.GetStoredKey(), authMessage, proof) || !s.known {
		return Step{}, ErrAuthFailed
	}
	signature := s.hash.ServerSignature(s.creds.GetServerKey(), authMessage)
	return Step{Done: true, Account: s.creds.GetAccount(), Final: []byte("v=" + base64.StdEncoding.EncodeToString(signature))}, nil
}

// printable is RFC 5802 7 printable: %x21-2B / %x2D-7E.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// madeUpKey makes the salts of made-up credentials; it never leaves the process.
var madeUpKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
})

// madeUpCredentials are keys no password matches, with a salt that is the same for a name
// across exchanges (a real account's is), and the default iteration count.
func madeUpCredentials(h scram.Hash, email string) *metadatapb.ScramCredentials {
	mac := hmac.New(sha256.New, madeUpKey())
	mac.Write([]byte(h.Name + "\x00" + email))
	sum := mac.Sum(nil)
	return &metadatapb.ScramCredentials{
		Hash: h.Name, Salt: sum[:scram.SaltLen], Iterations: scram.DefaultIterations,
		StoredKey: make([]byte, h.New().Size()), ServerKey: make([]byte, h.New().Size()),
	}
}
