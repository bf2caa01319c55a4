package message

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestCasemap checks the i;unicode-casemap form (RFC 5051 2): titlecase, then decomposition.
func TestCasemap(t *testing.T) {
	for in, want := range map[string]string{
		"Hello":  "HELLO",
		"hello":  "HELLO",
		"Émile":  "E\u0301MILE",
		"émile":  "E\u0301MILE",
		"ǆ":      "DZ\u030C", // U+01C6 titlecases to U+01C5, which decomposes to D, z, caron
		"Straße": "STRAßE",   // ß has no one-character titlecase in UnicodeData
		"ﬁ":      "FI",       // compatibility decomposition, then titlecase again
	} {
		if got := Casemap(in); got != want {
			t.Errorf("Casemap(%q) = %q, want %q", in, got, want)
		}
	}
	if Casemap("a\xffb") != "A\uFFFDB" {
		t.Errorf("invalid UTF-8 not replaced: %q", Casemap("a\xffb"))
	}
}

func TestSortKeys(t *testing.T) {
	parse := func(h string) *metadatapb.SortKeys {
		s, err := Parse(strings.NewReader(strings.ReplaceAll(h, "\n", "\r\n") + "\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return SortKeys(s)
	}
	k := parse("From: =?UTF-8?Q?=C3=89lodie?= <elo@x.org>\nTo: undisclosed:;, Bob <BOB@y.org>\nCc: c@z.org\n" +
		"Subject: Re: [list] =?UTF-8?Q?Caf=C3=A9?= (fwd)\nDate: Mon, 1 Jan 2018 01:00:00 +0100\nMessage-ID: <m@x>\n" +
		"In-Reply-To: <p@x>\nReferences: <r@x> <p@x>")
	if got := k.GetSentUnix(); k.SentUnix == nil || got != 1514764800 {
		t.Errorf("sent = %v", k.SentUnix)
	}
	if k.GetSubject() != Casemap("café") || !k.GetReply() {
		t.Errorf("subject %q reply %v", k.GetSubject(), k.GetReply())
	}
	if k.GetFrom() != "ELO" || k.GetTo() != "BOB" || k.GetCc() != "C" {
		t.Errorf("from %q to %q cc %q", k.GetFrom(), k.GetTo(), k.GetCc())
	}
	if k.GetDisplayFrom() != Casemap("Élodie") || k.GetDisplayTo() != "BOB" {
		t.Errorf("display from %q to %q", k.GetDisplayFrom(), k.GetDisplayTo())
	}
	if k.GetMessageId() != "m@x" || strings.Join(k.GetReferences(), " ") != "r@x p@x" {
		t.Errorf("ids %q %q", k.GetMessageId(), k.GetReferences())
	}
	k = parse("From: a@x.org\nDate: yesterday\nIn-Reply-To: <p@x> <q@x>\nSubject: plain")
	if k.SentUnix != nil || k.GetReply() || k.GetSubject() != "PLAIN" || k.GetDisplayFrom() != "A@X.ORG" {
		t.Errorf("keys %v", k)
	}
	if strings.Join(k.GetReferences(), " ") != "p@x" {
		t.Errorf("references from In-Reply-To = %q", k.GetReferences())
	}
	var refs strings.Builder
	for i := range 70 {
		refs.WriteString(" <r" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + "@" + string(rune('0'+i%10)) + "x" + ">")
	}
	k = parse("References:" + refs.String())
	if n := len(k.GetReferences()); n != maxSortReferences {
		t.Errorf("%d references kept, want %d", n, maxSortReferences)
	}
}

// TestKeys: the sort and thread keys read together (Keys, what ingest uses) are those
// read apart, also for a message with more references than either keeps and for a
// References field folded over lines (FuzzParse compares them on every input too).
func TestKeys(t *testing.T) {
	var many strings.Builder
	for i := range 70 {
		fmt.Fprintf(&many, " <r%d@example.org>\r\n", i)
	}
	for _, msg := range []string{
		"Subject: Re: plans\r\nMessage-ID: <m@example.org>\r\nIn-Reply-To: <p@example.org>\r\nReferences:" + many.String() + "\r\nbody\r\n",
		"Subject: [Fwd: x]\r\nreferences: <a@b>\r\n <c@d>\r\nReferences: <e@f>\r\n\r\n",
		"Subject: hi\r\nIn-Reply-To: <p@example.org> <q@example.org>\r\n\r\n",
		"From: a@b\r\n\r\n",
	} {
		s, err := Parse(strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		sortKeys, threadKeys := Keys(s)
		if want := SortKeys(s); !proto.Equal(sortKeys, want) {
			t.Errorf("%q: Keys' sort keys %v, want %v", msg[:20], sortKeys, want)
		}
		if want := ThreadKeys(s); !proto.Equal(threadKeys, want) {
			t.Errorf("%q: Keys' thread keys %v, want %v", msg[:20], threadKeys, want)
		}
	}
}

// TestFieldValue: fieldValue finds what the first field of that name in Fields holds.
func TestFieldValue(t *testing.T) {
	for _, header := range []string{
		"References: <a@b>\r\n\r\n",
		"REFERENCES : <a@b>\r\n\t<c@d>\r\nReferences: <e@f>\r\n\r\n",
		" <x@y>\r\nbad line\r\n <z@w>\r\nReferences:<a@b>\r\n folded\r\nX: y\r\n\r\n",
		"X-References: <a@b>\r\nReferencesX: <c@d>\r\n\r\n",
		"References: <a@b>", // no line break at the end
		"Subject: s\r\n\r\nReferences: <in the body>\r\n",
	} {
		wantValue, wantFound := "", false
		for _, f := range Fields([]byte(header)) {
			if strings.EqualFold(f.Name, "References") {
				wantValue, wantFound = f.Value(), true
				break
			}
		}
		if v, found := fieldValue([]byte(header), "References"); v != wantValue || found != wantFound {
			t.Errorf("fieldValue(%q) = %q, %v; want %q, %v", header, v, found, wantValue, wantFound)
		}
	}
}
