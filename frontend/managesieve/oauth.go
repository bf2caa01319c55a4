package managesieve

import (
	"encoding/base64"
	"errors"

	"github.com/strata-mail/strata/frontend/managesieve/sievewire"
	"github.com/strata-mail/strata/frontend/oauth"
)

// The SASL mechanisms OAUTHBEARER (RFC 7628) and XOAUTH2 on ManageSieve (issue 15): the
// exchange of RFC 5804 2.1 around frontend/oauth, apart from PLAIN (session.go) so that
// it moves whole into a SASL mechanism framework. The IMAP side is frontend/imap/oauth.go.

// authenticateOAuth runs AUTHENTICATE "OAUTHBEARER" or "XOAUTH2". A refused token is
// answered with RFC 7628 3.2.2's error challenge; the client's response to it (3.2.3) is
// read and the command fails with NO: no answer says why, the log does.
func (c *conn) authenticateOAuth(mechanism string, cmd *sievewire.Command) (*response, error) {
	if !c.srv.policy.PlaintextAllowed(c.tlsActive(), c.nc.RemoteAddr()) {
		// RFC 5804 1.3 ENCRYPT-NEEDED: STARTTLS first. RFC 7628 4: TLS is required.
		return no(codeEncryptNeeded, mechanism+" is allowed only over TLS"), nil
	}
	var initial []byte
	if len(cmd.Args) == 2 {
		initial = cmd.Args[1].Str
	}
	msg, refusal, err := c.saslResponse(len(cmd.Args) == 2, initial, nil)
	if refusal != nil || err != nil {
		return refusal, err
	}
	ctx, cancel := c.rpcContext()
	account, user, status, err := c.srv.cfg.OAuth.Authenticate(ctx, mechanism, msg)
	cancel()
	if err == nil {
		return c.loggedIn(account), nil
	}
	c.log.Info("OAuth authentication refused", "mechanism", mechanism, "remote", c.nc.RemoteAddr().String(), "user", user, "err", err)
	// RFC 7628 3.2.2: the error as a challenge, then the client's dummy response (3.2.3).
	if _, refusal, rerr := c.saslResponse(false, nil, oauth.ErrorChallenge(status)); refusal != nil || rerr != nil {
		return refusal, rerr
	}
	if errors.Is(err, oauth.ErrInvalidToken) || errors.Is(err, oauth.ErrMalformed) {
		return no("", "Authentication failed"), nil
	}
	if errors.Is(err, oauth.ErrKeysUnavailable) {
		return no("TRYLATER", "The token issuer cannot be reached"), nil // RFC 5804 1.3
	}
	if resp := rpcResponse(err, "AUTHENTICATE"); resp != nil {
		return resp, nil
	}
	return nil, err
}

// saslResponse returns the client's decoded response: the initial response when the
// command has one, else the string that answers challenge (RFC 5804 2.1: the challenge is
// a base64 string, the response a string on a line of its own). A response the exchange
// refuses (cancelled, malformed) comes back as the NO to send.
func (c *conn) saslResponse(hasInitial bool, initial, challenge []byte) ([]byte, *response, error) {
	encoded := initial
	if !hasInitial {
		c.writeLine(appendString(nil, []byte(base64.StdEncoding.EncodeToString(challenge))))
		if err := c.bw.Flush(); err != nil {
			return nil, nil, err
		}
		arg, err := c.r.ReadResponse()
		var syn *sievewire.SyntaxError
		if errors.As(err, &syn) {
			return nil, no("", "Malformed authentication response: "+syn.Msg), nil
		}
		if err != nil {
			return nil, nil, err
		}
		if arg.Dropped > 0 {
			return nil, no("", "Authentication response too long"), nil
		}
		encoded = arg.Str
		if string(encoded) == "*" {
			return nil, no("", "Authentication cancelled"), nil // RFC 5804 2.1
		}
	}
	decoded, err := base64.StdEncoding.DecodeString(string(encoded))
	if err != nil {
		return nil, no("", "Invalid base64 in the authentication response"), nil
	}
	return decoded, nil, nil
}
