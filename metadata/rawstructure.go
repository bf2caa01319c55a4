package metadata

import (
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// An Append command carries each message's MessageStructure, which the FSM stores as it is
// (structureKey) and never reads: decoding it from the log entry only to marshal it again
// was a third of an APPEND's allocations in the FSM. So ApplyBatch takes the structures'
// bytes off an Append entry as they are (takeStructures) and decodes the rest of the
// command.
//
// The stored bytes stay exactly what mustMarshal of the decoded structure gave before, so
// replicas of either version agree (Digest) and nothing stored changes: a structure's
// bytes are taken only if they are the encoding Go's deterministic marshal produces for
// them (canonicalMessage: fields in number order, minimal varints, no zero-valued scalars,
// no unknown fields, valid UTF-8), which is how the service's proto.Marshal made the entry.
// Any other entry is decoded whole, as before.

var (
	commandAppendField    = fieldNumber(&metadatapb.Command{}, "append")
	appendMessagesField   = fieldNumber(&metadatapb.AppendRequest{}, "messages")
	newMessageStructField = fieldNumber(&metadatapb.NewMessage{}, "structure")
	structureDescriptor   = (&metadatapb.MessageStructure{}).ProtoReflect().Descriptor()
)

func fieldNumber(m interface {
	ProtoReflect() protoreflect.Message
}, name protoreflect.Name) protowire.Number {
	return m.ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// takeStructures returns an Append command's entry without the structure of its messages,
// and those structures' encodings, one per message in order (nil: none). ok is false for
// any other command, and for an Append whose encoding takeStructures does not take apart
// (the entry is then decoded whole).
func takeStructures(entry []byte) (rest []byte, structures [][]byte, ok bool) {
	// The Command: one append field, whose AppendRequest is rebuilt.
	var appendStart, appendEnd int // the whole field, tag included
	var request []byte
	for off := 0; off < len(entry); {
		num, typ, n := protowire.ConsumeField(entry[off:])
		if n < 0 {
			return nil, nil, false
		}
		if num == commandAppendField {
			if typ != protowire.BytesType || request != nil {
				return nil, nil, false
			}
			_, _, tagLen := protowire.ConsumeTag(entry[off:])
			v, _ := protowire.ConsumeBytes(entry[off+tagLen:])
			appendStart, appendEnd, request = off, off+n, v
			if request == nil {
				request = []byte{}
			}
		}
		off += n
	}
	if request == nil {
		return nil, nil, false
	}
	// One buffer for the AppendRequest rebuilt and then the Command around it.
	buf := make([]byte, 0, len(request)+len(entry)+2*binaryVarintMax)
	stripped := buf[0:0:len(request)]
	for off := 0; off < len(request); {
		num, typ, n := protowire.ConsumeField(request[off:])
		if n < 0 {
			return nil, nil, false
		}
		field := request[off : off+n]
		off += n
		if num != appendMessagesField {
			stripped = append(stripped, field...)
			continue
		}
		if typ != protowire.BytesType {
			return nil, nil, false
		}
		_, _, tagLen := protowire.ConsumeTag(field)
		msg, _ := protowire.ConsumeBytes(field[tagLen:])
		structure, before, after, ok := cutStructure(msg)
		if !ok {
			return nil, nil, false
		}
		structures = append(structures, structure)
		stripped = protowire.AppendTag(stripped, appendMessagesField, protowire.BytesType)
		stripped = protowire.AppendVarint(stripped, uint64(len(before)+len(after)))
		stripped = append(append(stripped, before...), after...)
	}
	rest = buf[len(request):len(request)]
	rest = append(rest, entry[:appendStart]...)
	rest = protowire.AppendTag(rest, commandAppendField, protowire.BytesType)
	rest = protowire.AppendBytes(rest, stripped)
	rest = append(rest, entry[appendEnd:]...)
	return rest, structures, true
}

// cutStructure splits a NewMessage's encoding around its structure field: the structure's
// encoding (nil if it has none) and the bytes before and after the field. ok is false if
// the field occurs more than once or is not canonical.
func cutStructure(msg []byte) (structure, before, after []byte, ok bool) {
	found := false
	before = msg
	for off := 0; off < len(msg); {
		num, typ, n := protowire.ConsumeField(msg[off:])
		if n < 0 {
			return nil, nil, nil, false
		}
		if num == newMessageStructField {
			if typ != protowire.BytesType || found {
				return nil, nil, nil, false
			}
			found = true
			_, _, tagLen := protowire.ConsumeTag(msg[off:])
			structure, _ = protowire.ConsumeBytes(msg[off+tagLen:])
			if !canonicalMessage(structure, structureDescriptor, 0) {
				return nil, nil, nil, false
			}
			if structure == nil {
				structure = []byte{}
			}
			before, after = msg[:off], msg[off+n:]
		}
		off += n
	}
	return structure, before, after, true
}

// binaryVarintMax is the longest varint, as protowire encodes lengths.
const binaryVarintMax = 10

// maxStructureDepth bounds the nesting canonicalMessage follows (message/rfc822 parts
// nest); deeper structures take the decoding path, whose own limit applies.
const maxStructureDepth = 64

// canonicalMessage reports whether b is exactly what Go's deterministic marshal gives for
// the message of type md it decodes to: known fields only, in field number order, each
// with its kind's wire type, minimal varints, no scalar at its zero value (proto3 without
// presence), strings valid UTF-8, and nested messages canonical too. Only the kinds
// MessageStructure uses are accepted.
func canonicalMessage(b []byte, md protoreflect.MessageDescriptor, depth int) bool {
	if depth > maxStructureDepth {
		return false
	}
	fields := md.Fields()
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || n != protowire.SizeTag(num) {
			return false
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		if fd == nil || num < last || (num == last && !fd.IsList()) || fd.IsMap() || fd.ContainingOneof() != nil {
			return false
		}
		last = num
		switch fd.Kind() {
		case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
			if typ != protowire.BytesType {
				return false
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || protowire.SizeBytes(len(v)) != n {
				return false
			}
			b = b[n:]
			switch {
			case fd.Kind() == protoreflect.MessageKind:
				if !canonicalMessage(v, fd.Message(), depth+1) {
					return false
				}
			case !fd.IsList() && len(v) == 0:
				return false
			case fd.Kind() == protoreflect.StringKind && !utf8.Valid(v):
				return false
			}
		case protoreflect.Uint64Kind, protoreflect.Int64Kind, protoreflect.Uint32Kind, protoreflect.Int32Kind, protoreflect.BoolKind, protoreflect.EnumKind:
			if typ != protowire.VarintType || fd.IsList() {
				return false
			}
			x, n := protowire.ConsumeVarint(b)
			if n < 0 || n != protowire.SizeVarint(x) || x == 0 {
				return false
			}
			b = b[n:]
			switch fd.Kind() {
			case protoreflect.Uint32Kind:
				if x > math.MaxUint32 {
					return false
				}
			case protoreflect.Int32Kind, protoreflect.EnumKind:
				if x != uint64(int64(int32(x))) {
					return false
				}
			case protoreflect.BoolKind:
				if x != 1 {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}
