package imap

import (
	"errors"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
)

// idleCommand is an IDLE in progress: its tagged response waits for DONE.
type idleCommand struct {
	cmd   *imapwire.Command
	start time.Time
}

// errIdling is cmdIdle's result: IDLE goes on, and the connection's loop serves it (park.go)
// until DONE.
var errIdling = errors.New("IDLE in progress")

// cmdIdle: IDLE (RFC 9051 6.3.13, RFC 2177). Mailbox changes are sent as they arrive, EXPUNGE
// included, until the client sends DONE; with NOTIFY, the events it asks for (RFC 5465 4).
// The session waits for DONE as it waits for a command, parked (park.go): inputReady sends
// the changes while it waits, readDone ends the IDLE.
func (c *conn) cmdIdle(*imapwire.Command) error {
	c.continuation("idling")
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return errIdling
}

// readDone ends the IDLE in progress with the line the client sent, which must be DONE, or
// the error reading it.
func (c *conn) readDone(line []byte, err error) {
	switch {
	case err != nil && c.stopping():
		c.bye(shutdownByeText)
		c.endIdle(nil)
	case errors.Is(err, imapwire.ErrLineTooLong):
		c.endIdle(bad("", "Expected DONE"))
	case isTimeout(err):
		c.bye("Autologout; idle for too long") // RFC 9051 5.4
		c.endIdle(nil)
	case err != nil:
		c.state = stateLogout
		c.endIdle(err)
	case !strings.EqualFold(string(line), "DONE"):
		c.endIdle(bad("", "Expected DONE")) // RFC 2177 3
	default:
		c.endIdle(nil)
	}
}

// endIdle ends the IDLE in progress as a command ends, with err as its handler's result:
// the updates that go with its response, its tagged status, its metrics.
func (c *conn) endIdle(err error) {
	idle := c.idle
	c.idle = nil
	c.cmd = idle.cmd
	c.finish(idle.cmd, commands[idle.cmd.Name], idle.start, err)
	c.cmd = nil
	c.endMeasured(c.measuredResult())
}
