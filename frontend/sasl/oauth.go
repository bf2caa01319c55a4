package sasl

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/oauth"
)

// oauthExchange is OAUTHBEARER (RFC 7628) or XOAUTH2: one client message with a bearer
// token, which Conn.OAuth verifies (frontend/oauth). A refused token is a second step: the
// error challenge of RFC 7628 3.2.2, whose answer (the dummy %x01 of 3.2.3, XOAUTH2's
// empty response) ends the exchange with the refusal. No answer says why a token was
// refused; the error does, for the log.
type oauthExchange struct {
	c         *Conn
	mechanism string
	asked     bool
	refusal   error // set once the error challenge is sent
}

func startOAuth(mechanism string) func(*Conn) Exchange {
	return func(c *Conn) Exchange { return &oauthExchange{c: c, mechanism: mechanism} }
}

// oauthOffered: the mechanisms run only on frontends with a Verifier. They are plaintext
// rows (a token is a credential like a password; RFC 7628 4: "implementations MUST use
// TLS"), offered where PLAIN is whether or not any tenant has an issuer (frontend/oauth).
func oauthOffered(c *Conn) bool { return c.OAuth != nil }

func (o *oauthExchange) Next(ctx context.Context, response []byte) (Step, error) {
	if o.refusal != nil {
		// RFC 7628 3.2.3: the client's response to the error challenge, whatever it is,
		// ends the exchange with failure.
		return Step{}, o.refusal
	}
	if response == nil && !o.asked {
		// RFC 4422 3.3: no initial response, so an empty challenge asks for it.
		o.asked = true
		return Step{Challenge: []byte{}}, nil
	}
	callCtx, cancel := o.c.callContext(ctx)
	account, user, status, err := o.c.OAuth.Authenticate(callCtx, o.mechanism, response)
	cancel()
	// The brute-force guard, the login counters and the fail2ban line of a password login
	// (frontend/auth Settle), with the client's address after any PROXY header
	// (frontend/connserver). The guard keys a failure on the identity the client named
	// (none: the address alone), a success on the account.
	attempt := o.c.attempt(user)
	outcome := auth.Unchecked
	switch {
	case err == nil:
		outcome, attempt.Username = auth.Success, account.GetEmail()
	case errors.Is(err, oauth.ErrInvalidToken), errors.Is(err, oauth.ErrMalformed):
		outcome = auth.Failure
		o.refusal = fmt.Errorf("%w: user %q: %w", ErrAuthFailed, user, err)
	case errors.Is(err, oauth.ErrKeysUnavailable):
		o.refusal = fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		o.refusal = err // the metadata service's answer, for the protocol to map
	}
	if serr := o.c.Logins.Settle(ctx, o.c.Metadata, attempt, outcome, auth.ReasonToken, o.c.log()); serr != nil {
		// Refused by the guard (or a success the guard could not take): a failure like
		// any other, answered with the error challenge.
		o.refusal = serr
	}
	if o.refusal == nil {
		return Step{Done: true, Account: account}, nil
	}
	// RFC 7628 3.2.2: the error as a challenge (status "invalid_request" for a malformed
	// message, "invalid_token" otherwise); XOAUTH2 clients read the same object.
	return Step{Challenge: oauth.ErrorChallenge(status)}, nil
}
