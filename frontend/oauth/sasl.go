package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/strata-mail/strata/internal/scram"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// ErrMalformed is a client message that is not what its mechanism defines.
var ErrMalformed = errors.New("malformed OAuth SASL message")

// MaxMessage bounds a decoded client message (and so a token).
const MaxMessage = 32 << 10

// Mechanism names (RFC 7628 3; Google's XOAUTH2).
const (
	OAuthBearer = "OAUTHBEARER"
	XOAuth2     = "XOAUTH2"
)

// ClientResponse is what an OAUTHBEARER or XOAUTH2 client message carries.
type ClientResponse struct {
	// User is the authorization identity (OAUTHBEARER's gs2 "a=", XOAUTH2's "user="),
	// "" when the client gave none.
	User  string
	Token string
	// Dummy is RFC 7628 3.2.3's lone %x01: the client's answer to an error challenge.
	Dummy bool
}

// ParseOAuthBearer parses an OAUTHBEARER client message, RFC 7628 3.1:
//
//	client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep
//	kvpair      = key "=" value kvsep
//	kvsep       = %x01
//
// with the gs2-header of RFC 5801 4 (channel binding not supported: "n" or "y") and the
// token in the "auth" pair as "Bearer" 1*SP b64token (RFC 6750 2.1).
func ParseOAuthBearer(msg []byte) (ClientResponse, error) {
	if len(msg) > MaxMessage {
		return ClientResponse{}, ErrMalformed
	}
	if string(msg) == "\x01" {
		return ClientResponse{Dummy: true}, nil
	}
	gs2, rest, ok := bytes.Cut(msg, []byte{0x01})
	if !ok {
		return ClientResponse{}, ErrMalformed
	}
	// RFC 5801 4: gs2-header = gs2-cbind-flag "," [ authzid ] ","
	parts := strings.Split(string(gs2), ",")
	if len(parts) != 3 || parts[2] != "" || (parts[0] != "n" && parts[0] != "y") {
		return ClientResponse{}, ErrMalformed
	}
	var r ClientResponse
	if parts[1] != "" {
		authzid, ok := strings.CutPrefix(parts[1], "a=")
		if !ok {
			return ClientResponse{}, ErrMalformed
		}
		// RFC 5801 4: saslname, with "=2C" for "," and "=3D" for "=", as in SCRAM.
		user, ok := scram.UnescapeName(authzid)
		if !ok {
			return ClientResponse{}, ErrMalformed
		}
		r.User = user
	}
	auth, err := kvAuth(rest)
	if err != nil {
		return ClientResponse{}, err
	}
	if r.Token, err = bearerToken(auth); err != nil {
		return ClientResponse{}, err
	}
	return r, nil
}

// ParseXOAuth2 parses an XOAUTH2 client message (developers.google.com/gmail/imap/xoauth2-protocol):
//
//	"user=" user %x01 "auth=Bearer " token %x01 %x01
//
// An empty message is the client's answer to an error challenge.
func ParseXOAuth2(msg []byte) (ClientResponse, error) {
	if len(msg) > MaxMessage {
		return ClientResponse{}, ErrMalformed
	}
	if len(msg) == 0 {
		return ClientResponse{Dummy: true}, nil
	}
	userPair, rest, ok := bytes.Cut(msg, []byte{0x01})
	if !ok {
		return ClientResponse{}, ErrMalformed
	}
	user, ok := strings.CutPrefix(string(userPair), "user=")
	if !ok || user == "" {
		return ClientResponse{}, ErrMalformed
	}
	auth, err := kvAuth(rest)
	if err != nil {
		return ClientResponse{}, err
	}
	token, err := bearerToken(auth)
	if err != nil {
		return ClientResponse{}, err
	}
	return ClientResponse{User: user, Token: token}, nil
}

// kvAuth reads the key/value pairs of RFC 7628 3.1 (each ending in %x01, the list ending
// in one more) and returns the value of "auth", the one pair required.
func kvAuth(pairs []byte) (string, error) {
	if len(pairs) == 0 || pairs[len(pairs)-1] != 0x01 {
		return "", ErrMalformed
	}
	pairs = pairs[:len(pairs)-1]
	auth, found := "", false
	for len(pairs) > 0 {
		pair, rest, ok := bytes.Cut(pairs, []byte{0x01})
		if !ok {
			return "", ErrMalformed
		}
		pairs = rest
		key, value, ok := bytes.Cut(pair, []byte{'='})
		if !ok || len(key) == 0 {
			return "", ErrMalformed
		}
		for _, c := range key { // key = 1*(ALPHA)
			if (c|0x20) < 'a' || (c|0x20) > 'z' {
				return "", ErrMalformed
			}
		}
		if string(key) == "auth" {
			if found {
				return "", ErrMalformed
			}
			auth, found = string(value), true
		}
	}
	if !found {
		return "", ErrMalformed
	}
	return auth, nil
}

// bearerToken takes the token out of an auth value, RFC 6750 2.1:
// "Bearer" 1*SP b64token, the scheme compared without case (RFC 7235 2.1).
func bearerToken(auth string) (string, error) {
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMalformed
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", ErrMalformed
	}
	// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/=", c) >= 0) {
			return "", ErrMalformed
		}
	}
	return token, nil
}

// ErrorChallenge is the server's answer to a refused token, RFC 7628 3.2.2: a JSON object
// whose "status" is an RFC 6750 3.1 error code ("invalid_token", or "invalid_request" for a
// malformed message). XOAUTH2 clients read the same object.
func ErrorChallenge(status string) []byte {
	b, _ := json.Marshal(struct {
		Status string `json:"status"`
	}{status})
	return b
}

// Authenticate runs one mechanism's client message (decoded) through its parser and the
// Verifier: the account it logs in, or the error with the RFC 6750 3.1 status its error
// challenge carries (RFC 7628 3.2.2): "invalid_request" for a malformed message,
// "invalid_token" otherwise.
func (v *Verifier) Authenticate(ctx context.Context, mechanism string, msg []byte) (account *metadatapb.Account, user, status string, err error) {
	parse := ParseOAuthBearer
	if mechanism == XOAuth2 {
		parse = ParseXOAuth2
	}
	resp, err := parse(msg)
	if err == nil && resp.Dummy { // a dummy response is no first message
		err = ErrMalformed
	}
	if err != nil {
		return nil, "", "invalid_request", err
	}
	account, err = v.Verify(ctx, resp.Token, resp.User)
	return account, resp.User, "invalid_token", err
}
