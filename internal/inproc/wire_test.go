package inproc

import (
	"context"
	"math"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// echoOf answers with its request, decoded into a message of the prototype's type.
func echoOf(prototype proto.Message) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "test.Same",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Echo",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := prototype.ProtoReflect().New().Interface()
				if err := dec(in); err != nil {
					return nil, err
				}
				return in, nil
			},
		}},
	}
}

// sameAsWire calls Echo with msg through a Conn and through a loopback server and fails
// unless both end with one code and (bit for bit) one reply.
func sameAsWire(t *testing.T, msg proto.Message) {
	t.Helper()
	desc := echoOf(msg)
	conn := New()
	conn.RegisterService(desc, struct{}{})
	loopback := loopbackConn(t, func(srv *grpc.Server) { srv.RegisterService(desc, struct{}{}) })
	var got [2]proto.Message
	var code [2]codes.Code
	for i, c := range []grpc.ClientConnInterface{conn, loopback} {
		got[i] = msg.ProtoReflect().New().Interface()
		code[i] = status.Code(c.Invoke(t.Context(), "/test.Same/Echo", msg, got[i]))
	}
	b0, _ := proto.MarshalOptions{Deterministic: true, AllowPartial: true}.Marshal(got[0])
	b1, _ := proto.MarshalOptions{Deterministic: true, AllowPartial: true}.Marshal(got[1])
	if code[0] != code[1] || string(b0) != string(b1) {
		t.Errorf("%T %v: inproc %v %x, loopback %v %x", msg, msg, code[0], b0, code[1], b1)
	}
}

// TestRequiredFieldAsOnTheWire: a proto2 message missing a required field cannot be sent
// over the wire (proto.Marshal: required field not set, Internal), nor through a Conn
// (review left20 B1).
func TestRequiredFieldAsOnTheWire(t *testing.T) {
	sameAsWire(t, &descriptorpb.UninterpretedOption_NamePart{NamePart: proto.String("x")})
}

// TestNegativeZeroAsOnTheWire: a proto3 double of -0.0 is encoded on the wire (its sign
// bit is not zero), so the receiver gets -0.0, which proto.Merge would skip as zero
// (review left20 B2).
func TestNegativeZeroAsOnTheWire(t *testing.T) {
	sameAsWire(t, wrapperspb.Double(math.Copysign(0, -1)))
}

// Edge cases that are the same both ways (kept to show they were checked).
func TestNilsAsOnTheWire(t *testing.T) {
	sameAsWire(t, &structpb.Struct{Fields: map[string]*structpb.Value{"k": nil}})
	sameAsWire(t, &structpb.Value{Kind: &structpb.Value_StructValue{}})
	sameAsWire(t, &structpb.ListValue{Values: []*structpb.Value{nil}})
}
