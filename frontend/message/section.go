package message

import (
	"errors"
	"fmt"
	"strings"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// ErrNoSuchPart is returned by SectionRange for a part number that the
// message does not have, or a section text that does not apply to the part.
// RFC 9051 does not say what to answer; the engine sends the data item with an
// empty string, which every client takes as an empty section.
var ErrNoSuchPart = errors.New("no such body section")

// SectionRange returns the byte range of a body section (RFC 9051 6.4.5) in
// the stored message: path is the part number list (nil for the whole message)
// and spec one of "", "HEADER", "TEXT", "MIME", "HEADER.FIELDS" and
// "HEADER.FIELDS.NOT" (case-insensitive).
//
//   - "" is the whole message, or the body of the part.
//   - "MIME" is the part's MIME header, blank line included; not allowed
//     without a path.
//   - "HEADER" and "TEXT" are the header and body of the message, or of the
//     message encapsulated in a message/rfc822 or message/global part.
//   - "HEADER.FIELDS" and "HEADER.FIELDS.NOT" return the "HEADER" range; the
//     caller reads it (or uses MessageStructure.Header for the top level) and
//     applies FilterHeader.
//
// Part numbers follow RFC 9051 6.4.5: the parts of a multipart are numbered
// from 1; a message whose body is not multipart has a single part 1, its body;
// the parts of an encapsulated message are numbered from the part number of
// the message/rfc822 part.
func SectionRange(s *metadatapb.MessageStructure, path []int, spec string) (offset, length int64, err error) {
	root := s.GetBody()
	part := PartAt(s, path)
	if part == nil {
		return 0, 0, fmt.Errorf("section %s: %w", sectionName(path, spec), ErrNoSuchPart)
	}

	var start, end uint64
	switch strings.ToUpper(spec) {
	case "":
		if len(path) == 0 {
			start, end = root.GetHeaderOffset(), root.GetEndOffset()
		} else {
			start, end = part.GetBodyOffset(), part.GetEndOffset()
		}
	case "MIME":
		if len(path) == 0 {
			return 0, 0, fmt.Errorf("section MIME without part number: %w", ErrNoSuchPart)
		}
		start, end = part.GetHeaderOffset(), part.GetBodyOffset()
	case "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT":
		msg := root
		if len(path) > 0 {
			msg = part.GetMessage()
			if msg == nil {
				return 0, 0, fmt.Errorf("section %s: part is not a message: %w", sectionName(path, spec), ErrNoSuchPart)
			}
		}
		if strings.EqualFold(spec, "TEXT") {
			start, end = msg.GetBodyOffset(), msg.GetEndOffset()
		} else {
			start, end = msg.GetHeaderOffset(), msg.GetBodyOffset()
		}
	default:
		return 0, 0, fmt.Errorf("section %s: unknown section text: %w", sectionName(path, spec), ErrNoSuchPart)
	}
	if end < start {
		end = start
	}
	return int64(start), int64(end - start), nil
}

// PartAt returns the body part that path (a part number list, RFC 9051 6.4.5)
// names, the message's body for an empty path, or nil when there is no such
// part. Numbering is as described at SectionRange.
func PartAt(s *metadatapb.MessageStructure, path []int) *metadatapb.BodyPart {
	root := s.GetBody()
	part := root
	for i, n := range path {
		var next *metadatapb.BodyPart
		switch {
		case i == 0:
			next = messagePart(root, n)
		case strings.EqualFold(part.GetType(), "multipart"):
			next = child(part, n)
		case part.GetMessage() != nil:
			next = messagePart(part.GetMessage(), n)
		}
		if next == nil {
			return nil
		}
		part = next
	}
	return part
}

// messagePart returns part n of a message whose body is body.
func messagePart(body *metadatapb.BodyPart, n int) *metadatapb.BodyPart {
	if strings.EqualFold(body.GetType(), "multipart") {
		return child(body, n)
	}
	if n == 1 {
		return body
	}
	return nil
}

func child(multipart *metadatapb.BodyPart, n int) *metadatapb.BodyPart {
	if n < 1 || n > len(multipart.GetParts()) {
		return nil
	}
	return multipart.GetParts()[n-1]
}

func sectionName(path []int, spec string) string {
	var sb strings.Builder
	for i, n := range path {
		if i > 0 {
			sb.WriteByte('.')
		}
		fmt.Fprintf(&sb, "%d", n)
	}
	if spec != "" {
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(strings.ToUpper(spec))
	}
	return "[" + sb.String() + "]"
}
