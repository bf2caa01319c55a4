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

// Extract builds the doc of a stored message: the words of every text mailtext defines
// for it, each under the scope of the keys that read it. The top-level header comes from
// the record's structure; the body's text streams from blobs in one ranged read.
func Extract(ctx context.Context, blobs Blobs, rec *metadatapb.MessageRecord) (*Doc, error) {
	d := NewDoc()
	return d, ExtractInto(ctx, d, blobs, rec)
}

// ExtractInto is Extract into d (Reset first), so an indexer reuses one doc's memory.
func ExtractInto(ctx context.Context, d *Doc, blobs Blobs, rec *metadatapb.MessageRecord) error {
	d.Reset()
	st := rec.GetStructure()
	for _, f := range message.Fields(st.GetHeader()) {
		d.addField(f, ScopeText, HeaderScope(f.Name), true)
	}
	// TEXT's segments are BODY's plus the MIME headers of parts (mailtext.Segments).
	segments := mailtext.Segments(st.GetBody(), true, nil)
	if len(segments) == 0 {
		return nil
	}
	offset, length := mailtext.Span(segments)
	blob, err := blobs.Get(ctx, rec.GetBlobKey(), offset, length)
	if err != nil {
		return fmt.Errorf("index body of message %d: %w", rec.GetUid(), err)
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
				d.addField(f, scope, 0, false)
			}
			return false, nil
		}
		// Words carry across chunks (AddChunk): no chunk needs to repeat the last one's end.
		err := mailtext.FoldChunks(d.content.Content(r, seg), 0, func(b []byte) bool {
			d.AddChunk(scope, b, 0)
			return true
		})
		d.EndText()
		return false, err
	})
	if err != nil {
		return fmt.Errorf("index body of message %d: %w", rec.GetUid(), err)
	}
	return nil
}

// addField adds the words of header field f: those of mailtext.FieldText(f) under text
// and, withValues, those of the texts mailtext.FieldValueTexts(f) gives under values.
// FieldText is Fold(name + ": " + the decoded value), and Fold maps rune by rune (the
// name is ASCII, RFC 5322 2.2), so its words are the folded name with its colon and then
// the words of the folded decoded value, which is FieldValueTexts' first text: the value
// is decoded, folded and split once for both scopes, into a buffer the doc keeps
// (TestFieldWordsMatchFieldTexts).
func (d *Doc) addField(f message.HeaderField, text, values Scope, withValues bool) {
	v := f.Value()
	d.folded = append(mailtext.AppendFold(d.folded[:0], f.Name), ':')
	d.Add(text, d.folded) // one word: a field name has no separator
	d.folded = mailtext.AppendFold(d.folded[:0], mailtext.DecodeWords(v))
	if !withValues {
		d.Add(text, d.folded)
		return
	}
	d.addWordsTwice(text, values, d.folded)
	if mailtext.IsAddressField(f.Name) {
		d.folded = mailtext.AppendFold(d.folded[:0], mailtext.DecodeWords(message.AddressListText(v)))
		d.Add(values, d.folded)
	}
}
