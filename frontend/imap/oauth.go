package imap

import (
	"encoding/base64"
	"errors"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/oauth"
)

// The SASL mechanisms OAUTHBEARER (RFC 7628) and XOAUTH2 on IMAP (issue 15): the exchange
// of RFC 9051 6.2.2 around frontend/oauth, which parses the client's message and verifies
// its token. Kept apart from PLAIN (auth.go) so that it moves whole into a SASL mechanism
// framework.

// oauthMechanisms are the capabilities announced beside AUTH=PLAIN when Config.OAuth is
// set: a token is a credential like a password, so the same policy applies (RFC 7628 4:
// "implementations MUST use TLS").
var oauthMechanisms = []string{"AUTH=" + oauth.OAuthBearer, "AUTH=" + oauth.XOAuth2}

// authenticateOAuth runs AUTHENTICATE OAUTHBEARER or XOAUTH2. A refused token is answered
// with RFC 7628 3.2.2's error challenge; the client's response to it (a dummy %x01, RFC
// 7628 3.2.3, or XOAUTH2's empty line) is read and the command fails with NO
// [AUTHENTICATIONFAILED]: no answer says why, the log does.
func (c *conn) authenticateOAuth(args *imapwire.AuthenticateArgs) error {
	if !c.plaintextAuthAllowed() {
		return no(imapresp.CodePrivacyRequired, args.Mechanism+" is disabled without TLS")
	}
	msg, err := c.saslResponse(args.InitialResponse, nil)
	if err != nil {
		return err
	}
	ctx, cancel := c.rpcContext()
	account, user, status, err := c.srv.cfg.OAuth.Authenticate(ctx, args.Mechanism, msg)
	cancel()
	if err == nil {
		return c.login(account)
	}
	c.log.Info("OAuth authentication refused", "mechanism", args.Mechanism, "remote", c.nc.RemoteAddr().String(), "user", user, "err", err)
	// RFC 7628 3.2.2: the error, then the client's dummy response (3.2.3).
	if _, rerr := c.saslResponse(nil, oauth.ErrorChallenge(status)); rerr != nil {
		return rerr
	}
	if errors.Is(err, oauth.ErrInvalidToken) || errors.Is(err, oauth.ErrMalformed) {
		return no(imapresp.CodeAuthenticationFailed, "Invalid token")
	}
	if errors.Is(err, oauth.ErrKeysUnavailable) {
		return no(imapresp.CodeUnavailable, "The token issuer cannot be reached; try again later")
	}
	return rpcStatus(err, imapresp.CodeAuthenticationFailed, "authenticate")
}

// saslResponse returns the client's decoded response: the initial response when the
// command carried one (RFC 4959), else the line that answers challenge, sent as a
// continuation request (RFC 9051 6.2.2; an empty challenge is "+ ").
func (c *conn) saslResponse(initial, challenge []byte) ([]byte, error) {
	encoded := initial
	if encoded == nil {
		c.continuation(base64.StdEncoding.EncodeToString(challenge))
		if err := c.bw.Flush(); err != nil {
			return nil, err
		}
		line, err := c.framer.ReadLine()
		if err != nil {
			if errors.Is(err, imapwire.ErrLineTooLong) {
				return nil, bad("", "Authentication response too long")
			}
			return nil, err
		}
		encoded = line
	}
	switch string(encoded) {
	case "*":
		return nil, bad("", "Authentication cancelled") // RFC 9051 6.2.2
	case "=", "": // RFC 4959 3: "=" is an empty initial response
		return nil, nil
	}
	decoded, err := base64.StdEncoding.DecodeString(string(encoded))
	if err != nil {
		return nil, bad("", "Invalid base64 in the authentication response")
	}
	return decoded, nil
}
