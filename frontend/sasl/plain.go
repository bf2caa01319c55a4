package sasl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// plainExchange is SASL PLAIN (RFC 4616): one message with the password, checked like IMAP
// LOGIN (Conn.CheckPassword).
type plainExchange struct {
	c        *Conn
	answered bool
}

func startPlain(c *Conn) Exchange { return &plainExchange{c: c} }

func (p *plainExchange) Next(ctx context.Context, response []byte) (Step, error) {
	if response == nil && !p.answered {
		// RFC 4422 3.3: no initial response, so an empty challenge asks for it.
		p.answered = true
		return Step{Challenge: []byte{}}, nil
	}
	username, password, err := ParsePlain(response)
	if err != nil {
		return Step{}, err
	}
	account, err := p.c.CheckPassword(ctx, username, password)
	if err != nil {
		return Step{}, err
	}
	return Step{Done: true, Account: account}, nil
}

// CheckPassword is the check of every password login on c, SASL PLAIN and IMAP LOGIN:
// Logins.Login with the tenant's Directory, the verified-credentials cache and the service
// (app passwords). A refused password is ErrAuthFailed, a directory that does not answer
// ErrUnavailable, a login the brute-force guard refused unchecked auth.ErrTooManyFailures;
// the metadata service's own errors come back as they are. ctx bounds the whole, delays
// included.
func (c *Conn) CheckPassword(ctx context.Context, username, password string) (*metadatapb.Account, error) {
	a := c.attempt(username)
	a.Password, a.Directory = password, c.Directory
	account, err := c.Logins.Login(ctx, c.Metadata, c.Cache, a, c.log())
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		return nil, ErrAuthFailed
	case errors.Is(err, auth.ErrDirectoryUnavailable):
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case err != nil:
		return nil, err
	}
	return account, nil
}

// ParsePlain splits a decoded SASL PLAIN response into the user name and password.
// RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd; an authzid, if given,
// must name the same user (no proxy authorization): ErrAuthorization otherwise.
func ParsePlain(response []byte) (username, password string, err error) {
	fields := bytes.Split(response, []byte{0})
	if len(fields) != 3 {
		return "", "", fmt.Errorf("%w: PLAIN is authzid NUL authcid NUL passwd", ErrMalformed)
	}
	authzid, authcid := string(fields[0]), string(fields[1])
	if authzid != "" && !strings.EqualFold(authzid, authcid) {
		return "", "", ErrAuthorization
	}
	return authcid, string(fields[2]), nil
}
