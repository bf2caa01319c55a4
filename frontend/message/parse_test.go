package message

import (
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

type parseCase struct {
	name string
	msg  string
	// Expected renderings; "" skips the check.
	envelope, body, bodyStructure string
	preview                       string
	// sections maps an RFC 9051 6.4.5 section ("1.2", "2.HEADER", "" for the
	// whole message) to the bytes it must cover in msg.
	sections map[string]string
	// missing lists sections that must fail with ErrNoSuchPart.
	missing []string
}

var parseCases = []parseCase{
	{
		name: "rfc3501 simple text",
		msg:  rfc3501Message,
		// RFC 3501 section 8, the response to "a003 fetch 12 full".
		envelope:      `("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "<B27397-0100000@cac.washington.edu>")`,
		body:          `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)`,
		bodyStructure: `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)`,
		preview:       "line 01 xxxxxxxxxxxxxxxxxxxxxxx line 02 xxxxxxxxxxxxxxxxxxxxxxx line 03 xxxxxxxxxxxxxxxxxxxxxxx line 04 xxxxxxxxxxxxxxxxxxxxxxx line 05 xxxxxxxxxxxxxxxxxxxxxxx line 06 xxxxxxxxxxxxxxxxxxxxxxx line 07",
		sections: map[string]string{
			"":       rfc3501Message,
			"1":      textBody(3028, 92, "\r\n", true),
			"TEXT":   textBody(3028, 92, "\r\n", true),
			"HEADER": rfc3501Message[:strings.Index(rfc3501Message, "\r\n\r\n")+4],
			"1.MIME": rfc3501Message[:strings.Index(rfc3501Message, "\r\n\r\n")+4],
		},
		missing: []string{"2", "0", "1.1", "1.HEADER", "MIME"},
	},
	{
		name: "rfc9051 bodystructure example",
		msg:  rfc9051Message,
		// RFC 9051 7.5.2, the BODYSTRUCTURE example (the non-extended form).
		body:          `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")`,
		bodyStructure: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "=_960723") NIL NIL NIL)`,
		sections: map[string]string{
			"1": textBody(1152, 23, "\r\n", false),
			"2": textBody(4554, 73, "\r\n", false),
			"2.MIME": crlf(`Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff
Content-ID: <960723163407.20117h@cac.washington.edu>
Content-Description: Compiler diff
Content-Transfer-Encoding: BASE64

`),
		},
		missing: []string{"3", "2.1", "2.TEXT"},
	},
	{
		name:          "multipart/alternative quoted-printable",
		msg:           alternativeMessage,
		envelope:      `("Mon, 3 Nov 2025 10:00:00 +0100" "=?UTF-8?Q?Caf=C3=A9?= plans" (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Bob" NIL "bob" "example.net")) NIL NIL NIL "<alt1@example.org>")`,
		body:          `(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 40 2)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 70 1) "ALTERNATIVE")`,
		bodyStructure: `(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 40 2 NIL NIL NIL NIL)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 70 1 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "alt") NIL NIL NIL)`,
		preview:       "Let's meet at the café tomorrow.",
		sections: map[string]string{
			"1": "Let's meet at the caf=C3=A9 =\r\ntomorrow.",
			"2": "<html><body><p>Let's meet at the caf=C3=A9 tomorrow.</p></body></html>",
		},
	},
	{
		name:          "multipart/mixed with related inside alternative and an attachment",
		msg:           crlf(mixedNested),
		envelope:      `("Tue, 4 Nov 2025 08:30:00 +0000" "Report" (("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) ((NIL NIL "dave" "example.com")) NIL NIL NIL "<mixed1@example.com>")`,
		body:          `((("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 24 1)(("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 60 1)("IMAGE" "PNG" ("NAME" "logo.png") "<logo@x>" NIL "BASE64" 12) "RELATED") "ALTERNATIVE")("APPLICATION" "PDF" ("NAME" "report.pdf") NIL "Quarterly report" "BASE64" 20) "MIXED")`,
		bodyStructure: `((("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 24 1 NIL NIL NIL NIL)(("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 60 1 NIL NIL NIL NIL)("IMAGE" "PNG" ("NAME" "logo.png") "<logo@x>" NIL "BASE64" 12 NIL ("INLINE" ("FILENAME" "logo.png")) NIL NIL) "RELATED" ("BOUNDARY" "rel" "TYPE" "text/html") NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL)("APPLICATION" "PDF" ("NAME" "report.pdf") NIL "Quarterly report" "BASE64" 20 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("ATTACHMENT" ("FILENAME" "report.pdf" "SIZE" "15")) ("en" "de") "http://example.com/report.pdf") "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)`,
		preview:       "See the attached report.",
		sections:      mixedSections("\r\n"),
		missing:       []string{"3", "1.3", "1.2.3", "1.1.1", "2.HEADER"},
	},
	{
		name:          "bare LF line ends",
		msg:           mixedNested,
		bodyStructure: `((("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 24 1 NIL NIL NIL NIL)(("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 60 1 NIL NIL NIL NIL)("IMAGE" "PNG" ("NAME" "logo.png") "<logo@x>" NIL "BASE64" 12 NIL ("INLINE" ("FILENAME" "logo.png")) NIL NIL) "RELATED" ("BOUNDARY" "rel" "TYPE" "text/html") NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL)("APPLICATION" "PDF" ("NAME" "report.pdf") NIL "Quarterly report" "BASE64" 20 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("ATTACHMENT" ("FILENAME" "report.pdf" "SIZE" "15")) ("en" "de") "http://example.com/report.pdf") "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)`,
		preview:       "See the attached report.",
		sections:      mixedSections("\n"),
	},
	{
		name:          "message/rfc822 attachment",
		msg:           forwardedMessage,
		body:          `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 1)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 340 ("Mon, 3 Nov 2025 12:00:00 +0000" "Lunch" (("Grace" NIL "grace" "example.org")) (("Grace" NIL "grace" "example.org")) (("Grace" NIL "grace" "example.org")) (("Eve" NIL "eve" "example.com")) NIL NIL NIL "<lunch@example.org>") (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 1)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1) "ALTERNATIVE") 17) "MIXED")`,
		bodyStructure: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 1 NIL NIL NIL NIL)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 340 ("Mon, 3 Nov 2025 12:00:00 +0000" "Lunch" (("Grace" NIL "grace" "example.org")) (("Grace" NIL "grace" "example.org")) (("Grace" NIL "grace" "example.org")) (("Eve" NIL "eve" "example.com")) NIL NIL NIL "<lunch@example.org>") (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "l") NIL NIL NIL) 17 NIL ("ATTACHMENT" NIL) NIL NIL) "MIXED" ("BOUNDARY" "fwd") NIL NIL NIL)`,
		preview:       "Forwarding.",
		sections: map[string]string{
			"1":        "Forwarding.",
			"2":        forwardedMessage[strings.Index(forwardedMessage, "From: Grace"):strings.Index(forwardedMessage, "\r\n--fwd--")],
			"2.MIME":   "Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n",
			"2.HEADER": forwardedMessage[strings.Index(forwardedMessage, "From: Grace"):strings.Index(forwardedMessage, "--l\r\n")],
			"2.TEXT":   forwardedMessage[strings.Index(forwardedMessage, "--l\r\n"):strings.Index(forwardedMessage, "\r\n--fwd--")],
			"2.1":      "Noon?",
			"2.2":      "<p>Noon?</p>",
			"2.2.MIME": "Content-Type: text/html; charset=utf-8\r\n\r\n",
		},
		missing: []string{"1.HEADER", "1.TEXT", "2.3", "2.1.1"},
	},
	{
		name: "multipart/digest parts default to message/rfc822",
		msg:  digestMessage,
		body: `(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 43 (NIL "one" ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 6 1) 4)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 44 (NIL "two" ((NIL NIL "b" "example.com")) ((NIL NIL "b" "example.com")) ((NIL NIL "b" "example.com")) NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1) 4) "DIGEST")`,
		sections: map[string]string{
			"1":        "From: a@example.com\r\nSubject: one\r\n\r\nFirst.",
			"1.MIME":   "\r\n",
			"1.HEADER": "From: a@example.com\r\nSubject: one\r\n\r\n",
			"1.TEXT":   "First.",
			"1.1":      "First.",
			"2.TEXT":   "Second.",
		},
	},
	{
		name: "missing close delimiter",
		msg:  missingCloseMessage,
		body: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 1)("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1) "MIXED")`,
		sections: map[string]string{
			"1": "one",
			"2": "two\r\n",
		},
	},
	{
		name: "outer delimiter ends an unclosed inner multipart",
		msg:  missingInnerClose,
		body: `((("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 2 1) "ALTERNATIVE")("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1) "MIXED")`,
		sections: map[string]string{
			"1":   "--o2\r\nContent-Type: text/plain\r\n\r\nin",
			"1.1": "in",
			"2":   "after",
		},
	},
	{
		name:    "preamble and epilogue",
		msg:     preambleEpilogue,
		body:    `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 19 1) "MIXED")`,
		preview: "implicit text/plain",
		sections: map[string]string{
			"TEXT":   "preamble line\r\n--b\r\n\r\nimplicit text/plain\r\n--b--\r\nepilogue line\r\n",
			"1":      "implicit text/plain",
			"1.MIME": "\r\n",
		},
	},
	{
		name:          "RFC 2231 parameters",
		msg:           rfc2231Message,
		bodyStructure: `("APPLICATION" "OCTET-STREAM" ("NAME*" "UTF-8''%E2%82%AC%20rate.pdf") NIL NIL "7BIT" 6 NIL ("ATTACHMENT" ("FILENAME*" "UTF-8''%C2%A3%20rates.txt")) NIL NIL)`,
		sections:      map[string]string{"1": "data\r\n"},
	},
	{
		name:     "groups, routes and comments in addresses",
		msg:      groupsMessage,
		envelope: `(NIL "groups" (("Joe Q. Public" NIL "john.q.public" "example.com")) (("Pete" NIL "pete" "silly.test")) ((NIL "@route.test,@two.test" "boss" "nil.test")) ((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL)) ((NIL NIL "Undisclosed recipients" NIL)(NIL NIL NIL NIL)) (("Full Name" NIL "user" "host")) NIL NIL)`,
	},
	{
		name:     "8-bit headers",
		msg:      eightBitMessage,
		envelope: "(NIL {7}\r\nGrüße (({5}\r\nRené NIL \"rene\" \"example.fr\")) (({5}\r\nRené NIL \"rene\" \"example.fr\")) (({5}\r\nRené NIL \"rene\" \"example.fr\")) (({7}\r\nJürgen NIL \"j\" \"example.de\")) NIL NIL NIL NIL)",
		preview:  "Hallo",
	},
	{
		name:    "HTML only, base64, ISO-8859-1",
		msg:     htmlOnlyMessage,
		body:    `("TEXT" "HTML" ("CHARSET" "iso-8859-1") NIL NIL "BASE64" 174 3)`,
		preview: "Café & crème See you",
	},
	{
		name:     "header without blank line nor body",
		msg:      noBlankLine,
		envelope: `(NIL "header only" ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL)`,
		body:     `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)`,
		sections: map[string]string{"": noBlankLine, "HEADER": noBlankLine, "TEXT": "", "1": ""},
	},
	{
		name:     "empty body",
		msg:      emptyBody,
		body:     `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)`,
		sections: map[string]string{"HEADER": emptyBody, "TEXT": ""},
	},
	{
		name:     "multipart without boundary is one text part",
		msg:      multipartNoBoundary,
		body:     `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 2)`,
		sections: map[string]string{"1": "--x\r\ntext\r\n"},
	},
}

