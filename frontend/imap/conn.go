package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Bounds on what a client can make the engine hold in memory.
const (
	maxLineLength    = 64 << 10        // one line of a command, without literals
	maxLiteralSize   = 64 << 10        // a literal outside APPEND
	maxCommandSize   = 1 << 20         // a whole command with its literals, outside APPEND
	maxBadCommands   = 20              // consecutive syntax errors before the server says BYE
	writeTimeout     = 5 * time.Minute // default Limits.WriteTimeout; bounds blob transfers too
	rpcTimeout       = 15 * time.Second
	continuationText = "Ready for literal data"
)

// shutdownByeText is the BYE of a draining server (RFC 9051 7.1.5): UNAVAILABLE (RFC 5530
// 3) says the failure is temporary, and the text tells the user's client what to do; the
// load balancer sends the new connection to another frontend.
const shutdownByeText = "[" + imapresp.CodeUnavailable + "] Server shutting down, reconnect to continue"

// connState is a connection state of RFC 9051 3.
type connState int

const (
	stateNotAuthenticated connState = 1 << iota
	stateAuthenticated
	stateSelected
	stateLogout
)

// conn is one client connection; only its own goroutine (Serve) uses it, except
// StartShutdown and Close, which Server.Shutdown calls through the connection registry.
type conn struct {
	srv *Server
	raw net.Conn // the accepted socket
	// nc is what commands are read from and responses written to: raw, or the TLS
	// connection over it after STARTTLS or for IMAPS.
	nc          net.Conn
	implicitTLS bool
	refuse      string       // set when over a connection limit: BYE with this text, then close
	log         *slog.Logger // connLog, with the account once authenticated
	connLog     *slog.Logger
	ctx         context.Context // cancelled when the connection closes
	cancel      context.CancelFunc
	framer      *imapwire.Framer
	bw          *connWriter // responses, buffered
	// inflater decompresses the commands after COMPRESS DEFLATE (compress.go); nil while
	// the connection is not compressed.
	inflater *inflater
	// afterResponse, when set by a handler, runs once its tagged response has been sent:
	// the switch of COMPRESS and UNAUTHENTICATE between plain and compressed.
	afterResponse func()

	state   connState
	account *metadatapb.Account
	// accountChecked is when accountRevoked last asked for the account (quota.go).
	accountChecked time.Time

	// The protocol switches of the session, set by ENABLE (RFC 5161, RFC 9051 6.3.1). Every
	// IMAP4rev1/IMAP4rev2 difference is decided by these two fields, read directly or
	// through utf8Enabled:
	//   - rev2 (ENABLE IMAP4rev2): SEARCH answers with ESEARCH (RFC 9051 6.4.4), no \Recent
	//     and no RECENT or UNSEEN in SELECT (RFC 9051 appendix E) but LIST (6.3.2), UTF-8
	//     quoted strings and mailbox names (RFC 9051 4.3, 5.1). Tests run in both modes
	//     (modes_test.go).
	//   - utf8Accept (ENABLE UTF8=ACCEPT, RFC 6855 3): UTF-8 quoted strings and mailbox names
	//     for an IMAP4rev1 session; the rest of IMAP4rev1 stays.
	rev2       bool
	utf8Accept bool
	// condStore and qresync: RFC 7162 (condstore.go).
	condStore bool
	qresync   bool
	// uidOnly: RFC 9586 (uidonly.go).
	uidOnly bool

	sel *selected // the selected mailbox, in stateSelected
	// searchDeadline, while an ESEARCH runs (multisearch.go), is when the scans of all its
	// mailboxes must have ended; zero otherwise, each SEARCH then having its own.
	searchDeadline time.Time
	// lastAppend is where the last APPEND to one of the account's own mailboxes went, so
	// that the next APPEND by the same name skips the lookup (append.go).
	lastAppend *rememberedTarget
	// notify is the session's NOTIFY SET (RFC 5465, notify.go); nil without one.
	notify *notifyState
	cmd    *imapwire.Command
	// idle is the IDLE in progress (idle.go): the session waits for DONE.
	idle *idleCommand
	// measured is the command being counted and timed in the metrics (metrics.go).
	measured measuredCommand
	// badCommands counts consecutive commands that could not be read or parsed.
	badCommands int
	shutdown    atomic.Bool
	// The wait for the client (park.go): deadline is the autologout of the wait for the
	// next command (RFC 9051 5.4), which reading it shares; resume is set while Serve is
	// parked, waitErr is how its wait ended.
	deadline time.Time
	resume   bool
	waitErr  error
	parking  parking
	// taggedStatus is the type of the last tagged status written, and tlsStarted is set
	// after a successful STARTTLS: the command and connection metrics (metrics.go).
	taggedStatus string
	tlsStarted   atomic.Bool
}

