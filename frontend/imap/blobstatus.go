package imap

import (
	"errors"
	"io"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
)

// blobStatus maps a blob store failure that reached a command's end to its tagged response,
// or returns nil for any other error:
//   - blobstore.ErrUnavailable (the store cannot be reached, answers too slowly or fails on
//     its side): NO [UNAVAILABLE] (RFC 5530 3), which tells the client to try again later.
//     The session stays usable; nothing of the message whose body failed was written.
//   - blobstore.ErrCorrupt (a body whose bytes do not hash to its key): NO [SERVERBUG]
//     (RFC 5530 3), logged with the error, which names the key. The body's last bytes were
//     withheld (endChecked), so it was not served.
func (c *conn) blobStatus(cmd *imapwire.Command, err error) *imapStatus {
	switch {
	case errors.Is(err, blobstore.ErrCorrupt):
		c.log.Error("stored body is corrupt", "command", cmd.Name, "err", err)
		return no(imapresp.CodeServerBug, "A stored message body is damaged; the administrator has been told")
	case errors.Is(err, blobstore.ErrUnavailable):
		c.log.Warn("blob store unavailable", "command", cmd.Name, "err", err)
		return no(imapresp.CodeUnavailable, cmd.Name+": message storage unavailable, try again later")
	}
	return nil
}

// maxEmptyReads bounds the reads that return neither bytes nor an error before endChecked
// gives up probing for the end of a body.
const maxEmptyReads = 100

// endChecked passes exactly n bytes of r through, and before it hands over the read that
// completes them it reads r once more, to the end: a store reader reports a body that fails
// its hash check only there (blobstore.ErrCorrupt), and a plain copy of n bytes would never
// look. On such an error the completing read returns no bytes, so the literal stays short of
// its announced length, the connection is closed (writeFetch) and the corrupt body never
// reaches the client whole. Reading to the end also lets a caching reader keep the body.
type endChecked struct {
	r         io.Reader
	remaining int64
}

func (e *endChecked) Read(p []byte) (int, error) {
	if e.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.remaining {
		p = p[:e.remaining]
	}
	n, err := e.r.Read(p)
	e.remaining -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if err == nil && e.remaining == 0 {
		var probe [1]byte
		for range maxEmptyReads {
			m, perr := e.r.Read(probe[:])
			if perr != nil && !errors.Is(perr, io.EOF) {
				return 0, perr
			}
			if m > 0 || perr != nil {
				break
			}
		}
	}
	return n, err
}
