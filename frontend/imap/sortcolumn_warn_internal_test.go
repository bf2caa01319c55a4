package imap

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// chunksMetadata answers ReadSortColumn with chunks; the metadata service never sends a
// chunk whose records do not take apart (it reads a stored chunk up to its first bad
// record), so this is the fault of another service only a fake can make.
type chunksMetadata struct {
	metadatapb.MetadataClient
	chunks []*metadatapb.SortColumnChunk
}

func (m chunksMetadata) ReadSortColumn(context.Context, *metadatapb.ReadSortColumnRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[metadatapb.SortColumnChunk], error) {
	return &sliceStream[metadatapb.SortColumnChunk]{items: m.chunks}, nil
}

// sliceStream is a server stream that answers its items, then io.EOF.
type sliceStream[T any] struct {
	grpc.ClientStream
	items []*T
}

func (s *sliceStream[T]) Recv() (*T, error) {
	if len(s.items) == 0 {
		return nil, io.EOF
	}
	c := s.items[0]
	s.items = s.items[1:]
	return c, nil
}

// TestColumnChunkThatDoesNotParseIsLogged: a records chunk that does not parse is skipped
// (its messages are read from their records) and said once, at warn, with the mailbox;
// the chunks after it are still read. (Review sortcol19 F5.)
func TestColumnChunkThatDoesNotParseIsLogged(t *testing.T) {
	entry := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), nil)
	good := protowire.AppendBytes(protowire.AppendVarint(nil, 7), entry)
	md := chunksMetadata{chunks: []*metadatapb.SortColumnChunk{
		{Records: []byte{0x05, 0x09}}, {Records: []byte{0x80}}, {}, {Records: good},
	}}
	var logs bytes.Buffer
	srv := NewServer(Config{Metadata: md, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := &conn{srv: srv, ctx: t.Context(), log: slog.New(slog.NewTextHandler(&logs, nil)),
		sel: &selected{owner: "demo@example.com", mailboxID: 9, name: "Lists"}}
	cache := newSortKeyCache(1000)
	box := sortBoxKey{owner: "demo@example.com", mailboxID: 9, uidValidity: 1}
	if err := c.fillFromColumn(cache, box, allFields, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, "does not parse"); n != 1 || !strings.Contains(out, "level=WARN") ||
		!strings.Contains(out, "mailbox=Lists") || !strings.Contains(out, "mailbox_id=9") {
		t.Fatalf("want one warning naming the mailbox, logged:\n%s", out)
	}
	if got, _ := cache.columnRead(box); got != 7 {
		t.Fatalf("column read up to UID %d, want the good chunk's 7", got)
	}
}
