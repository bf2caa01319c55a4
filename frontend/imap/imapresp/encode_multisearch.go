package imapresp

import (
	"strconv"

	"github.com/strata-mail/strata/frontend/message"
)

// AppendMultiSearch appends the ESEARCH response of one mailbox an ESEARCH command searched
// (RFC 7377 2.1): "* ESEARCH (TAG "tag" MAILBOX "name" UIDVALIDITY n) UID" and the return
// data of AppendESearch. The correlator names the mailbox (RFC 7377's formal syntax:
// search-correlator =/ "MAILBOX" SP astring, "UIDVALIDITY" SP nz-number; a quoted string,
// as in the RFC's examples), and the numbers are UIDs whichever mailbox was searched.
func AppendMultiSearch(b []byte, enc message.Encoder, mailbox string, uidValidity uint32, e ESearch) []byte {
	e.UID = true
	// AppendESearch's response with the correlator widened: its "* ESEARCH (TAG tag" is
	// followed by the ")" that ends the correlator, which a tag never holds (RFC 9051 9).
	head := len(enc.AppendString([]byte("* ESEARCH (TAG "), e.Tag))
	resp := AppendESearch(nil, enc, e)
	b = append(b, resp[:head]...)
	b = enc.AppendString(append(b, " MAILBOX "...), mailbox)
	b = strconv.AppendUint(append(b, " UIDVALIDITY "...), uint64(uidValidity), 10)
	return append(b, resp[head:]...)
}
