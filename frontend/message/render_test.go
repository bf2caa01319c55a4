package message

import (
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func TestAppendString(t *testing.T) {
	utf8 := Encoder{UTF8: true}
	cases := []struct {
		name string
		fn   func([]byte, string) []byte
		in   string
		want string
	}{
		{"plain", AppendString, "hello world", `"hello world"`},
		{"empty", AppendString, "", `""`},
		{"quote and backslash", AppendString, `a "b" \c`, `"a \"b\" \\c"`},
		{"line break", AppendString, "a\r\nb", "{4}\r\na\r\nb"},
		{"8-bit", AppendString, "Grüße", "{7}\r\nGrüße"},
		{"8-bit with UTF8", utf8.AppendString, "Grüße", `"Grüße"`},
		{"invalid UTF-8 with UTF8", utf8.AppendString, "a\xffb", "{3}\r\na\xffb"},
		{"NUL dropped", AppendString, "a\x00b", "{2}\r\nab"},
		{"nstring empty", AppendNString, "", "NIL"},
		{"nstring", AppendNString, "x", `"x"`},
		{"astring atom", AppendAString, "INBOX", "INBOX"},
		{"astring bracket", AppendAString, "a]b", "a]b"},
		{"astring space", AppendAString, "a b", `"a b"`},
		{"astring wildcard", AppendAString, "a*", `"a*"`},
		{"astring NIL", AppendAString, "nil", `"nil"`},
		{"astring empty", AppendAString, "", `""`},
	}
	for _, tc := range cases {
		if got := string(tc.fn([]byte("x "), tc.in)); got != "x "+tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, "x "+tc.want)
		}
	}
	long := make([]byte, maxQuoted+1)
	for i := range long {
		long[i] = 'a'
	}
	if got := string(AppendString(nil, string(long))); got[:7] != "{1025}\r" {
		t.Errorf("long string rendered as %q..., want a literal", got[:10])
	}
}

func TestAppendEnvelopeEmpty(t *testing.T) {
	const want = "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
	if got := string(AppendEnvelope(nil, nil)); got != want {
		t.Errorf("nil envelope: %s", got)
	}
	if got := string(AppendEnvelope(nil, &metadatapb.Envelope{})); got != want {
		t.Errorf("empty envelope: %s", got)
	}
}

func TestAppendBodyStructureDegenerate(t *testing.T) {
	cases := []struct {
		name string
		part *metadatapb.BodyPart
		want string
	}{
		{
			// Dovecot's answer for a multipart without parts.
			name: "multipart without parts",
			part: &metadatapb.BodyPart{Type: "multipart", Subtype: "mixed"},
			want: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0) "MIXED")`,
		},
		{
			name: "unparsed message/rfc822",
			part: &metadatapb.BodyPart{Type: "message", Subtype: "rfc822", Encoding: "BASE64", Size: 100, Lines: 2},
			want: `("MESSAGE" "RFC822" NIL NIL NIL "BASE64" 100 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0) 2)`,
		},
		{
			name: "no type",
			part: &metadatapb.BodyPart{},
			want: `("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 0)`,
		},
		{
			name: "basic part has no line count",
			part: &metadatapb.BodyPart{Type: "image", Subtype: "jpeg", Encoding: "BASE64", Size: 7, Lines: 1},
			want: `("IMAGE" "JPEG" NIL NIL NIL "BASE64" 7)`,
		},
	}
	for _, tc := range cases {
		if got := string(AppendBodyStructure(nil, tc.part, false)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestAppendParamsExtended: without UTF-8 strings a non-ASCII parameter value is sent in
// the RFC 2231 4 extended form, every byte outside attribute-char percent-encoded; ASCII
// values and UTF-8 sessions get plain strings.
func TestAppendParamsExtended(t *testing.T) {
	params := []*metadatapb.Param{
		{Key: "name", Value: `ü 'a*b%c"d\e(f).txt`},
		{Key: "charset", Value: "us-ascii"},
	}
	got := string(Encoder{}.appendParams(nil, params))
	want := `("NAME*" "UTF-8''%C3%BC%20%27a%2Ab%25c%22d%5Ce%28f%29.txt" "CHARSET" "us-ascii")`
	if got != want {
		t.Errorf("IMAP4rev1 params\n got %s\nwant %s", got, want)
	}
	got = string(Encoder{UTF8: true}.appendParams(nil, params))
	want = `("NAME" "ü 'a*b%c\"d\\e(f).txt" "CHARSET" "us-ascii")`
	if got != want {
		t.Errorf("UTF-8 params\n got %s\nwant %s", got, want)
	}
}
