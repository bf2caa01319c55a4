package imap

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/sasl"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdCapability: RFC 9051 6.1.1.
func (c *conn) cmdCapability(cmd *imapwire.Command) error {
	c.bw.Write(imapresp.AppendCapability(nil, c.capabilities()))
	return nil
}

// cmdNoop: RFC 9051 6.1.2 (and CHECK, RFC 3501 6.4.1, which IMAP4rev2 folds into NOOP).
// Pending mailbox updates are sent by run before the tagged response.
func (c *conn) cmdNoop(cmd *imapwire.Command) error {
	return nil
}

// cmdLogout: RFC 9051 6.1.3.
func (c *conn) cmdLogout(cmd *imapwire.Command) error {
	c.bw.Write(imapresp.AppendStatusResponse(nil, "*", "BYE", "", "Logging out"))
	c.closeSelected()
	c.state = stateLogout
	return nil
}

// plaintextAuthAllowed reports whether a password may be sent on this connection under the
// policy IMAP shares with ManageSieve (frontend/auth). RFC 9051 6.2.3, 11.1.
func (c *conn) plaintextAuthAllowed() bool {
	policy := auth.Policy{AllowPlaintext: c.srv.cfg.AllowPlaintextAuth, TrustLoopback: c.srv.cfg.TrustLoopback}
	return policy.PlaintextAllowed(c.tlsActive(), c.nc.RemoteAddr())
}

// cmdLogin: RFC 9051 6.2.3.
func (c *conn) cmdLogin(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.LoginArgs)
	if !c.plaintextAuthAllowed() {
		return no(imapresp.CodePrivacyRequired, "LOGIN is disabled without TLS")
	}
	return c.authenticate(args.Username, args.Password)
}

// saslConn describes this connection to the SASL mechanisms (frontend/sasl).
func (c *conn) saslConn() *sasl.Conn {
	sc := &sasl.Conn{
		Metadata: c.srv.cfg.Metadata, Cache: c.srv.cfg.AuthCache, Service: auth.ServiceIMAP,
		Policy: auth.Policy{AllowPlaintext: c.srv.cfg.AllowPlaintextAuth, TrustLoopback: c.srv.cfg.TrustLoopback},
		Remote: c.nc.RemoteAddr(), ScramSHA1: c.srv.cfg.ScramSHA1, OAuth: c.srv.cfg.OAuth,
		Directory: c.srv.cfg.Directory, Logins: c.srv.cfg.Logins, Log: c.srv.logger, RPCTimeout: rpcTimeout,
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		state := tc.ConnectionState()
		sc.TLS = &state
	}
	return sc
}

// cmdAuthenticate: RFC 9051 6.2.2 with the mechanisms of frontend/sasl and the initial
// response of RFC 4959. Challenges go out as continuation requests in base64; additional
// data with success (SCRAM's server-final-message) as a last challenge, which the client
// answers with an empty line (RFC 9051 6.2.2, RFC 4422 3.6).
func (c *conn) cmdAuthenticate(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.AuthenticateArgs)
	exchange, err := c.saslConn().Start(args.Mechanism)
	switch {
	case errors.Is(err, sasl.ErrEncryptionNeeded):
		return no(imapresp.CodePrivacyRequired, args.Mechanism+" is disabled without TLS")
	case err != nil:
		return no(imapresp.CodeCannot, "Unsupported authentication mechanism")
	}
	var response []byte
	if encoded := args.InitialResponse; encoded != nil {
		if response, err = c.decodeSASL(encoded); err != nil {
			return err
		}
		if response == nil {
			response = []byte{} // RFC 4959 3: "=" is an empty initial response
		}
	}
	for {
		// The mechanisms bound each metadata call (sasl.Conn.RPCTimeout); the connection's
		// context bounds the whole, the brute-force guard's delays included.
		step, err := exchange.Next(c.ctx, response)
		if err != nil {
			c.log.Info("authentication refused", "mechanism", args.Mechanism, "remote", c.nc.RemoteAddr().String(), "err", err)
			return c.authFailure(args.Mechanism, err)
		}
		if step.Done {
			if step.Final != nil {
				if _, err := c.saslChallenge(step.Final); err != nil {
					return err
				}
			}
			return c.loggedIn(step.Account)
		}
		if response, err = c.saslChallenge(step.Challenge); err != nil {
			return err
		}
	}
}

