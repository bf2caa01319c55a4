package frontend

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/strata-mail/strata/frontend/imapwire"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Bounds on what a client can make the engine hold in memory.
const (
	maxLineLength    = 64 << 10 // one line of a command, without literals
	maxLiteralSize   = 64 << 10 // a literal outside APPEND
	maxCommandSize   = 1 << 20  // a whole command with its literals, outside APPEND
	maxBadCommands   = 20       // consecutive syntax errors before the server says BYE
	idleReadTimeout  = 30 * time.Minute
	writeTimeout     = 5 * time.Minute
	rpcTimeout       = 15 * time.Second
	shutdownByeText  = "Server shutting down"
	continuationText = "Ready for literal data"
)

// connState is a connection state of RFC 9051 3.
type connState int

const (
	stateNotAuthenticated connState = 1 << iota
	stateAuthenticated
	stateSelected
	stateLogout
)

// conn is one client connection; only its own goroutine (serve) uses it, except
// startShutdown.
type conn struct {
	srv    *Server
	nc     net.Conn
	log    *slog.Logger
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc
	framer *imapwire.Framer
	bw     *bufio.Writer

	state    connState
	account  *metadatapb.Account
	rev2     bool      // ENABLE IMAP4rev2 (RFC 9051 6.3.1)
	sel      *selected // the selected mailbox, in stateSelected
	cmd      *imapwire.Command
	shutdown atomic.Bool
	stopIdle chan struct{} // closed by startShutdown
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:      s,
		nc:       nc,
		log:      s.logger.With("conn", s.nextID.Add(1), "remote", nc.RemoteAddr().String()),
		ctx:      ctx,
		cancel:   cancel,
		framer:   imapwire.NewFramer(nc, maxLineLength),
		state:    stateNotAuthenticated,
		stopIdle: make(chan struct{}),
	}
	c.bw = bufio.NewWriterSize(deadlineWriter{nc}, 32<<10)
	return c
}

// deadlineWriter gives every write to the client a deadline, so a client that stops reading
// cannot hold its connection's goroutine forever.
type deadlineWriter struct{ nc net.Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	if err := w.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return 0, err
	}
	return w.nc.Write(p)
}

