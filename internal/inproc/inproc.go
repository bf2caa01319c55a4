// Package inproc is a gRPC client connection to services in the same process: a call runs
// the service's handler on the caller's goroutine (a server stream on one goroutine of its
// own), with no HTTP/2 framing, socket or connection goroutines between them. `strata serve`
// gives it to its frontends, whose every command waits on metadata calls: each hop between
// goroutines that a loopback gRPC call takes (the client's writer, the server's reader, the
// handler, the client's reader) costs a wake-up, and on a busy machine a wait for a CPU.
//
// Invariants:
//
//   - Requests and responses are copied when sent, not encoded (copy.go): the receiver
//     gets a deep copy of the sender's message (every bytes field, list, map and message
//     its own; only Go strings, which nothing can write, are shared), made before a
//     stream's SendMsg returns as grpc-go's encoding is, so neither side ever holds the
//     other's memory, whatever either does to its messages afterwards. A copy costs one
//     pass over the message where encoding and decoding cost two and a buffer of its
//     size between them (a 1M-message sort column is ~170 MB). What the wire would
//     refuse is refused as it was: a string field that is not valid UTF-8, or a
//     required field not set, fails the call (Internal), as the encoding did; a message
//     holding a float -0.0 that a copy would lose takes the wire's way.
//   - But for a unary call with the HandOver option (handover.go): its request is the
//     caller's to give up, built for that one call and never touched again; the handler
//     gets its fields as they are, neither checked nor copied, and the caller's message
//     is emptied, so that a caller that used it again would send nothing. Every other
//     call, and every answer, is copied as above.
//   - Unlike a network server, a Conn has no message size limit (grpc's 4 MiB default
//     for what a server receives): its callers are the process's own frontends, whose
//     requests are bounded where they are built. A receiver of another message type than
//     the sender's gets the message encoded and decoded, as on the wire.
//   - Errors are gRPC statuses, as a remote call's are: a handler's status error as it is, a
//     context error as its status (Canceled, DeadlineExceeded), any other error Unknown.
//   - A call runs under the caller's context, deadline and cancellation included; the
//     caller's outgoing metadata is the handler's incoming metadata.
//   - Only unary calls and server streams exist (the services of proto/ have no other).
//     A server stream's handler runs on its own goroutine from CloseSend; its messages wait
//     in a bounded buffer, so a reader that stops reading holds it back as flow control
//     would, until the caller's context ends.
//   - A stream's handler may outlive its caller (it returns once it sees the caller's
//     context end); Wait waits for every handler, so that what they read (the metadata
//     state) is closed only after them.
//   - Interceptors are not run: the server options of a network server (metadata's
//     consistency interceptors: applied-index headers and session reads, which only a
//     metaclient asks for) do not apply to a caller in the same process.
package inproc

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// streamBuffer is how many messages of a server stream wait for the reader.
const streamBuffer = 64

// Conn is a grpc.ClientConnInterface whose calls go to the services registered on it (a
// grpc.ServiceRegistrar: metadatapb.RegisterMetadataServer(conn, svc)). Register every
// service before the first call.
type Conn struct {
	unary   map[string]unaryMethod
	streams map[string]streamMethod
	// handlers counts the server streams' handlers running, for Wait; once Wait has begun
	// (closed, under mu) no handler starts, so no Add races the Wait (sync.WaitGroup: an
	// Add from zero must happen before Wait).
	handlers sync.WaitGroup
	mu       sync.Mutex
	closed   bool
}

type unaryMethod struct {
	impl    any
	handler grpc.MethodHandler
}

type streamMethod struct {
	impl any
	desc grpc.StreamDesc
}

// New returns a connection with no services.
func New() *Conn {
	return &Conn{unary: map[string]unaryMethod{}, streams: map[string]streamMethod{}}
}

// RegisterService registers a service implementation (grpc.ServiceRegistrar).
func (c *Conn) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for _, m := range desc.Methods {
		c.unary["/"+desc.ServiceName+"/"+m.MethodName] = unaryMethod{impl: impl, handler: m.Handler}
	}
	for _, s := range desc.Streams {
		c.streams["/"+desc.ServiceName+"/"+s.StreamName] = streamMethod{impl: impl, desc: s}
	}
}

// serverContext is the handler's context: the caller's, with its outgoing metadata as the
// incoming metadata.
func serverContext(ctx context.Context) context.Context {
	md, _ := grpcmd.FromOutgoingContext(ctx)
	return grpcmd.NewIncomingContext(ctx, md)
}

// toStatus turns a handler's error into the status a remote caller would get.
func toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if st, isStatus := status.FromError(err); isStatus {
		return st.Err() // a wrapped status as the wire carries it: code, message, details
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Error(codes.Unknown, err.Error())
}

// Invoke runs a unary call (grpc.ClientConnInterface).
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	m, found := c.unary[method]
	if !found {
		return status.Errorf(codes.Unimplemented, "inproc: unknown method %s", method)
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	req, err := message(args)
	if err != nil {
		return err
	}
	var dec func(m any) error
	handOver := handsOver(opts)
	if handOver {
		dec = takeOver(req)
	} else {
		reqWire, err := checkSendable(req)
		if err != nil {
			return err
		}
		// The handler's copy of the request is made when it asks for it, while the
		// caller waits: one copy, as its decoding was.
		dec = func(m any) error { return copyInto(m, req, reqWire) }
	}
	resp, err := m.handler(m.impl, serverContext(ctx), dec, nil)
	if handOver {
		proto.Reset(req) // emptied by the decoding; here for a handler that never decoded
	}
	if err != nil {
		return toStatus(ctx, err)
	}
	out, err := message(resp)
	if err != nil {
		return err
	}
	outWire, err := checkSendable(out)
	if err != nil {
		return err
	}
	return copyInto(reply, out, outWire)
}

