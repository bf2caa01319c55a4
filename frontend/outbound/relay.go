package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// relayConn is one SMTP session with the relay, greeted, TLS and AUTH done.
type relayConn struct {
	c *smtp.Client
	// unwatch stops closing the connection when the queue's context ends.
	unwatch func() bool
}

// errNoStartTLS is go-smtp's error when the server does not offer STARTTLS;
// it has no exported value, so TLSMay recognizes it by its text.
const errNoStartTLS = "smtp: server doesn't support STARTTLS"

// dialRelay connects to the relay and gets it ready for MAIL FROM: TLS as
// cfg.TLS says, EHLO, then AUTH PLAIN when a username is configured.
func dialRelay(ctx context.Context, cfg *Config) (*relayConn, error) {
	host, _, _ := net.SplitHostPort(cfg.Relay)
	tlsConfig := &tls.Config{ServerName: host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	// Closing the connection when ctx ends unblocks any command under
	// way, so Close never waits for a slow relay.
	unwatch := func() bool { return false }
	dial := func() (net.Conn, error) {
		d := net.Dialer{Timeout: cfg.Timeout}
		conn, err := d.DialContext(ctx, "tcp", cfg.Relay)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		unwatch = context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	tlsVerified := false
	switch cfg.TLS {
	case TLSImplicit:
		// RFC 8314 3.3: TLS from the first byte, the certificate verified
		// against the relay's host name.
		tc := tls.Client(conn, tlsConfig)
		hctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			unwatch()
			conn.Close()
			return nil, fmt.Errorf("TLS: %w", err)
		}
		c, tlsVerified = smtp.NewClient(tc), true
	case TLSStartTLS, TLSMay:
		// RFC 3207 4: STARTTLS after EHLO; go-smtp verifies the certificate
		// with tlsConfig, and EHLO is said again over TLS (RFC 3207 4.2).
		// The EHLO before TLS names "localhost": go-smtp offers no way to
		// name ourselves before its STARTTLS.
		c, err = smtp.NewClientStartTLS(conn, tlsConfig)
		switch {
		case err == nil:
			tlsVerified = true
		case cfg.TLS == TLSMay && err.Error() == errNoStartTLS:
			unwatch()
			if conn, err = dial(); err != nil {
				return nil, err
			}
			c = smtp.NewClient(conn)
		default:
			unwatch()
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout, c.SubmissionTimeout = cfg.Timeout, cfg.Timeout
	rc := &relayConn{c: c, unwatch: unwatch}
	if err := c.Hello(cfg.HeloName); err != nil {
		rc.close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	if cfg.Username != "" {
		// The password goes only where nobody but the relay can read it.
		if !tlsVerified && !isLoopback(host) {
			rc.close()
			return nil, fmt.Errorf("AUTH refused: the connection to %s is not TLS with a verified certificate (set --smtp-relay-tls starttls or tls)", cfg.Relay)
		}
		if !c.SupportsAuth(sasl.Plain) {
			rc.close()
			return nil, errors.New("AUTH: the relay does not offer PLAIN")
		}
		// RFC 4954 4, RFC 4616 2: AUTH PLAIN with an empty authorization identity.
		if err := c.Auth(sasl.NewPlainClient("", cfg.Username, cfg.Password)); err != nil {
			rc.close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return rc, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// send runs one mail transaction (RFC 5321 3.3) and returns the error of
// each recipient the relay did not accept, and whether the connection is
// unusable afterwards.
func (rc *relayConn) send(env Envelope, body []byte) (failures map[string]error, broken bool) {
	failures = map[string]error{}
	failAll := func(to []string, err error) {
		for _, r := range to {
			failures[r] = err
		}
	}
	opts := &smtp.MailOptions{Size: int64(len(body))}
	if !isASCII(env.From) || slices.ContainsFunc(env.To, func(to string) bool { return !isASCII(to) }) {
		// RFC 6531 3.4: an address that is not ASCII needs SMTPUTF8, and a
		// relay without it will never take the message.
		if ok, _ := rc.c.Extension("SMTPUTF8"); !ok {
			failAll(env.To, permanentError{errors.New("an address is not ASCII and the relay does not offer SMTPUTF8")})
			return failures, false
		}
		opts.UTF8 = true
	}
	if err := rc.c.Mail(env.From, opts); err != nil {
		failAll(env.To, fmt.Errorf("MAIL FROM: %w", err))
		return failures, !rc.reset(err)
	}
	var accepted []string
	for _, to := range env.To {
		if err := rc.c.Rcpt(to, nil); err != nil {
			failures[to] = fmt.Errorf("RCPT TO: %w", err)
			if !isSMTPReply(err) {
				failAll(env.To, err)
				return failures, true
			}
			continue
		}
		accepted = append(accepted, to)
	}
	if len(accepted) == 0 {
		// RFC 5321 3.3: no recipient accepted, no DATA.
		return failures, !rc.reset(nil)
	}
	w, err := rc.c.Data()
	if err != nil {
		failAll(accepted, fmt.Errorf("DATA: %w", err))
		return failures, !rc.reset(err)
	}
	if _, err := io.Copy(w, bytes.NewReader(body)); err != nil {
		failAll(accepted, fmt.Errorf("DATA: %w", err))
		return failures, true
	}
	if err := w.Close(); err != nil {
		failAll(accepted, fmt.Errorf("end of DATA: %w", err))
		return failures, !isSMTPReply(err)
	}
	return failures, false
}

// reset ends a failed transaction with RSET (RFC 5321 4.1.1.5) and says
// whether the connection can carry the next one.
func (rc *relayConn) reset(cause error) bool {
	if cause != nil && !isSMTPReply(cause) {
		return false
	}
	return rc.c.Reset() == nil
}

func (rc *relayConn) close() {
	rc.unwatch()
	if rc.c.Quit() != nil {
		rc.c.Close()
	}
}

func isSMTPReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// permanentError is a failure that no retry mends, found without asking
// the relay.
type permanentError struct{ error }

// isTemporary says whether a failure may go away: a 4yz reply (RFC 5321
// 4.2.1) or a failure to talk to the relay at all. A 5yz reply and a
// permanentError are permanent.
func isTemporary(err error) bool {
	if errors.As(err, new(permanentError)) {
		return false
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code/100 != 5
	}
	return true
}
