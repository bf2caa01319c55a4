package workload

import (
	"errors"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/strata-mail/strata/jepsen/history"
)

// deliverOp delivers a new message over LMTP to a random account's address, on a random LMTP
// frontend, in a connection of its own (its own history Session).
func (c *client) deliverOp() {
	if len(c.cfg.LMTPAddrs) == 0 {
		return
	}
	to := c.cfg.Accounts[c.rng.IntN(len(c.cfg.Accounts))]
	addr := c.cfg.LMTPAddrs[c.rng.IntN(len(c.cfg.LMTPAddrs))]
	mid, body := c.message()
	op := history.Op{Process: c.process, Session: c.sessions.Add(1), Frontend: addr, Kind: history.KindDeliver,
		Account: to.User, Mailbox: "INBOX", MessageID: mid}
	id := c.cfg.Recorder.Invoke(op)
	result, err := deliver(addr, to.Address, body, c.cfg.OpTimeout)
	c.cfg.Recorder.Complete(id, func(o *history.Op) {
		*o = op
		o.Outcome = result
		if err != nil {
			o.Error = err.Error()
		}
	})
}

// deliver runs one LMTP transaction (RFC 2033). A refusal before the end of DATA is a
// definite failure; anything after the message was sent that is not a 250 for the recipient
// leaves the outcome unknown.
func deliver(addr, rcpt string, body []byte, timeout time.Duration) (history.Outcome, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return history.Fail, err
	}
	conn.SetDeadline(time.Now().Add(timeout))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	// A refusal or a connection lost before the final "." cannot have delivered.
	before := func(err error) (history.Outcome, error) { return history.Fail, err }
	if err := c.Hello("jepsen.test"); err != nil {
		return before(err)
	}
	if err := c.Mail("jepsen@jepsen.test", nil); err != nil {
		return before(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return before(err)
	}
	w, err := c.Data()
	if err != nil {
		return before(err)
	}
	if _, err := w.Write(body); err != nil {
		return before(err)
	}
	// The final "." goes out in CloseWithLMTPResponse: from here on the server may have
	// committed the message whatever the client hears.
	resp, err := w.CloseWithLMTPResponse()
	if err != nil {
		return history.Unknown, err
	}
	if _, ok := resp[rcpt]; !ok {
		return history.Unknown, errors.New("no reply for the recipient")
	}
	c.Quit()
	return history.OK, nil
}
