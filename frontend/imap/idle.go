package imap

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
)

// cmdIdle: IDLE (RFC 9051 6.3.13, RFC 2177). Mailbox changes are sent as they arrive, EXPUNGE
// included, until the client sends DONE; with NOTIFY, the events it asks for (RFC 5465 4).
func (c *conn) cmdIdle(cmd *imapwire.Command) error {
	c.continuation("idling")
	if err := c.bw.Flush(); err != nil {
		return err
	}
	type lineResult struct {
		line []byte
		err  error
	}
	// The only reader of the connection while IDLE lasts; it ends with the DONE line or
	// when the connection fails or is closed.
	lines := make(chan lineResult, 1)
	go func() {
		defer c.srv.recoverPanic(c.log, "IDLE reader", func(v any) {
			lines <- lineResult{err: fmt.Errorf("read DONE: panic: %v", v)}
		})
		line, err := c.framer.ReadLine()
		lines <- lineResult{append([]byte(nil), line...), err}
	}()
	for {
		// The channels are taken before the changes, so that none arriving in between is
		// left waiting.
		var changes, notices <-chan struct{}
		if c.sel != nil {
			changes = c.sel.feed.arrivals()
		}
		if c.notify != nil {
			notices = c.notify.feed.arrivals()
		}
		// RFC 5465 4: with NOTIFY, IDLE sends what NOTIFY asks for.
		c.sendUnsolicited(true)
		if c.state == stateLogout {
			return nil
		}
		if err := c.bw.Flush(); err != nil {
			return err
		}
		select {
		case <-changes:
		case <-notices:
		case <-c.stopIdle:
			// Shutdown: BYE now; the blocked read ends when serve closes the connection.
			c.bye(shutdownByeText)
			return nil
		case res := <-lines:
			if res.err != nil && c.shutdown.Load() {
				c.bye(shutdownByeText)
				return nil
			}
			if res.err != nil {
				if errors.Is(res.err, imapwire.ErrLineTooLong) {
					return bad("", "Expected DONE")
				}
				if isTimeout(res.err) {
					c.bye("Autologout; idle for too long")
					return nil
				}
				c.state = stateLogout
				return res.err
			}
			if !strings.EqualFold(string(res.line), "DONE") {
				return bad("", "Expected DONE") // RFC 2177 3
			}
			// The read deadline set for the IDLE command line applies; renew it for the
			// commands that follow.
			return c.raw.SetReadDeadline(time.Now().Add(c.readTimeout()))
		}
	}
}
