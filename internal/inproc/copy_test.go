package inproc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// column is a test service over sort-column chunks: Keep keeps its request (kept) and
// answers with served; Send sends served, then writes into its records and uids and sends
// it again, as a handler that reuses its message after Send may; Text answers with a
// structpb string value of the request's; Repeat sends served as many times as the
// request's after_uid says.
type column struct {
	kept, served *metadatapb.SortColumnChunk
	decoded      func() // if set, Keep calls it once it has decoded its request
}

var columnDesc = grpc.ServiceDesc{
	ServiceName: "test.Column",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Keep",
		Handler: func(impl any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			c := impl.(*column)
			in := &metadatapb.SortColumnChunk{}
			if err := dec(in); err != nil {
				return nil, err
			}
			c.kept = in
			if c.decoded != nil {
				c.decoded()
			}
			return c.served, nil
		},
	}, {
		MethodName: "Text",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := &structpb.Value{}
			if err := dec(in); err != nil {
				return nil, err
			}
			return structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{in}}), nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Send",
		ServerStreams: true,
		Handler: func(impl any, stream grpc.ServerStream) error {
			c := impl.(*column)
			if err := stream.RecvMsg(&metadatapb.ReadSortColumnRequest{}); err != nil {
				return err
			}
			if err := stream.SendMsg(c.served); err != nil {
				return err
			}
			c.served.Records[0]++
			c.served.Uids[0]++
			return stream.SendMsg(c.served)
		},
	}, {
		StreamName:    "Repeat",
		ServerStreams: true,
		Handler: func(impl any, stream grpc.ServerStream) error {
			c := impl.(*column)
			in := &metadatapb.ReadSortColumnRequest{}
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			for range in.GetAfterUid() {
				if err := stream.SendMsg(c.served); err != nil {
					return err
				}
			}
			return nil
		},
	}},
}

// readColumn opens the stream method (Send or Repeat) with req and receives its chunks
// to the end.
func readColumn(tb testing.TB, conn *Conn, method int, req *metadatapb.ReadSortColumnRequest) []*metadatapb.SortColumnChunk {
	tb.Helper()
	desc := &columnDesc.Streams[method]
	stream, err := conn.NewStream(tb.Context(), desc, "/test.Column/"+desc.StreamName)
	if err != nil {
		tb.Fatal(err)
	}
	if err := stream.SendMsg(req); err != nil {
		tb.Fatal(err)
	}
	var got []*metadatapb.SortColumnChunk
	for {
		m := &metadatapb.SortColumnChunk{}
		if err := stream.RecvMsg(m); errors.Is(err, io.EOF) {
			return got
		} else if err != nil {
			tb.Fatal(err)
		}
		got = append(got, m)
	}
}

// TestMessagesNotShared: neither side of a call holds the other's memory. What the
// handler kept of a request, what it answered, what it sent on a stream and then wrote
// into, and what the caller received and then wrote into, each stay as they were sent.
func TestMessagesNotShared(t *testing.T) {
	svc := &column{served: &metadatapb.SortColumnChunk{Uids: []uint32{7, 8}, Records: []byte("records")}}
	conn := New()
	conn.RegisterService(&columnDesc, svc)
	ctx := t.Context()

	req := &metadatapb.SortColumnChunk{Uids: []uint32{1}, Entries: []byte("request")}
	reply := &metadatapb.SortColumnChunk{Entries: []byte("stale")}
	if err := conn.Invoke(ctx, "/test.Column/Keep", req, reply); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(reply, svc.served) || reply.Entries != nil {
		t.Fatalf("reply %v, want %v (reset first)", reply, svc.served)
	}
	req.Entries[0], req.Uids[0] = 'X', 99
	if string(svc.kept.GetEntries()) != "request" || svc.kept.GetUids()[0] != 1 {
		t.Errorf("the handler's request shares the caller's: %v", svc.kept)
	}
	reply.Records[0], reply.Uids[0] = 'X', 99
	if string(svc.served.Records) != "records" || svc.served.Uids[0] != 7 {
		t.Errorf("the handler's answer shares the caller's reply: %v", svc.served)
	}

	got := readColumn(t, conn, 0, &metadatapb.ReadSortColumnRequest{})
	if len(got) != 2 || string(got[0].Records) != "records" || got[0].Uids[0] != 7 || string(got[1].Records) != "secords" || got[1].Uids[0] != 8 {
		t.Fatalf("stream sent %v, want records/7 then secords/8", got)
	}
	got[1].Records[0] = 'X'
	if svc.served.Records[0] != 's' {
		t.Errorf("the handler's message shares the caller's: %q", svc.served.Records)
	}
}