// saslChallenge sends a challenge and reads the client's answer (RFC 9051 6.2.2): a base64
// line, "*" to cancel.
func (c *conn) saslChallenge(challenge []byte) ([]byte, error) {
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
	response, err := c.decodeSASL(line)
	if response == nil && err == nil {
		response = []byte{}
	}
	return response, err
}

// decodeSASL decodes a client response: base64, "*" cancels (RFC 9051 6.2.2), "=" is empty
// (RFC 4959 3) and answers nil.
func (c *conn) decodeSASL(encoded []byte) ([]byte, error) {
	switch string(encoded) {
	case "*":
		return nil, bad("", "Authentication cancelled")
	case "=":
		return nil, nil
	}
	response, err := base64.StdEncoding.DecodeString(string(encoded))
	if err != nil {
		return nil, bad("", "Invalid base64 in the authentication response")
	}
	return response, nil
}

// authenticate checks the credentials of LOGIN with the metadata service (the account
// check of frontend/auth) and enters the authenticated state.
func (c *conn) authenticate(username, password string) error {
	account, err := c.saslConn().CheckPassword(c.ctx, username, password)
	if err != nil {
		return c.authFailure("LOGIN", err)
	}
	return c.loggedIn(account)
}

// authFailure answers a refused LOGIN or AUTHENTICATE (frontend/sasl's errors).
func (c *conn) authFailure(mechanism string, err error) error {
	switch {
	case errors.Is(err, sasl.ErrAuthFailed):
		return no(imapresp.CodeAuthenticationFailed, "Invalid credentials")
	case errors.Is(err, auth.ErrTooManyFailures):
		// RFC 5530 3: UNAVAILABLE, a temporary failure; the password was not checked.
		return no(imapresp.CodeUnavailable, "Too many failed logins, try again later")
	case errors.Is(err, sasl.ErrUnavailable):
		// RFC 5530 3 UNAVAILABLE: a temporary failure of a subsystem the login needs (an
		// account directory, an OAuth issuer).
		return no(imapresp.CodeUnavailable, "The credential cannot be checked now; try again later")
	case errors.Is(err, sasl.ErrAuthorization):
		return no(imapresp.CodeAuthorizationFailed, "Acting as another user is not allowed")
	case errors.Is(err, sasl.ErrMalformed):
		return bad("", "Malformed "+mechanism+" response")
	}
	return rpcStatus(err, imapresp.CodeAuthenticationFailed, "authenticate")
}

// loggedIn enters the authenticated state as account, by password, SCRAM or OAuth token,
// unless the account has Limits.MaxConnectionsPerAccount sessions on this server already.
func (c *conn) loggedIn(account *metadatapb.Account) error {
	if !c.srv.accountConns.Take(account.GetEmail(), c.srv.limits.MaxConnectionsPerAccount) {
		c.srv.metrics.refusedPerAccount.Add(1)
		return no(imapresp.CodeLimit, "Too many connections for this account") // RFC 5530 3 LIMIT
	}
	c.account = account
	c.state = stateAuthenticated
	c.log = c.connLog.With("account", account.GetEmail())
	if name := account.GetAppPassword(); name != "" {
		c.log = c.log.With("app_password", name)
	}
	// RFC 9051 6.2.3: the capabilities may change after login, so send them.
	return ok(imapresp.CapabilityCode(c.capabilities()), "Logged in")
}