// startShutdown makes the connection say BYE and close: at once if it waits for a command
// or is in IDLE, after the running command otherwise. Called by Server.Shutdown.
func (c *conn) startShutdown() {
	if c.shutdown.Swap(true) {
		return
	}
	close(c.stopIdle)
	// Wakes a blocked read; serve sees the flag (see readCommandLoop).
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic serving IMAP connection", "panic", v, "stack", string(debug.Stack()))
		}
		c.closeSelected()
		c.cancel()
		c.nc.Close()
	}()
	c.log.Debug("IMAP connection opened")
	c.untagged("OK [CAPABILITY " + c.capabilities() + "] Strata IMAP ready")
	if err := c.bw.Flush(); err != nil {
		return
	}
	badCommands := 0
	for c.state != stateLogout {
		if err := c.nc.SetReadDeadline(time.Now().Add(idleReadTimeout)); err != nil {
			return
		}
		if c.shutdown.Load() {
			c.bye(shutdownByeText)
			return
		}
		cmd, err := c.readCommand()
		if err != nil {
			if c.shutdown.Load() {
				c.bye(shutdownByeText)
				return
			}
			var perr *protocolError
			if !errors.As(err, &perr) {
				if isTimeout(err) {
					c.bye("Autologout; idle for too long") // RFC 9051 5.4
				} else if !errors.Is(err, io.EOF) {
					c.log.Debug("read command", "err", err)
				}
				return
			}
			badCommands++
			if badCommands > maxBadCommands {
				c.bye("Too many invalid commands")
				return
			}
			c.writeStatus(perr.tag, perr.status)
			if c.bw.Flush() != nil {
				return
			}
			continue
		}
		badCommands = 0
		c.run(cmd)
		if err := c.bw.Flush(); err != nil {
			c.log.Debug("write response", "err", err)
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bye sends an untagged BYE (RFC 9051 7.1.5) and marks the connection for closing.
func (c *conn) bye(text string) {
	c.untagged("BYE " + text)
	c.bw.Flush()
	c.state = stateLogout
}

// protocolError is a command that could not be read or parsed, answered with status.
type protocolError struct {
	tag    string // "*" when unknown
	status *imapStatus
}

func (e *protocolError) Error() string { return e.status.Text }

// readCommand reads the next command: its line, and its literals, answering each
// synchronising literal with a continuation request (RFC 9051 7.5) before reading it. An
// APPEND stops at its message literal, which the APPEND handler streams into the spool.
func (c *conn) readCommand() (*imapwire.Command, error) {
	var buf []byte
	for {
		line, err := c.framer.ReadLine()
		if errors.Is(err, imapwire.ErrLineTooLong) {
			c.skipCommand(line)
			return nil, &protocolError{tag: tagOf(buf), status: bad("", "Line too long")}
		}
		if err != nil {
			return nil, err
		}
		if len(buf)+len(line) > maxCommandSize {
			c.skipCommand(line)
			return nil, &protocolError{tag: tagOf(buf), status: bad(codeLimit, "Command too long")}
		}
		buf = append(buf, line...)
		lit, ok := imapwire.LiteralAtEnd(line)
		if !ok {
			break
		}
		if cmd, err := imapwire.ParseAppendHead(buf); err == nil {
			return cmd, nil
		}
		if lit.Size > maxLiteralSize || int64(len(buf))+lit.Size > maxCommandSize {
			c.skipCommand(line)
			return nil, &protocolError{tag: tagOf(buf), status: bad(codeLimit, "Literal too large")}
		}
		if !lit.NonSync {
			c.continuation(continuationText)
			if err := c.bw.Flush(); err != nil {
				return nil, err
			}
		}
		buf = append(buf, '\r', '\n')
		if buf, err = c.framer.ReadLiteral(buf, lit.Size); err != nil {
			return nil, err
		}
	}
	cmd, err := imapwire.ParseCommand(buf)
	if err != nil {
		tag := "*"
		if cmd != nil {
			tag = cmd.Tag
		}
		return nil, &protocolError{tag: tag, status: bad("", err.Error())}
	}
	return cmd, nil
}

// skipCommand drops the rest of a refused command that ends with line: a non-synchronising
// literal the client sends anyway (RFC 7888 4) and the lines after it. A synchronising
// literal is never sent, since no continuation request is made.
func (c *conn) skipCommand(line []byte) {
	for {
		lit, ok := imapwire.LiteralAtEnd(line)
		if !ok || !lit.NonSync {
			return
		}
		if c.framer.Discard(lit.Size) != nil {
			return
		}
		next, err := c.framer.ReadLine()
		if err != nil && !errors.Is(err, imapwire.ErrLineTooLong) {
			return
		}
		line = next
	}
}

// tagOf returns the tag at the start of a partly read command, or "*".
func tagOf(buf []byte) string {
	cmd, _ := imapwire.ParseCommand(buf)
	if cmd == nil || cmd.Tag == "" {
		return "*"
	}
	return cmd.Tag
}

// run dispatches one command through the command table and writes its tagged response.
func (c *conn) run(cmd *imapwire.Command) {
	c.cmd = cmd
	defer func() { c.cmd = nil }()
	spec, ok := commands[cmd.Name]
	if !ok {
		c.discardAppendLiteral(cmd)
		c.writeStatus(cmd.Tag, bad("", "Unknown command "+cmd.Name))
		return
	}
	if spec.states&c.state == 0 {
		c.discardAppendLiteral(cmd)
		c.writeStatus(cmd.Tag, bad("", fmt.Sprintf("%s is not allowed in this state", cmd.Name)))
		return
	}
	start := time.Now()
	err := spec.handler(c, cmd)
	status := c.statusOf(cmd, err)
	if c.state == stateSelected && c.sel != nil {
		// RFC 9051 7: untagged updates go before the tagged response; 7.5.1 forbids EXPUNGE
		// in the response to FETCH, STORE and SEARCH (not their UID forms).
		c.sendUpdates(!spec.noExpunge)
	}
	c.writeStatus(cmd.Tag, status)
	c.log.Debug("IMAP command", "tag", cmd.Tag, "command", cmd.Name, "status", status.Type, "duration", time.Since(start))
}

// statusOf turns a handler's result into its tagged status response.
func (c *conn) statusOf(cmd *imapwire.Command, err error) *imapStatus {
	if err == nil {
		return ok("", cmd.Name+" completed")
	}
	var st *imapStatus
	if errors.As(err, &st) {
		return st
	}
	if c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return no(codeUnavailable, "Connection closing")
	}
	c.log.Error("IMAP command failed", "command", cmd.Name, "err", err)
	return no(codeServerBug, cmd.Name+" failed")
}

// discardAppendLiteral drops the message of an APPEND that is refused before its handler
// runs: a non-synchronising literal arrives anyway (RFC 7888 4); for a synchronising one no
// continuation was sent, so the client sends nothing.
func (c *conn) discardAppendLiteral(cmd *imapwire.Command) {
	if args, ok := cmd.Args.(*imapwire.AppendArgs); ok && args.Literal.NonSync {
		if c.framer.Discard(args.Literal.Size) == nil {
			line, _ := c.framer.ReadLine()
			c.skipCommand(line)
		}
	}
}

// rpcContext returns a context for one metadata or blob call: the connection's, with a
// deadline.
func (c *conn) rpcContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, rpcTimeout)
}

// encoder renders strings for this session: UTF-8 quoted strings once IMAP4rev2 is
// enabled (RFC 9051 4.3).
func (c *conn) encoder() message.Encoder {
	return message.Encoder{UTF8: c.rev2}
}

// tlsActive reports whether the connection is encrypted.
func (c *conn) tlsActive() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}
