package inproc

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestHealthService drives grpc's own health service through a Conn: its unary Check and
// its server stream Watch, as a remote client would see them.
func TestHealthService(t *testing.T) {
	conn := New()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(conn, hs)
	client := healthpb.NewHealthClient(conn)
	ctx := t.Context()

	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check = %v, %v", resp, err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nothing"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v, want NotFound", err)
	}
	expired, cancelExpired := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancelExpired()
	if _, err := client.Check(expired, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Check past its deadline: %v, want DeadlineExceeded", err)
	}

	hs.SetServingStatus("mail", healthpb.HealthCheckResponse_SERVING)
	watchCtx, cancel := context.WithCancel(ctx)
	stream, err := client.Watch(watchCtx, &healthpb.HealthCheckRequest{Service: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := stream.Recv(); err != nil || got.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch message %v, %v", got, err)
	}
	hs.SetServingStatus("mail", healthpb.HealthCheckResponse_NOT_SERVING)
	if got, err := stream.Recv(); err != nil || got.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch after the change %v, %v", got, err)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Watch after cancel: %v, want Canceled", err)
	}
}

// echo is a test service over the health messages: Echo answers with the request's service
// name and the caller's "who" metadata, and keeps its answer in lastAnswer; Count sends
// three messages, reusing one, and then fails as the request's service name says.
var lastAnswer *healthpb.HealthCheckRequest

var echoDesc = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := &healthpb.HealthCheckRequest{}
			if err := dec(in); err != nil {
				return nil, err
			}
			switch in.GetService() {
			case "plain error":
				return nil, errors.New("not a status")
			case "canceled":
				return nil, context.Canceled
			}
			md, _ := grpcmd.FromIncomingContext(ctx)
			lastAnswer = &healthpb.HealthCheckRequest{Service: in.GetService() + "/" + strings.Join(md.Get("who"), ",")}
			return lastAnswer, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			in := &healthpb.HealthCheckRequest{}
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			if err := stream.RecvMsg(in); !errors.Is(err, io.EOF) {
				return status.Errorf(codes.Internal, "second RecvMsg: %v", err)
			}
			msg := &healthpb.HealthCheckResponse{}
			for i := range 3 {
				msg.Status = healthpb.HealthCheckResponse_ServingStatus(i)
				if err := stream.SendMsg(msg); err != nil {
					return err
				}
			}
			if in.GetService() == "" {
				return nil
			}
			return status.Error(codes.FailedPrecondition, in.GetService())
		},
	}},
}

// TestCallsAndStreams: statuses, metadata, the copying of messages, and a stream's
// messages before its end, through a hand-made service.
func TestCallsAndStreams(t *testing.T) {
	conn := New()
	conn.RegisterService(&echoDesc, struct{}{})
	ctx := t.Context()
	invoke := func(ctx context.Context, service string) error {
		return conn.Invoke(ctx, "/test.Echo/Echo", &healthpb.HealthCheckRequest{Service: service}, &healthpb.HealthCheckResponse{})
	}
	if err := invoke(ctx, "plain error"); status.Code(err) != codes.Unknown {
		t.Errorf("a handler's plain error: %v, want Unknown", err)
	}
	if err := invoke(ctx, "canceled"); status.Code(err) != codes.Canceled {
		t.Errorf("a handler's context error: %v, want Canceled", err)
	}
	reply := &healthpb.HealthCheckRequest{}
	err := conn.Invoke(grpcmd.AppendToOutgoingContext(ctx, "who", "alice"), "/test.Echo/Echo", &healthpb.HealthCheckRequest{Service: "hello"}, reply)
	if err != nil || reply.GetService() != "hello/alice" {
		t.Fatalf("Echo = %v, %v; want hello/alice", reply, err)
	}
	lastAnswer.Service = "changed by the server afterwards"
	if reply.GetService() != "hello/alice" {
		t.Errorf("the reply shares the handler's answer: %q", reply.GetService())
	}
	if err := conn.Invoke(ctx, "/test.Echo/Nothing", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("an unknown method: %v, want Unimplemented", err)
	}

	count := func(service string) ([]healthpb.HealthCheckResponse_ServingStatus, error) {
		stream, err := conn.NewStream(ctx, &echoDesc.Streams[0], "/test.Echo/Count")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&healthpb.HealthCheckRequest{Service: service}); err != nil {
			t.Fatal(err)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var got []healthpb.HealthCheckResponse_ServingStatus
		for {
			m := &healthpb.HealthCheckResponse{}
			if err := stream.RecvMsg(m); err != nil {
				return got, err
			}
			got = append(got, m.GetStatus())
		}
	}
	// The handler reuses its message: each one received is as it was sent.
	if got, err := count(""); !errors.Is(err, io.EOF) || len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Errorf("Count = %v, %v; want 0 1 2 and io.EOF", got, err)
	}
	if got, err := count("failed"); status.Code(err) != codes.FailedPrecondition || len(got) != 3 {
		t.Errorf("Count ending in an error = %v, %v; want 3 messages, then FailedPrecondition", got, err)
	}
}

// BenchmarkUnaryCall compares one unary call (grpc's health Check) through a Conn with the
// same call over a loopback gRPC connection, the path that `strata serve` took before.
//
//	go test ./internal/inproc -run '^$' -bench UnaryCall -count 3
func BenchmarkUnaryCall(b *testing.B) {
	hs := health.NewServer()
	conn := New()
	healthpb.RegisterHealthServer(conn, hs)
	loopback := loopbackConn(b, func(srv *grpc.Server) { healthpb.RegisterHealthServer(srv, hs) })
	for _, c := range []struct {
		name string
		conn grpc.ClientConnInterface
	}{{"inproc", conn}, {"loopback", loopback}} {
		client := healthpb.NewHealthClient(c.conn)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := client.Check(b.Context(), &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopbackConn is a client of a real gRPC server on a loopback port with the services
// that register adds: what a network call does, to compare a Conn with.
func loopbackConn(tb testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	tb.Helper()
	srv := grpc.NewServer()
	register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// TestNoStreamAfterWait (review of the idxshare21 merge: a race found by -race in
// embedded.Shutdown): once Wait has begun, a stream whose handler would start gets
// Unavailable instead of adding to the wait group Wait is waiting on.
func TestNoStreamAfterWait(t *testing.T) {
	conn := New()
	conn.RegisterService(&echoDesc, struct{}{})
	conn.Wait()
	stream, err := conn.NewStream(t.Context(), &echoDesc.Streams[0], "/test.Echo/Count")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); status.Code(err) != codes.Unavailable {
		t.Fatalf("CloseSend after Wait: %v, want Unavailable", err)
	}
	if err := stream.RecvMsg(&healthpb.HealthCheckResponse{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("RecvMsg after Wait: %v, want Unavailable", err)
	}
}
