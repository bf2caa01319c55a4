package message

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestRenderingParsesWithGoIMAP sends the ENVELOPE and BODYSTRUCTURE of every
// parse case to go-imap v2's client from a scripted server and checks that
// the client reads back the same structure.
func TestRenderingParsesWithGoIMAP(t *testing.T) {
	structures := make([]*metadatapb.MessageStructure, len(parseCases))
	for i, tc := range parseCases {
		s, err := Parse(strings.NewReader(tc.msg))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		structures[i] = s
	}

	serverConn, clientConn := net.Pipe()
	defer serverConn.Close()
	serverDone := make(chan error, 1)
	go func() { serverDone <- serveFetches(serverConn, structures) }()

	client := imapclient.New(clientConn, nil)
	defer client.Close()
	for i, s := range structures {
		for _, extended := range []bool{false, true} {
			msgs, err := client.Fetch(imap.SeqSetNum(uint32(i+1)), &imap.FetchOptions{
				Envelope:      true,
				BodyStructure: &imap.FetchItemBodyStructure{Extended: extended},
			}).Collect()
			if err != nil {
				t.Fatalf("%s: FETCH: %v", parseCases[i].name, err)
			}
			if len(msgs) != 1 {
				t.Fatalf("%s: %d messages", parseCases[i].name, len(msgs))
			}
			compareEnvelope(t, parseCases[i].name, s.Envelope, msgs[0].Envelope)
			compareBody(t, parseCases[i].name, s.Body, msgs[0].BodyStructure, extended)
		}
	}
	if err := client.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	select {
	case <-serverDone:
	case <-time.After(5 * time.Second):
		t.Fatal("scripted server did not finish")
	}
}

// serveFetches answers "tag FETCH n (ENVELOPE BODY[STRUCTURE])" with the
// rendering of structures[n-1], and LOGOUT.
func serveFetches(conn net.Conn, structures []*metadatapb.MessageStructure) error {
	if _, err := conn.Write([]byte("* OK [CAPABILITY IMAP4rev1] ready\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return fmt.Errorf("bad command %q", line)
		}
		tag := fields[0]
		if !strings.EqualFold(fields[1], "FETCH") || len(fields) < 3 {
			_, err := fmt.Fprintf(conn, "* BYE\r\n%s OK done\r\n", tag)
			return err
		}
		var n int
		if _, err := fmt.Sscan(fields[2], &n); err != nil || n < 1 || n > len(structures) {
			return fmt.Errorf("bad message number in %q", line)
		}
		s := structures[n-1]
		extended := strings.Contains(line, "BODYSTRUCTURE")
		resp := fmt.Appendf(nil, "* %d FETCH (ENVELOPE ", n)
		resp = AppendEnvelope(resp, s.Envelope)
		if extended {
			resp = append(resp, " BODYSTRUCTURE "...)
		} else {
			resp = append(resp, " BODY "...)
		}
		resp = AppendBodyStructure(resp, s.Body, extended)
		resp = fmt.Appendf(resp, ")\r\n%s OK FETCH done\r\n", tag)
		if _, err := conn.Write(resp); err != nil {
			return err
		}
	}
}

func compareEnvelope(t *testing.T, name string, want *metadatapb.Envelope, got *imap.Envelope) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no envelope", name)
		return
	}
	if got.MessageID != strings.Trim(want.MessageId, "<>") {
		t.Errorf("%s: Message-ID %q, want %q", name, got.MessageID, want.MessageId)
	}
	lists := []struct {
		field string
		want  []*metadatapb.Address
		got   []imap.Address
	}{
		{"from", want.From, got.From}, {"sender", want.Sender, got.Sender}, {"reply-to", want.ReplyTo, got.ReplyTo},
		{"to", want.To, got.To}, {"cc", want.Cc, got.Cc}, {"bcc", want.Bcc, got.Bcc},
	}
	for _, l := range lists {
		if len(l.got) != len(l.want) {
			t.Errorf("%s: %s has %d addresses, want %d", name, l.field, len(l.got), len(l.want))
			continue
		}
		for i, a := range l.want {
			g := l.got[i]
			if g.Mailbox != a.Mailbox || g.Host != a.Host {
				t.Errorf("%s: %s[%d] = %s@%s, want %s@%s", name, l.field, i, g.Mailbox, g.Host, a.Mailbox, a.Host)
			}
			if !strings.Contains(a.Name, "=?") && g.Name != a.Name {
				t.Errorf("%s: %s[%d] name %q, want %q", name, l.field, i, g.Name, a.Name)
			}
		}
	}
}