// mixedSections are the sections of mixedNested with line ends eol.
func mixedSections(eol string) map[string]string {
	conv := func(s string) string { return strings.ReplaceAll(s, "\n", eol) }
	return map[string]string{
		"1":          conv(mixedInner),
		"1.MIME":     conv("Content-Type: multipart/alternative; boundary=\"inner\"\n\n"),
		"1.1":        "See the attached report.",
		"1.1.MIME":   conv("Content-Type: text/plain; charset=us-ascii\n\n"),
		"1.2.1":      `<p>See the attached <b>report</b>.<img src="cid:logo@x"></p>`,
		"1.2.2":      "iVBORw0KGgo=",
		"1.2.2.MIME": conv("Content-Type: image/png; name=\"logo.png\"\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\nContent-Disposition: inline; filename=\"logo.png\"\n\n"),
		"2":          "JVBERi0xLjQKJeLjz9MK",
		"HEADER":     conv(mixedNested[:strings.Index(mixedNested, "\n\n")+2]),
		"TEXT":       conv(mixedNested[strings.Index(mixedNested, "\n\n")+2:]),
	}
}

// parseSection splits "1.2.MIME" into its part numbers and section text.
func parseSection(t *testing.T, name string) ([]int, string) {
	t.Helper()
	var path []int
	for name != "" {
		head, rest, _ := strings.Cut(name, ".")
		n, err := strconv.Atoi(head)
		if err != nil {
			return path, name
		}
		path = append(path, n)
		name = rest
	}
	return path, ""
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(strings.NewReader(tc.msg))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkOffsets(t, int64(len(tc.msg)), s.Body)
			if _, err := proto.Marshal(s); err != nil {
				t.Fatalf("structure does not marshal: %v", err)
			}
			if !HeaderComplete(s) {
				t.Errorf("header incomplete: %d bytes stored", len(s.Header))
			}
			if got := string(s.Header); got != tc.msg[s.Body.HeaderOffset:s.Body.BodyOffset] {
				t.Errorf("Header = %q, want the bytes before the body", got)
			}
			if tc.envelope != "" {
				if got := string(AppendEnvelope(nil, s.Envelope)); got != tc.envelope {
					t.Errorf("ENVELOPE\n got %s\nwant %s", got, tc.envelope)
				}
			}
			if tc.body != "" {
				if got := string(AppendBodyStructure(nil, s.Body, false)); got != tc.body {
					t.Errorf("BODY\n got %s\nwant %s", got, tc.body)
				}
			}
			if tc.bodyStructure != "" {
				if got := string(AppendBodyStructure(nil, s.Body, true)); got != tc.bodyStructure {
					t.Errorf("BODYSTRUCTURE\n got %s\nwant %s", got, tc.bodyStructure)
				}
			}
			if tc.preview != "" && s.Preview != tc.preview {
				t.Errorf("Preview = %q, want %q", s.Preview, tc.preview)
			}
			for name, want := range tc.sections {
				path, spec := parseSection(t, name)
				off, n, err := SectionRange(s, path, spec)
				if err != nil {
					t.Errorf("SectionRange(%q): %v", name, err)
					continue
				}
				if got := tc.msg[off : off+n]; got != want {
					t.Errorf("section [%s] = %q, want %q", name, got, want)
				}
			}
			for _, name := range tc.missing {
				path, spec := parseSection(t, name)
				if _, _, err := SectionRange(s, path, spec); err == nil {
					t.Errorf("SectionRange(%q) succeeded, want ErrNoSuchPart", name)
				}
			}
		})
	}
}

