package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// binarySection is a BINARY section (RFC 3516, RFC 9051 6.4.5) of one message: the byte
// range of its encoded content in the blob, the Content-Transfer-Encoding to undo, and the
// size of the decoded content.
type binarySection struct {
	offset, length int64 // encoded content in the blob
	encoding       string
	size           int64 // decoded
	// literal8 is set when the content may hold NUL, which only a literal8 can carry
	// (RFC 9051 4.3, 7.5.2).
	literal8 bool
}

// measureBinary finds the section that path names and its decoded size, and, when
// forContent (BINARY[], not BINARY.SIZE[]), whether it needs a literal8. The size of a
// base64 or quoted-printable part is found by decoding it as it streams from the blob (the
// stored structure has only encoded sizes). An identity encoding needs no read for its
// size, but a 7bit or 8bit one is read for NUL when its content is to be sent. An encoding
// the server does not know is NO [UNKNOWN-CTE] (RFC 3516 4.3, RFC 9051 7.1).
func (c *conn) measureBinary(rec *metadatapb.MessageRecord, path []int, forContent bool) (*binarySection, error) {
	if len(path) == 0 {
		// BINARY[] is the whole message, which has no transfer encoding of its own
		// (RFC 9051 6.4.5); a part may be "binary", so it goes as a literal8.
		size := int64(rec.GetSize())
		return &binarySection{length: size, size: size, literal8: true}, nil
	}
	st := rec.GetStructure()
	part := message.PartAt(st, path)
	if part == nil {
		return &binarySection{}, nil // sent as an empty string, like BODY[] (message.ErrNoSuchPart)
	}
	offset, length, err := message.SectionRange(st, path, "")
	if err != nil {
		return nil, fmt.Errorf("binary section of message %d: %w", rec.GetUid(), err)
	}
	bs := &binarySection{offset: offset, length: length, encoding: strings.ToLower(strings.TrimSpace(part.GetEncoding()))}
	// RFC 2045 6.4: a multipart or message entity is never encoded, whatever its header says.
	if strings.EqualFold(part.GetType(), "multipart") || part.GetMessage() != nil {
		bs.encoding = ""
	}
	if bs.identity() {
		bs.size, bs.literal8 = length, bs.encoding == "binary"
		if !bs.literal8 && forContent && length > 0 {
			// 7bit and 8bit data have no NUL (RFC 2045 2.7, 2.8), but a message appended
			// as a literal8 (RFC 3516 4.4) may hold one in any part, and only a literal8
			// carries it (RFC 9051 4.3.1); without NUL the data goes as a string (7.5.2).
			_, bs.literal8, err = c.scanDecoded(rec, bs)
			if err != nil {
				return nil, err
			}
		}
		return bs, nil
	}
	if _, err := transferDecoder(nil, bs.encoding); errors.Is(err, errUnknownCTE) {
		return nil, no(imapresp.CodeUnknownCTE, fmt.Sprintf("Cannot decode %q content of message %d", part.GetEncoding(), rec.GetUid()))
	}
	bs.size, bs.literal8, err = c.scanDecoded(rec, bs)
	if err != nil {
		return nil, err
	}
	return bs, nil
}

// scanDecoded reads the decoded content of bs from the blob and returns its size and
// whether it holds NUL.
func (c *conn) scanDecoded(rec *metadatapb.MessageRecord, bs *binarySection) (size int64, hasNUL bool, err error) {
	r, err := c.openDecoded(rec, bs)
	if err != nil {
		return 0, false, err
	}
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		size += int64(n)
		hasNUL = hasNUL || bytes.IndexByte(buf[:n], 0) >= 0
		if errors.Is(err, io.EOF) {
			return size, hasNUL, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("decode binary section of message %d: %w", rec.GetUid(), err)
		}
	}
}

// identity reports whether the section's content is its bytes as stored.
func (bs *binarySection) identity() bool {
	switch bs.encoding {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// decodedBody is a decoded section being read from the blob.
type decodedBody struct {
	io.Reader
	blob   io.Closer
	cancel context.CancelFunc
}

func (d *decodedBody) Close() error {
	defer d.cancel()
	return d.blob.Close()
}

// openDecoded streams the decoded content of bs from the blob.
func (c *conn) openDecoded(rec *metadatapb.MessageRecord, bs *binarySection) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	blob, err := c.srv.cfg.Blobs.Get(ctx, rec.GetBlobKey(), bs.offset, bs.length)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("read body of message %d: %w", rec.GetUid(), err)
	}
	dec, err := transferDecoder(io.LimitReader(blob, bs.length), bs.encoding)
	if err != nil {
		blob.Close()
		cancel()
		return nil, err
	}
	return &decodedBody{Reader: dec, blob: blob, cancel: cancel}, nil
}

// writeBinary writes *b and then the decoded content of bs, or the partial of it (RFC 9051
// 6.4.5: the partial's origin and size count decoded octets), as a literal, or a literal8
// when it may hold NUL.
func (c *conn) writeBinary(b *[]byte, begun *bool, rec *metadatapb.MessageRecord, bs *binarySection, partial *imap.SectionPartial) error {
	skip, n := int64(0), bs.size
	if partial != nil {
		skip = min(partial.Offset, bs.size)
		n = min(partial.Size, bs.size-skip)
	}
	body := io.Reader(bytes.NewReader(nil))
	if n > 0 {
		var r io.ReadCloser
		var err error
		if bs.identity() {
			// Nothing to decode: a ranged read of just the wanted bytes.
			r, err = c.openDecoded(rec, &binarySection{offset: bs.offset + skip, length: n})
		} else {
			r, err = c.openDecoded(rec, bs)
			if err == nil {
				if _, err = io.CopyN(io.Discard, r, skip); err != nil {
					r.Close()
					err = fmt.Errorf("decode binary section of message %d: %w", rec.GetUid(), err)
				}
			}
		}
		if err != nil {
			return err
		}
		defer r.Close()
		body = r
	}
	*begun = true
	c.bw.Write(*b)
	*b = (*b)[:0]
	write := c.writeLiteral
	if bs.literal8 {
		write = c.writeLiteral8
	}
	if err := write(body, n); err != nil {
		return fmt.Errorf("stream binary section of message %d: %w", rec.GetUid(), err)
	}
	return nil
}

// appendBinaryName renders the section-binary "[" [section-part] "]" of a response name.
func appendBinaryName(b []byte, part []int) []byte {
	b = append(b, '[')
	for k, n := range part {
		if k > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, ']')
}
