package imap

import "github.com/emersion/go-imap/v2"

// UIDONLY (RFC 9586). Once a session enables it, it names messages by UID only: the
// commands that take message sequence numbers (marked seqNumbers in the dispatch table) and
// sequence numbers inside UID SEARCH criteria are BAD [UIDREQUIRED]; FETCH data goes out
// as "* uid UIDFETCH (...)" without the UID item, and expunges as VANISHED. The session's
// view still numbers the messages, for EXISTS and for QRESYNC's bookkeeping.

// fetchNum returns the number a FETCH response gives message i: its sequence number, or
// its UID in a UIDONLY session, whose responses are UIDFETCH (RFC 9586 3.3).
func (c *conn) fetchNum(i int) (num uint32, uidFetch bool) {
	if c.uidOnly {
		return c.sel.msgs.uid(i), true
	}
	return uint32(i + 1), false
}

// criteriaUseSeqNumbers reports whether search criteria name messages by sequence number
// anywhere, which a UIDONLY session may not (RFC 9586 3).
func criteriaUseSeqNumbers(c *imap.SearchCriteria) bool {
	return criteriaAny(c, func(c *imap.SearchCriteria) bool { return len(c.SeqNum) > 0 })
}