// cmdUnauthenticate: RFC 8437 3. The session goes back to the not authenticated state with
// nothing of the account it had: the selected mailbox is left without expunging, which
// stops its change feed and drops its view, saved search result (RFC 5182) and rights
// (RFC 4314); the account and its re-check time (quota.go) are forgotten; what ENABLE
// turned on is off again, CONDSTORE as if no enabling command had been sent (RFC 8437
// 4.1). TLS stays; compression ends after the OK (RFC 8437 4.1, compress.go). The OK
// carries the capabilities of the not authenticated state, so the client need not ask.
func (c *conn) cmdUnauthenticate(cmd *imapwire.Command) error {
	if c.srv.cfg.DisableUnauthenticate {
		return bad("", "Unknown command "+cmd.Name)
	}
	c.closeSelected()
	c.releaseAccount()
	c.account = nil
	c.accountChecked = time.Time{}
	c.rev2, c.utf8Accept, c.condStore, c.qresync, c.uidOnly = false, false, false, false, false
	c.state = stateNotAuthenticated
	c.log.Debug("UNAUTHENTICATE")
	c.log = c.connLog
	if c.inflater != nil {
		c.afterResponse = c.stopCompression
	}
	return ok(imapresp.CapabilityCode(c.capabilities()), "Not authenticated")
}

// cmdEnable: RFC 9051 6.3.1 (RFC 5161). IMAP4rev2 and UTF8=ACCEPT (RFC 6855 3) can be
// enabled; the switches they set are described on conn. ENABLED lists only what this
// command newly enabled (RFC 5161 3.1); unknown capabilities are ignored.
func (c *conn) cmdEnable(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.EnableArgs)
	var enabled []string
	for _, name := range args.Capabilities {
		switch {
		case name == "IMAP4REV2" && !c.rev2:
			c.rev2 = true
			enabled = append(enabled, "IMAP4rev2")
		case name == "UTF8=ACCEPT" && !c.utf8Accept:
			c.utf8Accept = true
			enabled = append(enabled, "UTF8=ACCEPT")
		case name == "CONDSTORE" && !c.condStore: // RFC 7162 3.1
			c.enableCondStore()
			enabled = append(enabled, "CONDSTORE")
		case name == "UIDONLY" && !c.uidOnly: // RFC 9586 3
			c.uidOnly = true
			enabled = append(enabled, "UIDONLY")
		case name == "QRESYNC" && !c.qresync: // RFC 7162 3.2.3: implies CONDSTORE
			c.enableCondStore()
			c.qresync = true
			enabled = append(enabled, "QRESYNC")
		}
	}
	c.bw.Write(imapresp.AppendEnabled(nil, enabled))
	return nil
}

// ID limits of RFC 2971 3.3: at most 30 pairs, fields of 30 octets, values of 1024. A
// client that sends more is logged only up to them.
const (
	maxIDParams    = 30
	maxIDFieldSize = 30
	maxIDValueSize = 1024
	serverIDName   = "Strata"
	serverIDVendor = "Strata"
)

// cmdID: RFC 2971 3.1. The client's identification is logged (bounded); the server answers
// with its name and version.
func (c *conn) cmdID(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.IDArgs)
	if len(args.Params) > 0 {
		attrs := make([]any, 0, 2*maxIDParams)
		for i, p := range args.Params {
			if i == maxIDParams {
				break
			}
			attrs = append(attrs, truncate(p.Field, maxIDFieldSize), truncate(p.Value, maxIDValueSize))
		}
		c.log.Info("IMAP client ID", slog.Group("id", attrs...))
	}
	c.bw.Write(imapresp.AppendID(nil, c.encoder(), []imapresp.IDField{
		{Name: "name", Value: serverIDName}, {Name: "version", Value: serverVersion()}, {Name: "vendor", Value: serverIDVendor},
	}))
	return nil
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// serverVersion is the version of the running binary: the module version it was built
// as, or the VCS revision of a build from a checkout.
var serverVersion = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
})

// accountName returns the authenticated account's e-mail address.
func (c *conn) accountName() string {
	return c.account.GetEmail()
}

// releaseAccount ends the session's count in the per-account connection limit, once it
// logs out, unauthenticates or closes.
func (c *conn) releaseAccount() {
	if c.account != nil {
		c.srv.accountConns.Release(c.account.GetEmail())
	}
}