// NewStream opens a server stream (grpc.ClientConnInterface); the generated client sends
// its one request and calls CloseSend, which starts the handler.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	m, found := c.streams[method]
	if !found {
		return nil, status.Errorf(codes.Unimplemented, "inproc: unknown method %s", method)
	}
	if desc.ClientStreams || m.desc.ClientStreams {
		return nil, status.Errorf(codes.Unimplemented, "inproc: %s streams from the client", method)
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	sctx, cancel := context.WithCancel(serverContext(ctx))
	return &clientStream{
		conn: c, ctx: ctx, method: m, sctx: sctx, cancel: cancel,
		msgs: make(chan proto.Message, streamBuffer), done: make(chan struct{}),
	}, nil
}

// Wait waits until the handler of every server stream opened on c has returned: call it
// once their callers are gone (their contexts ended), before closing what the handlers read.
// A stream whose handler would start after Wait began fails with Unavailable instead.
func (c *Conn) Wait() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.handlers.Wait()
}

// clientStream is the caller's side of a server stream; serverStream the handler's.
type clientStream struct {
	conn   *Conn
	ctx    context.Context // the caller's
	method streamMethod
	sctx   context.Context // the handler's: ends with the caller's, or when the stream does
	cancel context.CancelFunc

	req     proto.Message // the one request, the stream's own copy
	sent    bool          // req is set
	started bool

	msgs chan proto.Message // the handler's messages, copies of its own
	done chan struct{}      // closed once the handler returned, after err is set
	err  error              // the handler's outcome, as a status

	mu      sync.Mutex
	header  grpcmd.MD
	trailer grpcmd.MD
}

func (cs *clientStream) Context() context.Context { return cs.ctx }

func (cs *clientStream) Header() (grpcmd.MD, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.header.Copy(), nil
}

func (cs *clientStream) Trailer() grpcmd.MD {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.trailer.Copy()
}

// SendMsg takes the stream's one request.
func (cs *clientStream) SendMsg(m any) error {
	if cs.sent {
		return status.Error(codes.Internal, "inproc: a server stream takes one request")
	}
	req, err := sendCopy(m)
	if err != nil {
		return err
	}
	cs.req, cs.sent = req, true
	return nil
}

// CloseSend starts the handler with the request.
func (cs *clientStream) CloseSend() error {
	if cs.started {
		return nil
	}
	if !cs.sent {
		return status.Error(codes.Internal, "inproc: CloseSend before the request")
	}
	cs.conn.mu.Lock()
	if cs.conn.closed {
		cs.conn.mu.Unlock()
		return status.Error(codes.Unavailable, "inproc: the server is shutting down")
	}
	cs.conn.handlers.Add(1)
	cs.conn.mu.Unlock()
	cs.started = true
	ss := &serverStream{cs: cs, req: cs.req}
	go func() {
		defer cs.conn.handlers.Done()
		defer close(cs.done)
		defer cs.cancel()
		cs.err = toStatus(cs.sctx, cs.method.desc.Handler(cs.method.impl, ss))
	}()
	return nil
}

// RecvMsg moves the next message of the handler (its copy, sendCopy) into m; io.EOF once
// the handler returned without error, its status otherwise.
func (cs *clientStream) RecvMsg(m any) error {
	if !cs.started {
		if err := cs.CloseSend(); err != nil {
			return err
		}
	}
	select {
	case msg := <-cs.msgs:
		return moveInto(m, msg)
	default:
	}
	select {
	case msg := <-cs.msgs:
		return moveInto(m, msg)
	case <-cs.done:
		// Messages sent before the handler returned come first.
		select {
		case msg := <-cs.msgs:
			return moveInto(m, msg)
		default:
		}
		if cs.err != nil {
			return cs.err
		}
		return io.EOF
	case <-cs.ctx.Done():
		cs.cancel()
		return status.FromContextError(cs.ctx.Err()).Err()
	}
}

type serverStream struct {
	cs    *clientStream
	req   proto.Message
	taken bool // RecvMsg handed req over
}

func (ss *serverStream) Context() context.Context { return ss.cs.sctx }

func (ss *serverStream) SetHeader(md grpcmd.MD) error {
	ss.cs.mu.Lock()
	defer ss.cs.mu.Unlock()
	ss.cs.header = grpcmd.Join(ss.cs.header, md)
	return nil
}

func (ss *serverStream) SendHeader(md grpcmd.MD) error { return ss.SetHeader(md) }

func (ss *serverStream) SetTrailer(md grpcmd.MD) {
	ss.cs.mu.Lock()
	defer ss.cs.mu.Unlock()
	ss.cs.trailer = grpcmd.Join(ss.cs.trailer, md)
}

// SendMsg hands a copy of m to the reader, waiting while the buffer is full.
func (ss *serverStream) SendMsg(m any) error {
	msg, err := sendCopy(m)
	if err != nil {
		return err
	}
	select {
	case ss.cs.msgs <- msg:
		return nil
	case <-ss.cs.sctx.Done():
		return status.FromContextError(ss.cs.sctx.Err()).Err()
	}
}

// RecvMsg hands the handler the stream's one request, then io.EOF.
func (ss *serverStream) RecvMsg(m any) error {
	if ss.taken {
		return io.EOF
	}
	ss.taken = true
	return moveInto(m, ss.req)
}
