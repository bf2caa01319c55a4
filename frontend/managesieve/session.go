package managesieve

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/managesieve/sievewire"
	"github.com/strata-mail/strata/frontend/oauth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// implementation is the IMPLEMENTATION capability (RFC 5804 1.7).
const implementation = "Strata"

// writeCapabilities writes the capability lines of RFC 5804 1.7 for the session's state.
func (c *conn) writeCapabilities() {
	line := func(name, value string, hasValue bool) {
		b := appendString(nil, []byte(name))
		if hasValue {
			b = append(b, ' ')
			b = appendString(b, []byte(value))
		}
		c.writeLine(b)
	}
	line("IMPLEMENTATION", implementation, true)
	// RFC 5804 1.7: SASL may be empty only when STARTTLS is offered; PLAIN is listed where
	// the plaintext policy lets a password through (auth.Policy).
	sasl := ""
	if c.plaintextAllowed() {
		sasl = "PLAIN"
		if c.srv.cfg.OAuth != nil {
			sasl += " " + oauth.OAuthBearer + " " + oauth.XOAuth2 // RFC 7628 3, oauth.go
		}
	}
	line("SASL", sasl, true)
	line("SIEVE", strings.Join(c.srv.extensions, " "), true)
	// RFC 5804 2.2: STARTTLS only in the not authenticated state and not over TLS.
	if c.srv.cfg.TLS != nil && !c.tlsActive() && c.state == stateNotAuthenticated {
		line("STARTTLS", "", false)
	}
	// RFC 5804 1.7 MAXREDIRECTS: the redirects one script may do per message.
	line("MAXREDIRECTS", strconv.Itoa(c.maxRedirects()), true)
	// RFC 5804 1.7 NOTIFY is announced only with the enotify extension (RFC 5435).
	for _, e := range c.srv.extensions {
		if e == "enotify" {
			line("NOTIFY", "mailto", true)
		}
	}
	if c.state == stateAuthenticated {
		line("OWNER", c.account.GetEmail(), true) // RFC 5804 1.7: only once authenticated
	}
	line("UNAUTHENTICATE", "", false) // RFC 5804 2.14.1
	line("VERSION", "1.0", true)      // RFC 5804 1.7: this document's version
}

func (c *conn) plaintextAllowed() bool {
	return c.srv.policy.PlaintextAllowed(c.tlsActive(), c.nc.RemoteAddr())
}

// cmdCapability: RFC 5804 2.4.
func (c *conn) cmdCapability(cmd *sievewire.Command) (*response, error) {
	c.writeCapabilities()
	return ok("Capability completed"), nil
}

// cmdLogout: RFC 5804 2.3. The server answers OK and closes the connection.
func (c *conn) cmdLogout(cmd *sievewire.Command) (*response, error) {
	c.state = stateLogout
	return ok("Logout completed"), nil
}

// cmdNoop: RFC 5804 2.13. The optional string comes back in a TAG response code.
func (c *conn) cmdNoop(cmd *sievewire.Command) (*response, error) {
	resp := ok("Done")
	if len(cmd.Args) == 1 {
		resp.code = appendString([]byte("TAG "), cmd.Args[0].Str)
	}
	return resp, nil
}

// cmdStartTLS: RFC 5804 2.2. The OK goes out, the handshake follows; after it the server
// sends its capabilities again and OK, unasked. Plaintext the client pipelined after the
// command is dropped with the old reader (the STARTTLS command injection attack).
func (c *conn) cmdStartTLS(cmd *sievewire.Command) (*response, error) {
	if c.tlsActive() {
		return no("", "TLS is already active"), nil
	}
	if c.srv.cfg.TLS == nil {
		return no("", "TLS is not configured on this server"), nil
	}
	c.writeResponse(ok("Begin TLS negotiation now"))
	if err := c.bw.Flush(); err != nil {
		c.state = stateLogout
		return nil, errAnswered
	}
	if n := c.r.Buffered(); n > 0 {
		c.log.Info("discarding plaintext sent after STARTTLS", "bytes", n)
	}
	if err := c.startTLS(); err != nil {
		c.log.Debug("STARTTLS", "err", err)
		c.state = stateLogout
		return nil, errAnswered
	}
	c.writeCapabilities() // RFC 5804 2.2: re-issued after the handshake
	c.writeResponse(ok("TLS negotiation successful"))
	return nil, errAnswered
}

