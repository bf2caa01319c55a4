package inproc

import (
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// HandOver is a call option for a unary call whose request its caller built for that one
// call and gives up with it: the handler gets the request's fields as they are, without
// the check (checkSendable) and the deep copy every other request gets (copy.go). It is
// what a transport within one process can do for a message that has one owner at a
// time, and saves a pass over the message and a copy of it: for an Append, whose
// messages carry their parsed structures, ~28 µs of CPU of the ~200 the frontend spends
// on an APPEND (docs/benchmarks.md, sess27).
//
// The hand-over is of the request's top-level fields, moved once, into the handler's
// message as it decodes the request: the caller's message is emptied (proto.Reset) then,
// before the handler's own code runs, so a caller that sent, read or changed it again
// would find nothing there, not the handler's memory. The messages it refers to (an
// Append's NewMessages) go to the handler uncopied, and so a caller that keeps other
// references to them must not change them during the call or after it, and the
// handler must not change them nor keep them past its return; metadata's Append, the
// method that takes a hand-over (frontend/ingest), encodes its request into one Raft
// command before it returns and changes only the request's own account and user fields.
// What the wire would refuse is not checked here: a string that is not valid UTF-8
// fails where the handler encodes the request (metadata: its Raft command), as Internal.
//
// Over any other grpc.ClientConnInterface (a network connection) the option does
// nothing: the request is encoded there, a copy of its own.
func HandOver() grpc.CallOption { return handOver{} }

type handOver struct{ grpc.EmptyCallOption }

// handsOver says whether opts hold HandOver.
func handsOver(opts []grpc.CallOption) bool {
	for _, o := range opts {
		if _, ok := o.(handOver); ok {
			return true
		}
	}
	return false
}

// takeOver is the decoder of a handed-over request: it moves req's fields straight into
// the handler's message (moveInto), as decoding would fill it, and empties req, with no
// message of the call's own between them. A generated handler decodes before it does
// anything else, so req is empty before the handler's own code runs (Invoke empties it
// after a handler that never decoded it).
func takeOver(req proto.Message) func(m any) error {
	return func(m any) error {
		err := moveInto(m, req)
		proto.Reset(req)
		return err
	}
}
