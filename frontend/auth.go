package frontend

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdCapability: RFC 9051 6.1.1.
func (c *conn) cmdCapability(cmd *imapwire.Command) error {
	c.untagged("CAPABILITY " + c.capabilities())
	return nil
}

// cmdNoop: RFC 9051 6.1.2 (and CHECK, RFC 3501 6.4.1, which IMAP4rev2 folds into NOOP).
// Pending mailbox updates are sent by run before the tagged response.
func (c *conn) cmdNoop(cmd *imapwire.Command) error {
	return nil
}

// cmdLogout: RFC 9051 6.1.3.
func (c *conn) cmdLogout(cmd *imapwire.Command) error {
	c.untagged("BYE Logging out")
	c.closeSelected()
	c.state = stateLogout
	return nil
}

// plaintextAuthAllowed reports whether a password may be sent on this connection: over TLS,
// from a loopback address when loopback is trusted, or when the configuration allows it
// everywhere. RFC 9051 6.2.3, 11.1.
func (c *conn) plaintextAuthAllowed() bool {
	return c.tlsActive() || c.srv.cfg.AllowPlaintextAuth ||
		(c.srv.cfg.TrustLoopback && isLoopback(c.nc.RemoteAddr()))
}

// isLoopback reports whether addr is a TCP address on the loopback network.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// cmdLogin: RFC 9051 6.2.3.
func (c *conn) cmdLogin(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.LoginArgs)
	if !c.plaintextAuthAllowed() {
		return no(codePrivacyReq, "LOGIN is disabled without TLS")
	}
	return c.authenticate(args.Username, args.Password)
}

// cmdAuthenticate: RFC 9051 6.2.2 with the SASL PLAIN mechanism (RFC 4616) and the initial
// response of RFC 4959.
func (c *conn) cmdAuthenticate(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.AuthenticateArgs)
	if args.Mechanism != "PLAIN" {
		return no(codeCannot, "Unsupported authentication mechanism")
	}
	if !c.plaintextAuthAllowed() {
		return no(codePrivacyReq, "PLAIN is disabled without TLS")
	}
	encoded := args.InitialResponse
	if encoded == nil {
		// RFC 9051 6.2.2: an empty challenge, then the client's response line.
		c.continuation("")
		if err := c.bw.Flush(); err != nil {
			return err
		}
		line, err := c.framer.ReadLine()
		if err != nil {
			if errors.Is(err, imapwire.ErrLineTooLong) {
				return bad("", "Authentication response too long")
			}
			return err
		}
		encoded = line
	}
	if string(encoded) == "*" {
		return bad("", "Authentication cancelled") // RFC 9051 6.2.2
	}
	var response []byte
	if string(encoded) != "=" { // RFC 4959 3: "=" is an empty initial response
		var err error
		if response, err = base64.StdEncoding.DecodeString(string(encoded)); err != nil {
			return bad("", "Invalid base64 in the authentication response")
		}
	}
	// RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd
	fields := bytes.Split(response, []byte{0})
	if len(fields) != 3 {
		return bad("", "Malformed PLAIN response")
	}
	authzid, authcid, password := string(fields[0]), string(fields[1]), string(fields[2])
	if authzid != "" && !strings.EqualFold(authzid, authcid) {
		return no(codeAuthorizFailed, "Acting as another user is not allowed")
	}
	return c.authenticate(authcid, password)
}

// authenticate checks the credentials with the metadata service and enters the
// authenticated state.
func (c *conn) authenticate(username, password string) error {
	ctx, cancel := c.rpcContext()
	defer cancel()
	account, err := c.srv.cfg.Metadata.Authenticate(ctx, &metadatapb.AuthenticateRequest{
		Email: strings.ToLower(username), Password: password,
	})
	if err != nil {
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.NotFound, codes.InvalidArgument:
			return no(codeAuthFailed, "Invalid credentials")
		}
		return rpcStatus(err, codeAuthFailed, "authenticate")
	}
	if account.GetDisabled() {
		return no(codeAuthFailed, "Invalid credentials")
	}
	c.account = account
	c.state = stateAuthenticated
	c.log = c.log.With("account", account.GetEmail())
	// RFC 9051 6.2.3: the capabilities may change after login, so send them.
	return ok("CAPABILITY "+c.capabilities(), "Logged in")
}

// cmdEnable: RFC 9051 6.3.1 (RFC 5161). Only IMAP4rev2 can be enabled.
func (c *conn) cmdEnable(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.EnableArgs)
	var enabled []string
	for _, name := range args.Capabilities {
		if name == "IMAP4REV2" && !c.rev2 {
			c.rev2 = true
			enabled = append(enabled, "IMAP4rev2")
		}
	}
	c.untagged(strings.TrimSpace("ENABLED " + strings.Join(enabled, " ")))
	return nil
}

// cmdNamespace: RFC 9051 6.3.10. Strata has one personal namespace, "/"-delimited.
func (c *conn) cmdNamespace(cmd *imapwire.Command) error {
	c.untagged(`NAMESPACE (("" "/")) NIL NIL`)
	return nil
}

// accountName returns the authenticated account's e-mail address.
func (c *conn) accountName() string {
	return c.account.GetEmail()
}
