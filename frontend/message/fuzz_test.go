package message

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// FuzzParse checks that no input makes Parse, the renderers, AddressListText
// or SectionRange panic, that offsets stay ordered and within the input, and
// that the structure always marshals.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.msg))
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\n\n--a\n--a\nContent-Type: message/rfc822\n\n--a--"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/digest; boundary=x\r\n\r\n--x\r\n\r\n--x--"))
	f.Add([]byte("From: <user-from (comment)@ (comment) domain.org>\r\nCc: group:;, group2: (foo) ;\r\nTo: (a), b@c (d), (e\r\n\r\n"))
	f.Add([]byte("Message-ID: <a@b>\r\nReferences: <r@x> <<s@y>\r\nSubject: =?utf-8?q?Re=3A_=FF?= [Fwd: x]\r\n\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := Parse(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("Parse failed on an in-memory reader: %v", err)
		}
		checkOffsets(t, int64(len(msg)), s.Body)
		if _, err := proto.Marshal(s); err != nil {
			t.Fatalf("marshal: %v", err)
		}
		AppendEnvelope(nil, s.Envelope)
		// The sort keys must marshal (valid UTF-8) and keep within their bounds.
		sortKeys := SortKeys(s)
		if _, err := proto.Marshal(sortKeys); err != nil {
			t.Fatalf("marshal sort keys: %v", err)
		}
		if len(sortKeys.GetSubject()) > maxSortKeyBytes || len(sortKeys.GetReferences()) > maxSortReferences {
			t.Fatalf("sort keys beyond their bounds: %v", sortKeys)
		}
		AppendBodyStructure(nil, s.Body, true)
		Encoder{UTF8: true}.AppendBodyStructure(nil, s.Body, false)
		FilterHeader(s.Header, []string{"subject", "from"}, true)
		for _, field := range Fields(s.Header) {
			AddressListText(field.Value())
		}
		walkSections(t, s, s.Body, nil, int64(len(msg)))
		keys := ThreadKeys(s)
		if both, thread := Keys(s); !proto.Equal(both, sortKeys) || !proto.Equal(thread, keys) {
			t.Fatalf("Keys = %v, %v; want %v, %v", both, thread, sortKeys, keys)
		}
		if len(keys.References) > maxThreadReferences || len(keys.MessageId) > maxMessageIDBytes || len(keys.BaseSubject) > maxBaseSubjectBytes {
			t.Fatalf("thread keys beyond their bounds: %v", keys)
		}
		if _, err := proto.Marshal(keys); err != nil {
			t.Fatalf("marshal thread keys: %v", err)
		}
	})
}

// walkSections asks SectionRange for every section of every part and checks
// that each range lies within the message.
func walkSections(t *testing.T, s *metadatapb.MessageStructure, part *metadatapb.BodyPart, path []int, msgLen int64) {
	for _, spec := range []string{"", "HEADER", "TEXT", "MIME"} {
		off, n, err := SectionRange(s, path, spec)
		if err == nil && (off < 0 || n < 0 || off+n > msgLen) {
			t.Fatalf("section %v %s = %d+%d beyond %d", path, spec, off, n, msgLen)
		}
	}
	if len(path) > 4 {
		return
	}
	children := part.Parts
	if part.Message != nil {
		if part.Message.Type == "multipart" {
			children = part.Message.Parts
		} else {
			children = []*metadatapb.BodyPart{part.Message}
		}
	}
	for i, c := range children {
		walkSections(t, s, c, append(append([]int(nil), path...), i+1), msgLen)
	}
}
