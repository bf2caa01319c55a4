package message

import (
	"reflect"
	"strings"
	"testing"
)

func TestFields(t *testing.T) {
	header := crlf("Subject: a\n b\nnot a field\n folded onto nothing\nX-Empty:\nReceived : from x\n\tby y\n\nBody: no\n")
	var got []string
	for _, f := range Fields([]byte(header)) {
		got = append(got, f.Name+"="+f.Value())
	}
	want := []string{"Subject=a b", "X-Empty=", "Received=from x\tby y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %q, want %q", got, want)
	}
}

func TestFilterHeader(t *testing.T) {
	header := []byte(crlf("From: a@example.com\nSubject: one\n two\nTo: b@example.com\nsubject: dup\n\n"))
	cases := []struct {
		fields []string
		not    bool
		want   string
	}{
		{[]string{"SUBJECT"}, false, "Subject: one\r\n two\r\nsubject: dup\r\n\r\n"},
		{[]string{"subject", "from"}, true, "To: b@example.com\r\n\r\n"},
		{[]string{"X-Missing"}, false, "\r\n"},
		{nil, true, string(header)},
	}
	for _, tc := range cases {
		if got := string(FilterHeader(header, tc.fields, tc.not)); got != tc.want {
			t.Errorf("FilterHeader(%q, not=%v) = %q, want %q", tc.fields, tc.not, got, tc.want)
		}
	}
	// Bare LF messages keep their line ends; a header without blank line
	// (a message without body) gets none, RFC 9051 6.4.5.
	if got := string(FilterHeader([]byte("To: x\nFrom: y\n\n"), []string{"to"}, false)); got != "To: x\n\n" {
		t.Errorf("bare LF: %q", got)
	}
	if got := string(FilterHeader([]byte("To: x\r\nFrom: y"), []string{"from"}, false)); got != "From: y\r\n" {
		t.Errorf("no blank line: %q", got)
	}
}

func TestParseParams(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{`; charset="us-ascii" (comment); format=flowed`, []string{"charset=us-ascii", "format=flowed"}},
		{`; NAME="a \"quoted\" name.txt"`, []string{`name=a "quoted" name.txt`}},
		{`; name=unquoted file name.pdf`, []string{"name=unquoted file name.pdf"}},
		{`; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A`, []string{"title=This is ***fun***"}},                                                                     // RFC 2231 4
		{`; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"`, []string{"url=ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"}},                 // RFC 2231 3
		{`; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn't it!"`, []string{"title=This is even more ***fun*** isn't it!"}}, // RFC 2231 4.1
		{`; name*1="b"; name*0="a"; name*3="gap"`, []string{"name=ab"}},
		{`; name="plain"; name*=utf-8''%C3%A9t%C3%A9`, []string{"name=été"}},
		{`; a=1; a=2; novalue; =x`, []string{"a=1"}},
		{`; filename*=windows-1252''%80uro`, []string{"filename=€uro"}},
		{`; f="=?UTF-8?B?w6k=?="`, []string{"f==?UTF-8?B?w6k=?="}},
	}
	for _, tc := range cases {
		var got []string
		for _, p := range parseParams(tc.in) {
			got = append(got, p.Key+"="+p.Value)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseParams(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseMediaType(t *testing.T) {
	cases := []struct {
		in        string
		typ, sub  string
		wantValid bool
	}{
		{"Text/HTML; charset=utf-8", "text", "html", true},
		{"text/plain (comment)", "text", "plain", true},
		{"text", "", "", false},
		{"text/", "", "", false},
		{"te xt/plain", "", "", false},
		{"", "", "", false},
	}
	for _, tc := range cases {
		typ, sub, _, ok := parseMediaType(tc.in)
		if ok != tc.wantValid || typ != tc.typ || sub != tc.sub {
			t.Errorf("parseMediaType(%q) = %q %q %v", tc.in, typ, sub, ok)
		}
	}
}

func TestToUTF8(t *testing.T) {
	if got := toUTF8([]byte("caf\xe9 ok é")); got != "café ok é" {
		t.Errorf("toUTF8 = %q", got)
	}
	if !strings.HasPrefix(toUTF8([]byte{0xff}), "ÿ") {
		t.Error("0xff not read as ISO-8859-1")
	}
}
