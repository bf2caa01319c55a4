package managesieve

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/managesieve/sievewire"
	"github.com/strata-mail/strata/frontend/sasl"
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
	// RFC 5804 1.7: the mechanisms this connection offers (frontend/sasl): SCRAM
	// everywhere, -PLUS over TLS, PLAIN (and OAUTHBEARER and XOAUTH2 where tokens are
	// verified) where the plaintext policy lets a password through.
	line("SASL", strings.Join(c.saslConn().Mechanisms(), " "), true)
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

// saslConn describes this connection to the SASL mechanisms (frontend/sasl).
func (c *conn) saslConn() *sasl.Conn {
	sc := &sasl.Conn{
		Metadata: c.srv.cfg.Metadata, Cache: c.srv.cfg.AuthCache, Service: auth.ServiceManageSieve,
		Policy: c.srv.policy, Remote: c.nc.RemoteAddr(), ScramSHA1: c.srv.cfg.ScramSHA1, OAuth: c.srv.cfg.OAuth,
		Directory: c.srv.cfg.Directory, Logins: c.srv.cfg.Logins, Log: c.srv.logger, RPCTimeout: rpcTimeout,
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		state := tc.ConnectionState()
		sc.TLS = &state
	}
	return sc
}

// cmdAuthenticate: RFC 5804 2.1 with the mechanisms of frontend/sasl: the initial response
// as the second argument, or an empty challenge and the client's response string. Each
// challenge is a base64 string on a line; the additional data with success (SCRAM's
// server-final-message) goes in the OK's SASL response code.
func (c *conn) cmdAuthenticate(cmd *sievewire.Command) (*response, error) {
	mechanism := string(cmd.Args[0].Str)
	exchange, err := c.saslConn().Start(mechanism)
	switch {
	case errors.Is(err, sasl.ErrEncryptionNeeded):
		// RFC 5804 1.3 ENCRYPT-NEEDED: STARTTLS first.
		return no(codeEncryptNeeded, mechanism+" is allowed only over TLS"), nil
	case err != nil:
		return no("", "Unsupported authentication mechanism"), nil
	}
	var clientResponse []byte
	if len(cmd.Args) == 2 {
		if clientResponse, err = base64.StdEncoding.DecodeString(string(cmd.Args[1].Str)); err != nil {
			return no("", "Invalid base64 in the authentication response"), nil
		}
		if clientResponse == nil {
			clientResponse = []byte{}
		}
	}
	for {
		// The mechanisms bound each metadata call (sasl.Conn.RPCTimeout); the connection's
		// context bounds the whole, the brute-force guard's delays included.
		step, err := exchange.Next(c.ctx, clientResponse)
		if err != nil {
			c.log.Info("authentication refused", "mechanism", mechanism, "remote", c.nc.RemoteAddr().String(), "err", err)
		}
		switch {
		case errors.Is(err, sasl.ErrAuthFailed):
			return no("", "Authentication failed"), nil
		case errors.Is(err, auth.ErrTooManyFailures):
			// RFC 5804 1.3 TRYLATER: a temporary failure; the password was not checked.
			return no(codeTryLater, "Too many failed logins, try again later"), nil
		case errors.Is(err, sasl.ErrUnavailable):
			return no(codeTryLater, "The credential cannot be checked now, try again later"), nil // RFC 5804 1.3
		case errors.Is(err, sasl.ErrAuthorization):
			return no("", "Acting as another user is not allowed"), nil
		case errors.Is(err, sasl.ErrMalformed):
			return no("", "Malformed "+mechanism+" response"), nil
		case err != nil:
			if resp := rpcResponse(err, "AUTHENTICATE"); resp != nil {
				return resp, nil
			}
			return nil, err
		}
		if step.Done {
			c.account = step.Account
			c.accountChecked = time.Now() // the login just checked it
			c.state = stateAuthenticated
			c.log = c.connLog.With("account", step.Account.GetEmail())
			if name := step.Account.GetAppPassword(); name != "" {
				c.log = c.log.With("app_password", name)
			}
			resp := ok("Logged in")
			if step.Final != nil {
				// RFC 5804 2.1: OK (SASL "<base64 additional data with success>").
				resp.code = appendString([]byte("SASL "), []byte(base64.StdEncoding.EncodeToString(step.Final)))
			}
			return resp, nil
		}
		var refusal *response
		if clientResponse, refusal, err = c.saslChallenge(step.Challenge); refusal != nil || err != nil {
			return refusal, err
		}
	}
}

// saslChallenge sends a challenge as a string and reads the client's response string
// (RFC 5804 2.1); "*" cancels.
func (c *conn) saslChallenge(challenge []byte) ([]byte, *response, error) {
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
	if string(arg.Str) == "*" {
		return nil, no("", "Authentication cancelled"), nil // RFC 5804 2.1
	}
	response, err := base64.StdEncoding.DecodeString(string(arg.Str))
	if err != nil {
		return nil, no("", "Invalid base64 in the authentication response"), nil
	}
	if response == nil {
		response = []byte{}
	}
	return response, nil, nil
}

// cmdUnauthenticate: RFC 5804 2.14.1. The session forgets the account; TLS stays.
func (c *conn) cmdUnauthenticate(cmd *sievewire.Command) (*response, error) {
	c.account = nil
	c.state = stateNotAuthenticated
	c.log = c.connLog
	return ok("Not authenticated"), nil
}