// checkOffsets checks that every part lies within the message, that a part's
// header comes before its body, that size is the body length, and that
// children follow each other in order inside their parent's body.
func checkOffsets(t *testing.T, msgLen int64, part *metadatapb.BodyPart) {
	t.Helper()
	if part == nil {
		t.Fatal("nil part")
	}
	if !(part.HeaderOffset <= part.BodyOffset && part.BodyOffset <= part.EndOffset && part.EndOffset <= uint64(msgLen)) {
		t.Fatalf("part %s/%s offsets %d %d %d out of order or beyond %d", part.Type, part.Subtype, part.HeaderOffset, part.BodyOffset, part.EndOffset, msgLen)
	}
	if part.Size != part.EndOffset-part.BodyOffset {
		t.Fatalf("part %s/%s size %d, body is %d", part.Type, part.Subtype, part.Size, part.EndOffset-part.BodyOffset)
	}
	prev := part.BodyOffset
	for _, c := range part.Parts {
		if c.HeaderOffset < prev || c.EndOffset > part.EndOffset {
			t.Fatalf("child at %d..%d outside %d..%d", c.HeaderOffset, c.EndOffset, prev, part.EndOffset)
		}
		checkOffsets(t, msgLen, c)
		prev = c.EndOffset
	}
	if m := part.Message; m != nil {
		if m.HeaderOffset != part.BodyOffset || m.EndOffset != part.EndOffset {
			t.Fatalf("encapsulated message %d..%d, part body %d..%d", m.HeaderOffset, m.EndOffset, part.BodyOffset, part.EndOffset)
		}
		checkOffsets(t, msgLen, m)
	}
}
