package sasl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-mail/strata/frontend/auth"
)

// plainExchange is SASL PLAIN (RFC 4616): one message with the password, checked like IMAP
// LOGIN (auth.Login: the tenant's directory, else the verified-credentials cache).
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
	account, err := auth.Login(ctx, p.c.Directory, p.c.Cache, p.c.Metadata, p.c.Service, username, password)
	if errors.Is(err, auth.ErrInvalidCredentials) {
		return Step{}, ErrAuthFailed
	}
	if errors.Is(err, auth.ErrDirectoryUnavailable) {
		return Step{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil {
		return Step{}, err
	}
	return Step{Done: true, Account: account}, nil
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
