package inproc

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestHandOver: a request handed over (HandOver) reaches the handler uncopied, and the
// caller's message is emptied, so that a caller that sends it again sends nothing; a call
// without the option still copies (TestMessagesNotShared), and over a network connection
// the option changes nothing.
func TestHandOver(t *testing.T) {
	svc := &column{served: &metadatapb.SortColumnChunk{Uids: []uint32{7}}}
	conn := New()
	conn.RegisterService(&columnDesc, svc)
	ctx := t.Context()

	entries := []byte("request")
	req := &metadatapb.SortColumnChunk{Uids: []uint32{1}, Entries: entries}
	// The caller's message is empty once the handler has decoded, while the handler runs.
	sizeInHandler := -1
	svc.decoded = func() { sizeInHandler = proto.Size(req) }
	if err := conn.Invoke(ctx, "/test.Column/Keep", req, &metadatapb.SortColumnChunk{}, HandOver()); err != nil {
		t.Fatal(err)
	}
	svc.decoded = nil
	if sizeInHandler != 0 {
		t.Errorf("the caller's request while the handler ran had %d bytes, want it empty", sizeInHandler)
	}
	if string(svc.kept.GetEntries()) != "request" || svc.kept.GetUids()[0] != 1 {
		t.Fatalf("the handler got %v, want the request", svc.kept)
	}
	entries[0] = 'X'
	if svc.kept.GetEntries()[0] != 'X' {
		t.Errorf("a handed-over request was copied: %q", svc.kept.GetEntries())
	}
	if proto.Size(req) != 0 {
		t.Errorf("the caller's request after the hand-over is %v, want it empty", req)
	}
	// The mistake the emptying catches: the request sent a second time arrives empty.
	if err := conn.Invoke(ctx, "/test.Column/Keep", req, &metadatapb.SortColumnChunk{}); err != nil {
		t.Fatal(err)
	}
	if proto.Size(svc.kept) != 0 {
		t.Errorf("a handed-over request sent again arrived as %v, want empty", svc.kept)
	}

	// Without the option the handler's request is a copy and the caller's stays whole.
	req = &metadatapb.SortColumnChunk{Uids: []uint32{2}, Entries: []byte("kept")}
	if err := conn.Invoke(ctx, "/test.Column/Keep", req, &metadatapb.SortColumnChunk{}); err != nil {
		t.Fatal(err)
	}
	req.Entries[0] = 'X'
	if string(svc.kept.GetEntries()) != "kept" || string(req.GetEntries()) != "Xept" {
		t.Errorf("without a hand-over: handler %v, caller %v", svc.kept, req)
	}

	// A network connection takes the option and encodes the request as always.
	remote := &column{served: &metadatapb.SortColumnChunk{}}
	net := loopbackConn(t, func(s *grpc.Server) { s.RegisterService(&columnDesc, remote) })
	req = &metadatapb.SortColumnChunk{Uids: []uint32{3}, Entries: []byte("wire")}
	if err := net.Invoke(ctx, "/test.Column/Keep", req, &metadatapb.SortColumnChunk{}, HandOver()); err != nil {
		t.Fatal(err)
	}
	if string(remote.kept.GetEntries()) != "wire" || string(req.GetEntries()) != "wire" {
		t.Errorf("over the network: handler %v, caller %v", remote.kept, req)
	}
}
