package imap

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Parking (issue 14): most of a server's connections wait for their client most of the
// time, between commands or in IDLE, so a waiting connection holds as little as it can.
//
//   - Serve parks the session when the client has sent nothing yet: it gives the read
//     buffer back (imapwire.Framer.Release; the write buffer goes back after each response,
//     connwriter.go) and returns, and the registry (frontend/connserver) calls Serve
//     again in a new goroutine, whose small stack waits (wait). The goroutine that served
//     the commands, with the stack they grew, ends. A parked connection therefore holds
//     one goroutine blocked in a read of at most 128 bytes (Framer.Wait), the one that
//     reads the socket, and no buffer; TLS keeps its own state (crypto/tls), COMPRESS its
//     decompressor and the framer's buffers below it, which cannot be given back.
//   - What must reach a waiting client ends the wait by a read deadline in the past
//     (interrupt): a change of the selected mailbox or an account notification for a
//     session in IDLE (RFC 2177, RFC 9051 6.3.13) or with NOTIFY (RFC 5465 3), and
//     shutdown. No other goroutine waits on the session's behalf. The session then sends
//     what it may (sendUnsolicited) in the goroutine that serves it, and parks again.
//   - A read deadline that an interrupt set never outlives the wait it was meant for: the
//     interrupt sets it under parking.mu only while the wait is in progress, and the wait
//     ends under the same lock before the session sets its own deadline again. A command
//     being read is never interrupted, not even by shutdown: it is read whole and run (a
//     draining server lets each session finish its current command), unless the drain's
//     deadline closes the socket first.
//   - The autologout timer (RFC 9051 5.4) is the wait's read deadline: deadline, started
//     when the previous command ended, runs on through the wait, the reading of the next
//     command, and IDLE until DONE, as it did before parking.
//   - A client that sent something (even one byte, which Wait keeps) is read at once,
//     without parking again; so is one whose pipelined commands are buffered. Before it
//     parks, a session waits parkDelay in its goroutine (linger), without its read buffer,
//     so that a client in the middle of a conversation costs no new goroutine per command.

// parking is the state a waiting connection shares with what interrupts it.
type parking struct {
	mu      sync.Mutex
	waiting bool // wait is blocked in (or about to start) its read
	woken   bool // an interrupt came since the last wait ended
	// armed is the read deadline the socket has, as far as the session knows: the zero
	// time after an interrupt set one of its own.
	armed time.Time
	// onFeed: changes of the feeds interrupt the wait (IDLE, NOTIFY); set by the serving
	// goroutine before it takes the changes it sends.
	onFeed atomic.Bool
}

// interrupt ends the connection's wait for its client, if it waits, or the next one before
// it begins. A command being read is left to arrive.
func (c *conn) interrupt() {
	p := &c.parking
	p.mu.Lock()
	defer p.mu.Unlock()
	p.woken = true
	if p.waiting {
		c.raw.SetReadDeadline(time.Now())
		p.armed = time.Time{}
	}
}

// disarm records that the socket's read deadline was set otherwise than by armLocked (the
// TLS handshake, the end of COMPRESS).
func (c *conn) disarm() {
	c.parking.mu.Lock()
	c.parking.armed = time.Time{}
	c.parking.mu.Unlock()
}

// armLocked sets the socket's read deadline to t, unless it has it already; parking.mu is
// held.
func (c *conn) armLocked(t time.Time) error {
	p := &c.parking
	if p.armed.Equal(t) {
		return nil
	}
	if err := c.raw.SetReadDeadline(t); err != nil {
		return err
	}
	p.armed = t
	return nil
}

// feedChanged is called by the session's change feeds (its selected mailbox's and its
// NOTIFY account feed) when changes arrive, from their goroutines.
func (c *conn) feedChanged() {
	if c.parking.onFeed.Load() {
		c.interrupt()
	}
}

// parkDelay is how long a session waits for its client in the goroutine that served it
// before it parks: a client in the middle of a conversation sends its next command sooner
// and is served without a new goroutine, whose stack would grow again.
const parkDelay = 20 * time.Millisecond

// wait waits until the client sends something, an interrupt comes or the autologout
// deadline passes; waitErr says which error ended it, if one did.
func (c *conn) wait() {
	c.waitUntil(c.deadline)
}

// linger waits up to parkDelay before the session parks, and reports whether the wait
// ended otherwise than by that delay (waitErr says how, as for wait).
func (c *conn) linger() bool {
	until := time.Now().Add(parkDelay)
	if !until.Before(c.deadline) {
		return false
	}
	return !c.waitUntil(until)
}

// waitUntil is wait that gives up at until, before the autologout deadline, and then
// reports true.
func (c *conn) waitUntil(until time.Time) (gaveUp bool) {
	p := &c.parking
	p.mu.Lock()
	if p.woken || c.shutdown.Load() {
		p.woken = false
		p.mu.Unlock()
		return false
	}
	if err := c.armLocked(until); err != nil {
		p.mu.Unlock()
		c.waitErr = err
		return false
	}
	p.waiting = true
	p.mu.Unlock()
	err := c.framer.Wait()
	p.mu.Lock()
	p.waiting = false
	woken := p.woken
	p.woken = false
	p.mu.Unlock()
	switch {
	case err == nil:
	case isTimeout(err) && time.Now().Before(c.deadline):
		// An interrupt, or until.
		return !woken
	default:
		c.waitErr = err
	}
	return false
}

// startReading sets the deadline of reading what the client sent, unless the server is
// shutting down (false): a pipelined command is not run either.
func (c *conn) startReading() bool {
	p := &c.parking
	p.mu.Lock()
	defer p.mu.Unlock()
	return !c.stopping() && c.armLocked(c.deadline) == nil
}

// inputReady reports whether the client sent something to read: a command, or DONE in
// IDLE. Before it says no, it ends the session if its last wait failed or the server shuts
// down, sends what may go out while the client is quiet, and gives back the read buffer:
// the caller then parks the session, unless it ended (stateLogout).
func (c *conn) inputReady() bool {
	err := c.waitErr
	c.waitErr = nil
	switch {
	case c.stopping():
		c.bye(shutdownByeText)
	case isTimeout(err):
		c.bye("Autologout; idle for too long") // RFC 9051 5.4
	case err != nil:
		if !errors.Is(err, io.EOF) {
			c.log.Debug("wait for command", "err", err)
		}
		c.state = stateLogout
	}
	pending := c.framer.Pending()
	if c.state != stateLogout {
		c.parking.onFeed.Store(c.idle != nil || c.notify != nil)
		// RFC 2177: in IDLE the mailbox's changes go out as they come; RFC 5465 3, 4: with
		// NOTIFY, what it asks for, in IDLE and between commands. A NOTIFY session whose
		// next command has arrived gets them with its response.
		if c.idle != nil || c.notify != nil && !pending {
			if c.idle != nil {
				c.cmd = c.idle.cmd
			}
			c.sendUnsolicited(c.idle != nil)
			c.cmd = nil
			if c.state != stateLogout && c.bw.Flush() != nil {
				c.state = stateLogout
			}
		}
	}
	if c.state == stateLogout {
		if c.idle != nil {
			c.endIdle(nil)
			c.bw.Flush()
		}
		return false
	}
	if pending {
		return true
	}
	c.framer.Release()
	return false
}
