package sieve

import "testing"

// RFC 5228: control, actions and tests of the base language.
func TestCore(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "empty script keeps", script: ``, want: []string{"implicit-keep"}},
		{name: "keep", script: `keep;`, want: []string{"keep"}},
		{name: "discard", script: `discard;`, want: []string{"discard"}},
		{name: "fileinto", script: `require "fileinto"; fileinto "Lists";`, want: []string{"fileinto Lists"}},
		{name: "fileinto INBOX is keep", script: `require "fileinto"; fileinto "INBOX"; keep;`, want: []string{"keep"}},
		{name: "duplicate fileinto once", script: `require "fileinto"; fileinto "A"; fileinto "B"; fileinto "A";`,
			want: []string{"fileinto A", "fileinto B"}},
		{name: "redirect", script: `redirect "x@y.org"; redirect "X@y.org";`, want: []string{"redirect x@y.org"}},
		{name: "redirect with display name", script: `redirect "Joe <joe@y.org>";`, want: []string{"redirect joe@y.org"}},
		{name: "discard then fileinto", script: `require "fileinto"; discard; fileinto "A";`, want: []string{"discard", "fileinto A"}},
		{name: "stop", script: `keep; stop; discard;`, want: []string{"keep"}},
		{name: "if elsif else", script: `require "fileinto";
			if header :is "subject" "nope" { fileinto "A"; }
			elsif header :contains "subject" "THERE" { fileinto "B"; }
			else { fileinto "C"; }`, want: []string{"fileinto B"}},
		{name: "else", script: `require "fileinto"; if false { fileinto "A"; } elsif false { fileinto "B"; } else { fileinto "C"; }`,
			want: []string{"fileinto C"}},
		{name: "header :is is case-insensitive by default", script: `if header :is "Subject" "HELLO THERE" { discard; }`, want: []string{"discard"}},
		{name: "header i;octet", script: `if header :comparator "i;octet" :is "Subject" "HELLO THERE" { discard; }`, want: []string{"implicit-keep"}},
		{name: "header any of several fields", script: `if header :is ["X-Spam", "X-Nothing"] "maybe" { discard; }`, want: []string{"discard"}},
		{name: "header :matches", script: `if header :matches "subject" "*o th?re" { discard; }`, want: []string{"discard"}},
		{name: "header :matches escaped star", script: `if header :matches "subject" "Hello\\*" { discard; }`, want: []string{"implicit-keep"}},
		{name: "header :matches whole", script: `if header :matches "subject" "Hello" { discard; }`, want: []string{"implicit-keep"}},
		{name: "missing header never matches", script: `if header :contains "X-None" "" { discard; }`, want: []string{"implicit-keep"}},
		{name: "not", script: `if not header :contains "subject" "xyz" { discard; }`, want: []string{"discard"}},
		{name: "address :domain", script: `if address :domain :is "from" "EXAMPLE.org" { discard; }`, want: []string{"discard"}},
		{name: "address :localpart over a list", script: `if address :localpart :is "to" "carol" { discard; }`, want: []string{"discard"}},
		{name: "address :all with display name", script: `if address :is "cc" "dave@example.com" { discard; }`, want: []string{"discard"}},
		{name: "envelope from", script: `require "envelope"; if envelope :is "from" "alice@example.org" { discard; }`, want: []string{"discard"}},
		{name: "envelope null sender", script: `require "envelope"; if envelope :is "from" "" { discard; }`,
			input: func(in *Input) { in.Envelope.From = "" }, want: []string{"discard"}},
		{name: "exists", script: `if exists ["subject", "date"] { discard; }`, want: []string{"discard"}},
		{name: "exists all must", script: `if exists ["subject", "x-none"] { discard; }`, want: []string{"implicit-keep"}},
		{name: "size over", script: `if size :over 100 { discard; }`, want: []string{"discard"}},
		{name: "size under", script: `if size :under 1K { discard; }`, want: []string{"discard"}},
		{name: "allof", script: `if allof (true, header :contains "subject" "hello") { discard; }`, want: []string{"discard"}},
		{name: "allof false", script: `if allof (true, false) { discard; }`, want: []string{"implicit-keep"}},
		{name: "anyof", script: `if anyof (false, exists "date") { discard; }`, want: []string{"discard"}},
		{name: "encoded header is decoded", script: `if header :is "subject" "Grüße" { discard; }`,
			msg: "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nx\r\n", want: []string{"discard"}},
		{name: "folded header", script: `if header :is "subject" "one two" { discard; }`,
			msg: "Subject: one\r\n two\r\n\r\nx\r\n", want: []string{"discard"}},
		{name: "multi-line string", script: "if header :contains \"subject\" text:\r\nHello\r\n.\r\n { discard; }", want: []string{"implicit-keep"}},
		{name: "encoded-character", script: `require "encoded-character"; if header :is "subject" "${hex:48 65}llo there" { discard; }`,
			want: []string{"discard"}},
		{name: "encoded-character unicode", script: `require ["encoded-character", "fileinto"]; fileinto "${unicode:48}${unicode: 49 4A }";`,
			want: []string{"fileinto HIJ"}},
		{name: "encoded-character not required stays literal", script: `require "fileinto"; fileinto "${hex:41}";`,
			want: []string{"fileinto ${hex:41}"}},
	})
}