// cmdAuthenticate: RFC 5804 2.1 with SASL PLAIN (RFC 4616): the initial response as the
// second argument, or an empty challenge and the client's response line.
func (c *conn) cmdAuthenticate(cmd *sievewire.Command) (*response, error) {
	if mech := strings.ToUpper(string(cmd.Args[0].Str)); (mech == oauth.OAuthBearer || mech == oauth.XOAuth2) && c.srv.cfg.OAuth != nil {
		return c.authenticateOAuth(mech, cmd) // oauth.go
	}
	if !strings.EqualFold(string(cmd.Args[0].Str), "PLAIN") {
		return no("", "Unsupported authentication mechanism"), nil
	}
	if !c.plaintextAllowed() {
		// RFC 5804 1.3 ENCRYPT-NEEDED: STARTTLS first.
		return no(codeEncryptNeeded, "PLAIN is allowed only over TLS"), nil
	}
	var encoded []byte
	if len(cmd.Args) == 2 {
		encoded = cmd.Args[1].Str
	} else {
		// RFC 5804 2.1: the server's challenge is a string, here empty; the client
		// answers with a string on a line of its own.
		c.writeLine(appendString(nil, nil))
		if err := c.bw.Flush(); err != nil {
			return nil, err
		}
		arg, err := c.r.ReadResponse()
		var syn *sievewire.SyntaxError
		if errors.As(err, &syn) {
			return no("", "Malformed authentication response: "+syn.Msg), nil
		}
		if err != nil {
			return nil, err
		}
		if arg.Dropped > 0 {
			return no("", "Authentication response too long"), nil
		}
		encoded = arg.Str
		if string(encoded) == "*" {
			return no("", "Authentication cancelled"), nil // RFC 5804 2.1
		}
	}
	response, err := base64.StdEncoding.DecodeString(string(encoded))
	if err != nil {
		return no("", "Invalid base64 in the authentication response"), nil
	}
	username, password, err := auth.ParsePlain(response)
	switch {
	case errors.Is(err, auth.ErrAuthorization):
		return no("", "Acting as another user is not allowed"), nil
	case err != nil:
		return no("", "Malformed PLAIN response"), nil
	}
	account, err := c.srv.cfg.Logins.Login(c.ctx, c.srv.cfg.Metadata, c.srv.cfg.AuthCache, auth.Attempt{
		Protocol: "managesieve", Remote: c.nc.RemoteAddr(), Username: username, Password: password, RPCTimeout: rpcTimeout,
		Directory: c.srv.cfg.Directory,
	}, c.srv.logger)
	if errors.Is(err, auth.ErrInvalidCredentials) {
		return no("", "Authentication failed"), nil
	}
	if errors.Is(err, auth.ErrTooManyFailures) {
		// RFC 5804 1.3 TRYLATER: a temporary failure; the password was not checked.
		return no(codeTryLater, "Too many failed logins, try again later"), nil
	}
	if errors.Is(err, auth.ErrDirectoryUnavailable) {
		return no(codeTryLater, "Account directory unavailable, try again later"), nil // RFC 5804 1.3 TRYLATER
	}
	if err != nil {
		if resp := rpcResponse(err, "AUTHENTICATE"); resp != nil {
			return resp, nil
		}
		return nil, err
	}
	return c.loggedIn(account), nil
}

// loggedIn enters the authenticated state as account.
func (c *conn) loggedIn(account *metadatapb.Account) *response {
	c.account = account
	c.state = stateAuthenticated
	c.log = c.connLog.With("account", account.GetEmail())
	return ok("Logged in")
}

// cmdUnauthenticate: RFC 5804 2.14.1. The session forgets the account; TLS stays.
func (c *conn) cmdUnauthenticate(cmd *sievewire.Command) (*response, error) {
	c.account = nil
	c.state = stateNotAuthenticated
	c.log = c.connLog
	return ok("Not authenticated"), nil
}
