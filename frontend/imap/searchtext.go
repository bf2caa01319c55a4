package imap

import (
	"context"
	"fmt"
	"io"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Substring search (RFC 9051 6.4.4: "case-insensitive ... substring") compares text after
// Unicode simple case folding on decoded text, as package mailtext defines it; the search
// index (searchindex.go) holds the words of that same text.
var (
	foldString      = mailtext.Fold
	transferDecoder = mailtext.TransferDecoder
	errUnknownCTE   = mailtext.ErrUnknownCTE
	foldedContains  = mailtext.FoldedContains
	headerContains  = mailtext.HeaderContains
)

// foldCriteria returns a copy of crit whose header, BODY and TEXT strings are folded; the
// values of the keys carried as Header entries that are not header fields (isHeaderKey) are
// compared as they are.
func foldCriteria(crit *imap.SearchCriteria) *imap.SearchCriteria {
	out := *crit
	out.Header = make([]imap.SearchCriteriaHeaderField, len(crit.Header))
	for i, h := range crit.Header {
		out.Header[i] = h
		if isHeaderKey(h) || isFuzzyKey(h) {
			out.Header[i].Value = foldString(h.Value)
		}
	}
	out.Body = foldStrings(crit.Body)
	out.Text = foldStrings(crit.Text)
	out.Not = make([]imap.SearchCriteria, len(crit.Not))
	for i := range crit.Not {
		out.Not[i] = *foldCriteria(&crit.Not[i])
	}
	out.Or = make([][2]imap.SearchCriteria, len(crit.Or))
	for i := range crit.Or {
		out.Or[i] = [2]imap.SearchCriteria{*foldCriteria(&crit.Or[i][0]), *foldCriteria(&crit.Or[i][1])}
	}
	return &out
}

func foldStrings(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = foldString(s)
	}
	return out
}

// textContains reports whether the folded needle occurs in a stored message: in its body
// (BODY) or, with withHeaders, in its header or body (TEXT), RFC 9051 6.4.4. The top-level
// header comes from the stored structure; the rest streams from the blob in one ranged read,
// so memory stays bounded whatever the message size.
func (c *conn) textContains(rec *metadatapb.MessageRecord, needle string, withHeaders bool) (bool, error) {
	if needle == "" {
		return true, nil
	}
	st := rec.GetStructure()
	if withHeaders && headerContains(st.GetHeader(), needle) {
		return true, nil
	}
	segments := mailtext.Segments(st.GetBody(), withHeaders, nil)
	if len(segments) == 0 {
		return false, nil
	}
	offset, length := mailtext.Span(segments)
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	blob, err := c.srv.cfg.Blobs.Get(ctx, rec.GetBlobKey(), offset, length)
	if err != nil {
		return false, fmt.Errorf("search body of message %d: %w", rec.GetUid(), err)
	}
	defer blob.Close()
	found := false
	err = mailtext.WalkSegments(blob, segments, func(seg mailtext.Segment, r io.Reader) (bool, error) {
		var err error
		found, err = mailtext.SegmentContains(r, seg, needle)
		return found, err
	})
	if err != nil {
		return false, fmt.Errorf("search body of message %d: %w", rec.GetUid(), err)
	}
	return found, nil
}
