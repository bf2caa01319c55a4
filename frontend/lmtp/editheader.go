package lmtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/sieve"
)

// maxEditedHeader bounds the header a script's edits are replayed on; the parser of
// frontend/message bounds headers alike, so a message past it was refused before filing.
const maxEditedHeader = 1 << 20

// editMessage replays a script's header edits (RFC 5293 4 and 5) on the message in src, the
// whole of it as the script saw it (trace fields included), and writes the result to dst:
// addheader inserts its field first, or last with :last; deleteheader removes the
// Occurrence-th field of its name in the header as edited so far, which is how the
// interpreter recorded it. The body is copied unchanged. An edited message is stored as a body
// of its own, for the recipients whose scripts edited it only.
func editMessage(dst io.Writer, src io.Reader, edits []sieve.HeaderEdit) error {
	br := bufio.NewReader(src)
	var fields [][]byte // each whole field, continuation lines and line end included
	size := 0
	for {
		line, err := readLine(br, maxEditedHeader-size)
		if err != nil && err != io.EOF {
			return fmt.Errorf("edit header: %w", err)
		}
		size += len(line)
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			// The blank line ending the header (RFC 5322 2.1), or its end without one.
			if err := writeFields(dst, applyEdits(fields, edits)); err != nil {
				return err
			}
			if _, werr := dst.Write(line); werr != nil {
				return werr
			}
			if err == io.EOF {
				return nil
			}
			_, err := io.Copy(dst, br)
			return err
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] = append(fields[len(fields)-1], line...) // RFC 5322 2.2.3 folding
		} else {
			fields = append(fields, append([]byte(nil), line...))
		}
		if err == io.EOF {
			if err := writeFields(dst, applyEdits(fields, edits)); err != nil {
				return err
			}
			return nil
		}
	}
}

// readLine reads one line with its end, or what is left before EOF, failing past max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			return nil, fmt.Errorf("header longer than %d bytes", maxEditedHeader)
		}
		line = append(line, chunk...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// applyEdits returns fields with edits applied in order.
func applyEdits(fields [][]byte, edits []sieve.HeaderEdit) [][]byte {
	for _, e := range edits {
		if !e.Delete {
			f := []byte(e.Name + ": " + e.Value + "\r\n")
			if e.Last {
				fields = append(fields, f)
			} else {
				fields = append([][]byte{f}, fields...)
			}
			continue
		}
		seen := 0
		for i, f := range fields {
			if !strings.EqualFold(fieldName(f), e.Name) {
				continue
			}
			if seen++; seen == e.Occurrence {
				fields = append(fields[:i:i], fields[i+1:]...)
				break
			}
		}
	}
	return fields
}

// fieldName is the name of a raw header field: what precedes its colon, without trailing
// white space (RFC 5322 2.2; obsolete syntax allows it, 4.5).
func fieldName(f []byte) string {
	name, _, _ := bytes.Cut(f, []byte{':'})
	return string(bytes.TrimRight(name, " \t"))
}

func writeFields(w io.Writer, fields [][]byte) error {
	for _, f := range fields {
		if _, err := w.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// editedSpool is editMessage into a new spool of the server's limits; the caller closes it.
func (s *session) editedSpool(src *blobstore.Spool, edits []sieve.HeaderEdit) (*blobstore.Spool, error) {
	dst, err := blobstore.NewSpillingSpool(s.srv.cfg.SpoolDir, spoolMemory, s.srv.cfg.MaxMessageSize+maxTraceBytes+maxEditedHeader)
	if err != nil {
		return nil, err
	}
	if err := editMessage(dst, src.Reader(), edits); err != nil {
		dst.Close()
		return nil, err
	}
	return dst, nil
}
