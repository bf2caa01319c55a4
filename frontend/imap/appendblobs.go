package imap

import (
	"errors"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// storeAndAppend stores the bodies of msgs and then appends req, whose messages they are, in
// metadata: the body first, the metadata second (DESIGN.md: bodies). The shared ingest
// pipeline (frontend/ingest) does the work, including storing the bodies again when the blob
// collector refuses the append; here its failures become IMAP responses.
func (c *conn) storeAndAppend(msgs []*spooledMessage, req *metadatapb.AppendRequest) (*metadatapb.AppendResponse, error) {
	bodies := make([]ingest.Body, len(msgs))
	for i, m := range msgs {
		bodies[i] = ingest.Body{Key: req.Messages[i].GetBlobKey(), Spool: m.spool}
	}
	resp, err := c.srv.ingest.StoreAndAppend(c.ctx, bodies, req, c.withRetry, c.log)
	switch {
	case errors.Is(err, ingest.ErrBlobStore):
		// The cause (endpoints, paths) stays in the log; the client learns only that it may
		// retry (RFC 5530 UNAVAILABLE).
		return nil, no(imapresp.CodeUnavailable, "Could not store the message, try again later")
	case errors.Is(err, ingest.ErrBusy):
		return nil, no(imapresp.CodeUnavailable, "APPEND: message storage is busy, try again later")
	}
	return resp, err
}