// TestInvalidUTF8AsOnTheWire: a string field that is not valid UTF-8, in a request or in
// an answer, fails the call with the code a network call gets (a real gRPC server on
// loopback), and a valid one goes through both the same.
func TestInvalidUTF8AsOnTheWire(t *testing.T) {
	svc := &column{}
	conn := New()
	conn.RegisterService(&columnDesc, svc)
	loopback := loopbackConn(t, func(srv *grpc.Server) { srv.RegisterService(&columnDesc, svc) })

	for _, text := range []string{"valid é", "invalid \xff"} {
		var codesSeen []codes.Code
		var replies []*structpb.Value
		for _, c := range []grpc.ClientConnInterface{conn, loopback} {
			reply := &structpb.Value{}
			err := c.Invoke(t.Context(), "/test.Column/Text", structpb.NewStringValue(text), reply)
			codesSeen = append(codesSeen, status.Code(err))
			replies = append(replies, reply)
		}
		if codesSeen[0] != codesSeen[1] || !proto.Equal(replies[0], replies[1]) {
			t.Errorf("%q: inproc %v %v, loopback %v %v", text, codesSeen[0], replies[0], codesSeen[1], replies[1])
		}
	}
	// A map key that is not UTF-8, deeper in the message.
	bad := &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: map[string]*structpb.Value{"k\xff": structpb.NewNullValue()}}}}
	for _, c := range []grpc.ClientConnInterface{conn, loopback} {
		if err := c.Invoke(t.Context(), "/test.Column/Text", bad, &structpb.Value{}); status.Code(err) != codes.Internal {
			t.Errorf("a map key that is not UTF-8: %v, want Internal", err)
		}
	}
}

// TestLargeAnswerCopiedOnce: an answer crosses a Conn as one copy of its size, where an
// encoding and a decoding took two (and a buffer for the encoding). The bytes allocated
// by one call are counted, not timed.
func TestLargeAnswerCopiedOnce(t *testing.T) {
	const size = 32 << 20
	svc := &column{served: &metadatapb.SortColumnChunk{Uids: []uint32{1}, Records: bytes.Repeat([]byte{1}, size)}}
	conn := New()
	conn.RegisterService(&columnDesc, svc)
	allocated := func(call func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		call()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	unary := allocated(func() {
		if err := conn.Invoke(t.Context(), "/test.Column/Keep", &metadatapb.SortColumnChunk{}, &metadatapb.SortColumnChunk{}); err != nil {
			t.Fatal(err)
		}
	})
	streamed := allocated(func() { readColumn(t, conn, 0, &metadatapb.ReadSortColumnRequest{}) })
	if unary > size*5/4 {
		t.Errorf("a unary call with a %d-byte answer allocated %d bytes, want one copy", size, unary)
	}
	if streamed > 2*size*5/4 {
		t.Errorf("a stream of two %d-byte messages allocated %d bytes, want one copy each", size, streamed)
	}
}

// BenchmarkSortColumn reads a 1M-message sort column (~170 MB: 170-byte records, in the
// service's 512 KiB chunks) through a Conn, as a SORT of a large mailbox that has no
// column cached does in `strata serve`.
//
//	go test ./internal/inproc -run '^$' -bench SortColumn -benchmem -count 5
func BenchmarkSortColumn(b *testing.B) {
	const chunkBytes, messages, recordBytes = 512 << 10, 1 << 20, 170
	perChunk := chunkBytes / recordBytes
	chunks := (messages + perChunk - 1) / perChunk
	svc := &column{served: &metadatapb.SortColumnChunk{Records: bytes.Repeat([]byte{1}, perChunk*recordBytes)}}
	conn := New()
	conn.RegisterService(&columnDesc, svc)
	b.SetBytes(int64(chunks * perChunk * recordBytes))
	for b.Loop() {
		readColumn(b, conn, 1, &metadatapb.ReadSortColumnRequest{AfterUid: uint32(chunks)})
	}
}

// TestOtherTypeAsOnTheWire: a request or a reply of another message type than the other
// side's, with the same fields on the wire, is encoded and decoded, as a network call
// would: Echo decodes a health request from a StringValue and its answer into one.
func TestOtherTypeAsOnTheWire(t *testing.T) {
	conn := New()
	conn.RegisterService(&echoDesc, struct{}{})
	reply := &wrapperspb.StringValue{}
	if err := conn.Invoke(t.Context(), "/test.Echo/Echo", wrapperspb.String("wire"), reply); err != nil || reply.GetValue() != "wire/" {
		t.Fatalf("Echo of a StringValue = %q, %v; want wire/", reply.GetValue(), err)
	}
}