func compareBody(t *testing.T, name string, want *metadatapb.BodyPart, got imap.BodyStructure, extended bool) {
	t.Helper()
	if want.Type == "multipart" {
		mp, ok := got.(*imap.BodyStructureMultiPart)
		if !ok {
			t.Errorf("%s: got %T for a multipart", name, got)
			return
		}
		if !strings.EqualFold(mp.Subtype, want.Subtype) || len(mp.Children) != len(want.Parts) {
			t.Errorf("%s: multipart/%s with %d children, want %s with %d", name, mp.Subtype, len(mp.Children), want.Subtype, len(want.Parts))
			return
		}
		if extended && (mp.Extended == nil || mp.Extended.Params["boundary"] != paramValue(want.Params, "boundary")) {
			t.Errorf("%s: multipart extension data %+v", name, mp.Extended)
		}
		for i, c := range want.Parts {
			compareBody(t, name, c, mp.Children[i], extended)
		}
		return
	}
	sp, ok := got.(*imap.BodyStructureSinglePart)
	if !ok {
		t.Errorf("%s: got %T for %s/%s", name, got, want.Type, want.Subtype)
		return
	}
	if sp.MediaType() != want.Type+"/"+want.Subtype || int64(sp.Size) != int64(want.Size) ||
		sp.ID != want.Id || sp.Description != want.Description || !strings.EqualFold(sp.Encoding, want.Encoding) {
		t.Errorf("%s: part %+v, want %s/%s size %d", name, sp, want.Type, want.Subtype, want.Size)
	}
	for _, p := range want.Params {
		got, ok := sp.Params[p.Key]
		if extValue, isExt := sp.Params[p.Key+"*"]; !ok && isExt {
			// Non-ASCII values come back in the RFC 2231 4 extended form.
			got, _ = url.PathUnescape(strings.TrimPrefix(extValue, "UTF-8''"))
		}
		if got != p.Value {
			t.Errorf("%s: param %s = %q, want %q", name, p.Key, got, p.Value)
		}
	}
	switch {
	case want.Type == "text":
		if sp.Text == nil || sp.Text.NumLines != int64(want.Lines) {
			t.Errorf("%s: text lines %+v, want %d", name, sp.Text, want.Lines)
		}
	case want.Message != nil:
		if sp.MessageRFC822 == nil || sp.MessageRFC822.NumLines != int64(want.Lines) {
			t.Errorf("%s: message/rfc822 data %+v", name, sp.MessageRFC822)
			return
		}
		compareEnvelope(t, name, want.Envelope, sp.MessageRFC822.Envelope)
		compareBody(t, name, want.Message, sp.MessageRFC822.BodyStructure, extended)
	}
	if extended {
		ext := sp.Extended
		if ext == nil {
			t.Errorf("%s: no extension data", name)
			return
		}
		if want.Disposition != "" && (ext.Disposition == nil || !strings.EqualFold(ext.Disposition.Value, want.Disposition)) {
			t.Errorf("%s: disposition %+v, want %s", name, ext.Disposition, want.Disposition)
		}
		if ext.Location != want.Location || len(ext.Language) != len(want.Language) {
			t.Errorf("%s: location %q language %q, want %q %q", name, ext.Location, ext.Language, want.Location, want.Language)
		}
	}
}
