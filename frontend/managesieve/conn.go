package managesieve

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/frontend/managesieve/sievewire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// state is where a session is in RFC 5804's two states.
type state int

const (
	stateNotAuthenticated state = iota
	stateAuthenticated
	stateLogout // the connection closes after the current response
)

// shutdownByeText is the BYE of a draining server, sent with the TRYLATER code (RFC 5804
// 1.3: a temporary server failure, to be tried again later); the load balancer sends the
// client's new connection to another frontend.
const shutdownByeText = "Server shutting down, reconnect to continue"

// conn is one client connection, served by one goroutine.
type conn struct {
	srv     *Server
	raw     net.Conn // the socket, for Shutdown's wake-up
	nc      net.Conn // the socket or the TLS connection over it
	r       *sievewire.Reader
	bw      *bufio.Writer
	ctx     context.Context
	cancel  context.CancelFunc
	log     *slog.Logger
	connLog *slog.Logger
	refused string // over MaxConnections or MaxConnectionsPerIP: told BYE with it and closed

	state   state
	account *metadatapb.Account
	// accountChecked is when dispatch last re-checked the login (auth.Recheck).
	accountChecked time.Time
	bad            int // commands in a row that failed to parse or were unknown
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{srv: s, raw: nc, ctx: ctx, cancel: cancel}
	c.connLog = s.logger.With("conn", id, "remote", nc.RemoteAddr().String())
	c.log = c.connLog
	c.useConn(nc)
	return c
}

// useConn makes nc the connection commands are read from and responses written to; what
// was read from the previous one and not used is dropped with its reader.
func (c *conn) useConn(nc net.Conn) {
	c.nc = nc
	c.r = sievewire.NewReader(bufio.NewReader(nc), sievewire.Limits{
		MaxLine: c.srv.limits.MaxLine, MaxLiteral: c.srv.limits.MaxScriptSize, MaxDiscard: c.srv.limits.MaxDiscard,
	})
	c.bw = bufio.NewWriter(connserver.DeadlineWriter{Conn: nc, Timeout: c.srv.limits.WriteTimeout})
}

func (c *conn) tlsActive() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}

func (c *conn) rpcContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, rpcTimeout)
}

// StartShutdown ends the wait for the next command at once; next checks the server's
// closing after setting its own deadline, so it cannot push this one back. A command that
// is running finishes first. Called by Server.Shutdown.
func (c *conn) StartShutdown() {
	_ = c.raw.SetReadDeadline(time.Now()) // a closed socket needs no wake-up
}

// Close closes the socket at once, when Server.Shutdown's grace period is over.
func (c *conn) Close() { c.raw.Close() }

// Logger is the connection's logger, for a panic the connection registry recovers.
func (c *conn) Logger() *slog.Logger { return c.log }

// Serve runs the connection until the client logs out, the connection fails or the
// server shuts down. A panic is recovered and logged with the connection by the connection
// registry (connserver), after the connection is closed. It never parks.
func (c *conn) Serve() (parked bool) {
	defer func() {
		c.cancel()
		c.nc.Close()
	}()
	if c.refused != "" {
		c.writeResponse(bye(codeTryLater, c.refused))
		_ = c.bw.Flush() // closing anyway
		return false
	}
	// RFC 5804 1.7: the server greets with its capabilities and OK.
	c.writeCapabilities()
	c.writeResponse(ok("Strata ManageSieve ready"))
	if c.bw.Flush() != nil {
		return false
	}
	for c.state != stateLogout {
		if !c.next() {
			return false
		}
	}
	return false
}

// next reads, runs and answers one command; false ends the connection.
func (c *conn) next() bool {
	timeout := c.srv.limits.LoginTimeout
	if c.state == stateAuthenticated {
		timeout = c.srv.limits.IdleTimeout
	}
	if err := c.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return false
	}
	if c.srv.isClosing() {
		c.sayBye(bye(codeTryLater, shutdownByeText))
		return false
	}
	cmd, err := c.r.ReadCommand()
	if err != nil {
		return c.readFailed(err)
	}
	resp, err := c.dispatch(cmd)
	switch {
	case errors.Is(err, errAnswered):
		return c.bw.Flush() == nil
	case err != nil:
		// A handler that reads more from the client (AUTHENTICATE's response line) fails
		// the way reading a command does.
		var ne net.Error
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
			errors.Is(err, sievewire.ErrLineTooLong) || errors.Is(err, sievewire.ErrLiteralTooLarge) || (errors.As(err, &ne) && ne.Timeout()) {
			return c.readFailed(err)
		}
		c.log.Error("ManageSieve command", "command", cmd.Name, "err", err)
		resp = no("", "Internal error")
	}
	c.writeResponse(resp)
	if resp.status == "BYE" {
		c.state = stateLogout
	}
	return c.bw.Flush() == nil
}

// readFailed answers a command that could not be read; false ends the connection.
func (c *conn) readFailed(err error) bool {
	var syn *sievewire.SyntaxError
	var ne net.Error
	switch {
	case errors.As(err, &syn):
		return c.badCommand(syn.Msg)
	case errors.Is(err, sievewire.ErrLineTooLong):
		c.sayBye(bye("", "Command line too long"))
	case errors.Is(err, sievewire.ErrLiteralTooLarge):
		c.sayBye(bye(codeQuotaMaxSize, "Literal too large"))
	case errors.As(err, &ne) && ne.Timeout():
		if c.srv.isClosing() {
			c.sayBye(bye(codeTryLater, shutdownByeText))
		} else {
			c.sayBye(bye("", "Autologout: idle for too long"))
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
	default:
		c.log.Debug("read ManageSieve command", "err", err)
	}
	return false
}

// badCommand answers a command that failed to parse or is unknown, and ends the session
// after too many in a row (a client that is not speaking ManageSieve).
func (c *conn) badCommand(msg string) bool {
	c.bad++
	if c.bad >= c.srv.limits.MaxBadCommands {
		c.sayBye(bye("", "Too many invalid commands"))
		return false
	}
	c.writeResponse(no("", msg))
	return c.bw.Flush() == nil
}

// sayBye writes a last response before the connection closes.
func (c *conn) sayBye(r *response) {
	c.writeResponse(r)
	_ = c.bw.Flush() // closing anyway
	c.state = stateLogout
}

func (c *conn) writeResponse(r *response) {
	_, _ = c.bw.Write(r.appendLine(nil)) // Flush reports an error
}

// writeLine writes one data line (a capability, a script listing) and CRLF.
func (c *conn) writeLine(b []byte) {
	_, _ = c.bw.Write(append(b, "\r\n"...)) // Flush reports an error
}

// startTLS runs the server side of the handshake after STARTTLS's OK.
func (c *conn) startTLS() error {
	tc := tls.Server(c.nc, c.srv.cfg.TLS)
	if err := tc.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	if err := tc.SetDeadline(time.Time{}); err != nil {
		return err
	}
	c.useConn(tc)
	return nil
}