func newConn(s *Server, nc net.Conn, id uint64, implicitTLS bool) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	log := s.logger.With("conn", id, "remote", nc.RemoteAddr().String())
	c := &conn{
		srv:         s,
		raw:         nc,
		implicitTLS: implicitTLS,
		log:         log,
		connLog:     log,
		ctx:         ctx,
		cancel:      cancel,
		state:       stateNotAuthenticated,
	}
	c.useConn(nc)
	return c
}

// StartShutdown makes the connection say BYE and close: at once if it waits for a command
// or is in IDLE, after the running command otherwise (an APPEND whose message is arriving
// completes first). Called by Server.Shutdown, through the registry, which paces the calls
// (connserver.Registry.Shutdown); from the start of the shutdown, stopping already keeps a
// connection from running a next command.
func (c *conn) StartShutdown() {
	if c.shutdown.Swap(true) {
		return
	}
	c.interrupt()
}

// stopping reports whether the connection must say BYE instead of running a next command:
// it was asked to end, or the server has begun to shut down (the registry is closing)
// and will ask it in its turn.
func (c *conn) stopping() bool {
	return c.shutdown.Load() || c.srv.conns.Closing()
}

// errAnswered is returned by a handler that wrote its tagged response itself (STARTTLS,
// which must answer before the handshake); run writes nothing more.
var errAnswered = errors.New("tagged response already written")

// readTimeout is the autologout timer for the connection's state (RFC 9051 5.4).
func (c *conn) readTimeout() time.Duration {
	if c.state == stateNotAuthenticated {
		return c.srv.limits.LoginTimeout
	}
	return c.srv.limits.IdleTimeout
}

// utf8Enabled reports whether quoted strings and mailbox names are sent and taken as UTF-8
// (RFC 9051 4.3 and 5.1 for IMAP4rev2, RFC 6855 3 after ENABLE UTF8=ACCEPT) rather than
// ASCII with modified UTF-7 mailbox names (RFC 3501 5.1.3).
func (c *conn) utf8Enabled() bool {
	return c.rev2 || c.utf8Accept
}

// Close closes the socket at once, when Server.Shutdown's grace period is over.
func (c *conn) Close() { c.raw.Close() }

// Logger is the connection's logger, for a panic the connection registry recovers.
func (c *conn) Logger() *slog.Logger { return c.log }

// Serve runs the connection until it ends, or until it parks (park.go): it returns true
// when the session waits for its client with nothing else to do, holding no read or write
// buffer, and the registry (connserver) calls it again in a new goroutine, which waits and
// goes on. A panic is recovered, logged and counted by the registry, after the connection
// is closed.
func (c *conn) Serve() (parked bool) {
	defer func() {
		if !parked {
			c.endMeasured(resultBYE) // a command the connection ended in, or panicked in
			c.closeSelected()
			c.stopNotify()
			c.releaseAccount()
			c.cancel()
			c.raw.Close()
		}
	}()
	if c.resume {
		c.resume = false
		c.wait()
	} else if !c.open() {
		return false
	}
	for c.state != stateLogout {
		if !c.inputReady() {
			if c.state == stateLogout {
				break
			}
			if c.linger() {
				continue
			}
			c.resume = true
			return true
		}
		c.serveInput()
	}
	return false
}

// open starts the connection: the BYE of one refused over a limit, the IMAPS handshake,
// the greeting. False ends the connection.
func (c *conn) open() bool {
	if c.refuse != "" {
		if c.implicitTLS && c.handshake(tls.Server(c.raw, c.srv.cfg.TLS)) != nil {
			return false
		}
		c.log.Info("IMAP connection refused", "reason", c.refuse)
		c.bye(c.refuse)
		return false
	}
	if c.implicitTLS {
		if err := c.handshake(tls.Server(c.raw, c.srv.cfg.TLS)); err != nil {
			c.log.Debug("IMAPS handshake", "err", err)
			return false
		}
	}
	c.log.Debug("IMAP connection opened", "tls", c.tlsActive())
	c.untaggedOK(imapresp.CapabilityCode(c.capabilities()), "Strata IMAP ready")
	if err := c.bw.Flush(); err != nil {
		return false
	}
	c.deadline = time.Now().Add(c.readTimeout())
	return true
}

