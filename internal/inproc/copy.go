package inproc

import (
	"fmt"
	"math"
	"reflect"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// How a message crosses a Conn (package comment): the receiver gets a deep copy, made
// once. proto.Merge into a reset message copies every bytes field, list, map and message
// (protobuf-go's merge appends bytes to a new slice and builds new messages), sharing only
// strings, which are immutable: a receiver cannot write the sender's memory, nor a sender,
// later, the receiver's. A stream's messages and request are copied when sent (sendCopy)
// and the copy, which nothing else holds, is then moved into the receiver's message
// (moveInto) without a second copy.

// message is m as a protobuf message; the services of proto/ send nothing else.
func message(m any) (proto.Message, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Internal, "inproc: %T is not a protobuf message", m)
	}
	return msg, nil
}

// sendCopy is a deep copy of m for its receiver, made and checked as its encoding was
// before a grpc-go SendMsg returns.
func sendCopy(m any) (proto.Message, error) {
	msg, err := message(m)
	if err != nil {
		return nil, err
	}
	wire, err := checkSendable(msg)
	if err != nil {
		return nil, err
	}
	if wire {
		out := msg.ProtoReflect().New().Interface()
		return out, recode(out, msg)
	}
	return proto.Clone(msg), nil
}

// copyInto fills dst with a deep copy of src, checked already (checkSendable, whose
// answer wire is), as decoding src's encoding into dst would: dst is reset first.
func copyInto(dst any, src proto.Message, wire bool) error {
	if wire {
		d, err := message(dst)
		if err != nil {
			return err
		}
		return recode(d, src)
	}
	d, err := receiver(dst, src)
	if d == nil {
		return err
	}
	proto.Merge(d, src)
	return nil
}

// moveInto hands dst the fields of src, a copy that nothing else holds (sendCopy), as
// they are: dst is reset first, then shares src's memory, which no one uses after.
func moveInto(dst any, src proto.Message) error {
	d, err := receiver(dst, src)
	if d == nil {
		return err
	}
	to, from := d.ProtoReflect(), src.ProtoReflect()
	from.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		to.Set(fd, v)
		return true
	})
	if unknown := from.GetUnknown(); len(unknown) > 0 {
		to.SetUnknown(unknown)
	}
	return nil
}

// receiver is dst reset, ready to take src's fields; or nil when dst is not of src's
// type, filled then the wire's way (recode), with that outcome.
func receiver(dst any, src proto.Message) (proto.Message, error) {
	d, err := message(dst)
	if err != nil {
		return nil, err
	}
	if !sameType(d, src) {
		return nil, recode(d, src)
	}
	proto.Reset(d)
	return d, nil
}

// sameType says whether dst and src are one generated message type, which Merge and the
// fields' Set take from each other.
func sameType(dst, src proto.Message) bool {
	return reflect.TypeOf(dst) == reflect.TypeOf(src) && dst.ProtoReflect().Descriptor() == src.ProtoReflect().Descriptor()
}

// recode is the wire's way, for a receiver whose message type is not the sender's (the
// same fields under another name, a message that keeps fewer fields): src encoded,
// decoded into dst.
func recode(dst, src proto.Message) error {
	b, err := proto.Marshal(src)
	if err != nil {
		return status.Errorf(codes.Internal, "inproc: encode %T: %v", src, err)
	}
	if err := proto.Unmarshal(b, dst); err != nil {
		return status.Errorf(codes.Internal, "inproc: decode %T: %v", dst, err)
	}
	return nil
}

// checkSendable fails as encoding m would: for a string field that is not valid UTF-8
// where the field's syntax requires it (proto3), and for a required field (proto2) that
// is not set; a copy would notice neither, and a network call fails there. wire says that
// m must take the wire's way (recode) to arrive as it would: it holds a float or double
// of -0.0 in a field without presence, which the encoder writes (its sign bit is set)
// and proto.Merge skips as a zero.
func checkSendable(m proto.Message) (wire bool, err error) {
	if err := walk(m.ProtoReflect(), &wire); err != nil {
		return false, status.Errorf(codes.Internal, "inproc: encode %T: %v", m, err)
	}
	if err := proto.CheckInitialized(m); err != nil {
		return false, status.Errorf(codes.Internal, "inproc: encode %T: %v", m, err)
	}
	return wire, nil
}

// walk checks m's strings (checkSendable) and sets *wire for a negative zero there.
func walk(m protoreflect.Message, wire *bool) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			key, value := fd.MapKey(), fd.MapValue()
			v.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				if err = validField(key, k.Value(), wire); err == nil {
					err = validField(value, v, wire)
				}
				return err == nil
			})
		case fd.IsList():
			if !checked(fd) {
				return true // a list of numbers or bytes: nothing to check, however long
			}
			list := v.List()
			for i := 0; i < list.Len() && err == nil; i++ {
				err = validField(fd, list.Get(i), wire)
			}
		default:
			if negativeZero(fd, v) {
				*wire = true
			}
			err = validField(fd, v, wire)
		}
		return err == nil
	})
	return err
}

// negativeZero says whether v, of a singular field, is a float or double -0.0 without
// presence: protobuf-go encodes it (its sign bit is set) but its merge skips it as zero.
func negativeZero(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
	if fd.HasPresence() {
		return false
	}
	switch fd.Kind() {
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		f := v.Float()
		return f == 0 && math.Signbit(f)
	}
	return false
}

// checked says whether a value of the field may need a check: a string, or a message.
func checked(fd protoreflect.FieldDescriptor) bool {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return true
	}
	return false
}

func validField(fd protoreflect.FieldDescriptor, v protoreflect.Value, wire *bool) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if enforcesUTF8(fd) && !utf8.ValidString(v.String()) {
			return fmt.Errorf("string field %s contains invalid UTF-8", fd.FullName())
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return walk(v.Message(), wire)
	}
	return nil
}

// enforcesUTF8 is protobuf-go's rule (internal/strs.EnforceUTF8): a proto3 string field,
// or one whose editions features say so.
func enforcesUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if f, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return f.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}
