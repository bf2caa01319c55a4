package searchindex

import (
	"context"
	"fmt"
	"io"

	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Blobs reads message bodies (blobstore.Store has this method).
type Blobs interface {
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// Extract builds the doc of a stored message: the trigrams of every text mailtext defines
// for it, each under the scope of the keys that read it. The top-level header comes from
// the record's structure; the body's text streams from blobs in one ranged read.
func Extract(ctx context.Context, blobs Blobs, rec *metadatapb.MessageRecord) (*Doc, error) {
	d := NewDoc()
	st := rec.GetStructure()
	for _, f := range message.Fields(st.GetHeader()) {
		d.Add(ScopeText, []byte(mailtext.FieldText(f)))
		scope := HeaderScope(f.Name)
		mailtext.FieldValueTexts(f, func(text string) bool {
			d.Add(scope, []byte(text))
			return false
		})
	}
	// TEXT's segments are BODY's plus the MIME headers of parts (mailtext.Segments).
	segments := mailtext.Segments(st.GetBody(), true, nil)
	if len(segments) == 0 {
		return d, nil
	}
	offset, length := mailtext.Span(segments)
	blob, err := blobs.Get(ctx, rec.GetBlobKey(), offset, length)
	if err != nil {
		return nil, fmt.Errorf("index body of message %d: %w", rec.GetUid(), err)
	}
	defer blob.Close()
	err = mailtext.WalkSegments(blob, segments, func(seg mailtext.Segment, r io.Reader) (bool, error) {
		scope := ScopeText
		if seg.BodyOnly {
			scope = ScopeBody
		}
		if seg.Header {
			header, err := mailtext.ReadPartHeader(r)
			if err != nil {
				return false, err
			}
			for _, f := range message.Fields(header) {
				d.Add(scope, []byte(mailtext.FieldText(f)))
			}
			return false, nil
		}
		return false, mailtext.FoldChunks(mailtext.SegmentContent(r, seg), 2, func(b []byte) bool {
			d.Add(scope, b)
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("index body of message %d: %w", rec.GetUid(), err)
	}
	return d, nil
}