// serveInput reads what the client sent and serves it: DONE in IDLE, or the next command.
func (c *conn) serveInput() {
	if !c.startReading() {
		c.bye(shutdownByeText)
		if c.idle != nil {
			c.endIdle(nil)
		}
		return
	}
	if c.idle != nil {
		line, err := c.framer.ReadLine()
		c.readDone(line, err)
		c.commandDone()
		return
	}
	cmd, err := c.readCommand()
	if err != nil {
		if c.stopping() {
			c.bye(shutdownByeText)
			return
		}
		var perr *protocolError
		if !errors.As(err, &perr) {
			if isTimeout(err) {
				c.bye("Autologout; idle for too long") // RFC 9051 5.4
			} else {
				if !errors.Is(err, io.EOF) {
					c.log.Debug("read command", "err", err)
				}
				c.state = stateLogout
			}
			return
		}
		c.srv.metrics.countUnparsed(perr.name)
		c.badCommands++
		if c.badCommands > maxBadCommands {
			c.bye("Too many invalid commands")
			return
		}
		c.writeStatus(perr.tag, perr.status)
		c.commandDone()
		return
	}
	c.badCommands = 0
	c.runMeasured(cmd)
	if c.idle == nil {
		c.commandDone()
	}
}

// commandDone sends the response of a command that ended, runs what it left to do after
// it (afterResponse) and starts the autologout timer of the wait for the next one.
//
// While the next command of a pipeline has arrived (its first line whole in the read
// buffer), the response stays buffered and goes out with that command's: the responses
// of a pipeline leave in one write, not one each, as Dovecot corks its output while it
// has commands to serve (RFC 9051 5.5 lets the server answer a pipeline in its time,
// in order). The hold is bounded (connWriter.hold): the held response goes out as soon
// as the next command is about to wait, for the client (every read from the connection,
// flushingReader: a literal still on its way, the rest of a line; a continuation request
// of a synchronising literal, AUTHENTICATE or IDLE flushes anyway), for a metadata call
// (rpcContext, withRetry) or for the change feed (waitForFeed), and at the latest after
// pipelineHold, so a response never waits for a slow command after it; a client that
// stops reading fills the buffer, which then flushes, as before.
func (c *conn) commandDone() {
	c.deadline = time.Now().Add(c.readTimeout())
	if c.afterResponse == nil && c.state != stateLogout && c.framer.LineBuffered() {
		c.bw.hold()
		return
	}
	if err := c.bw.Flush(); err != nil {
		c.log.Debug("write response", "err", err)
		c.state = stateLogout
		return
	}
	if after := c.afterResponse; after != nil {
		c.afterResponse = nil
		after()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bye sends an untagged BYE (RFC 9051 7.1.5) and marks the connection for closing.
func (c *conn) bye(text string) {
	c.bw.Write(imapresp.AppendStatusResponse(nil, "*", "BYE", "", text))
	c.bw.Flush()
	c.state = stateLogout
}

// protocolError is a command that could not be read or parsed, answered with status.
type protocolError struct {
	tag    string // "*" when unknown
	name   string // the command's name when it was read but could not be parsed
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
			return nil, &protocolError{tag: tagOf(buf), status: bad(imapresp.CodeLimit, "Command too long")}
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
			refusal := bad(imapresp.CodeLimit, "Literal too large")
			if metadata := metadataLiteralRefusal(buf); metadata != nil && lit.Size > maxLiteralSize {
				refusal = metadata
			}
			return nil, &protocolError{tag: tagOf(buf), status: refusal}
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
		tag, name := "*", ""
		if cmd != nil {
			tag, name = cmd.Tag, cmd.Name
		}
		return nil, &protocolError{tag: tag, name: name, status: bad("", err.Error())}
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
	if spec.seqNumbers && c.uidOnly {
		c.discardAppendLiteral(cmd)
		c.writeStatus(cmd.Tag, bad(imapresp.CodeUIDRequired, cmd.Name+" uses message sequence numbers, which UIDONLY does not allow")) // RFC 9586 3
		return
	}
	if c.state&authState != 0 {
		// RFC 9051 7.1.5: BYE, the server closes the connection.
		if why := c.accountRevoked(); why != "" {
			c.discardAppendLiteral(cmd)
			c.bye(why)
			return
		}
	}
	// RFC 4314: a right revoked on another owner's selected mailbox applies from the
	// session's next command, except those that leave the mailbox anyway.
	if c.state == stateSelected && c.sel != nil && c.sel.owner != c.accountName() && !leavesMailbox[cmd.Name] && !c.refreshRights() {
		c.discardAppendLiteral(cmd)
		return
	}
	start := time.Now()
	atTestHook("command " + cmd.Name)
	err := spec.handler(c, cmd)
	if errors.Is(err, errIdling) {
		c.idle = &idleCommand{cmd: cmd, start: start}
		return
	}
	c.finish(cmd, spec, start, err)
}

// finish writes the response of a command whose handler returned err: the untagged updates
// that may go with it, then its tagged status.
func (c *conn) finish(cmd *imapwire.Command, spec commandSpec, start time.Time, err error) {
	if errors.Is(err, errAnswered) {
		c.log.Debug("IMAP command", "tag", cmd.Tag, "command", cmd.Name, "duration", time.Since(start))
		return
	}
	var unknown *outcomeUnknown
	if errors.As(err, &unknown) && c.ctx.Err() == nil {
		// No tagged response: the client cannot be told whether the command took effect.
		c.log.Warn("IMAP command outcome unknown; closing the session", "command", cmd.Name, "err", err)
		c.bw.Write(imapresp.AppendStatusResponse(nil, "*", "BYE", imapresp.CodeUnavailable, "The mail store did not confirm "+cmd.Name+"; reconnect to see its effect"))
		c.bw.Flush()
		c.state = stateLogout
		return
	}
	status := c.statusOf(cmd, err)
	if c.state == stateSelected && c.sel != nil {
		// RFC 9051 7: untagged updates go before the tagged response; 7.5.1 forbids EXPUNGE
		// in the response to FETCH, STORE and SEARCH (not their UID forms).
		c.sendUpdates(!spec.noExpunge)
	}
	if c.state != stateLogout {
		c.sendNotifications() // RFC 5465: STATUS and LIST go out with any response
	}
	c.writeStatus(cmd.Tag, status)
	c.log.Debug("IMAP command", "tag", cmd.Tag, "command", cmd.Name, "status", status.Type, "duration", time.Since(start))
}

// leavesMailbox are the commands that need no rights on the selected mailbox, since they
// leave it (RFC 9051 6.3.2, 6.4.2, 6.1.3).
var leavesMailbox = map[string]bool{"SELECT": true, "EXAMINE": true, "UNSELECT": true, "LOGOUT": true}

// statusOf turns a handler's result into its tagged status response.
func (c *conn) statusOf(cmd *imapwire.Command, err error) *imapStatus {
	if err == nil {
		return ok("", cmd.Name+" completed")
	}
	var st *imapStatus
	if errors.As(err, &st) {
		return st
	}
	if st := c.blobStatus(cmd, err); st != nil {
		return st
	}
	if c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return no(imapresp.CodeUnavailable, "Connection closing")
	}
	c.log.Error("IMAP command failed", "command", cmd.Name, "err", err)
	return no(imapresp.CodeServerBug, cmd.Name+" failed")
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
// deadline. The call may take a while, so a response held for a pipeline goes out first
// (commandDone).
func (c *conn) rpcContext() (context.Context, context.CancelFunc) {
	c.bw.flushHeld()
	return context.WithTimeout(c.ctx, rpcTimeout)
}

// encoder renders strings for this session: UTF-8 quoted strings once IMAP4rev2 or
// UTF8=ACCEPT is enabled (RFC 9051 4.3, RFC 6855 3).
func (c *conn) encoder() message.Encoder {
	return message.Encoder{UTF8: c.utf8Enabled()}
}

// tlsActive reports whether the connection is encrypted.
func (c *conn) tlsActive() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}
