package message

import (
	"fmt"
	"strings"
)

// Real-world shaped test messages. Written with "\n" and converted with crlf
// where the test wants CRLF, as messages arrive over IMAP and LMTP.

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// textBody returns a body of exactly size octets and lines lines, joined with
// eol, with a final eol when terminated.
func textBody(size, lines int, eol string, terminated bool) string {
	breaks := lines - 1
	if terminated {
		breaks = lines
	}
	chars := size - breaks*len(eol)
	var sb strings.Builder
	for i := 0; i < lines; i++ {
		n := chars / lines
		if i < chars%lines {
			n++
		}
		line := fmt.Sprintf("line %02d ", i+1)
		if n < len(line) {
			line = line[:n]
		}
		sb.WriteString(line)
		sb.WriteString(strings.Repeat("x", n-len(line)))
		if i < lines-1 || terminated {
			sb.WriteString(eol)
		}
	}
	return sb.String()
}

// rfc3501Message reproduces the message of the RFC 3501 section 8 example
// FETCH response.
var rfc3501Message = crlf(`Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
From: Terry Gray <gray@cac.washington.edu>
Subject: IMAP4rev1 WG mtg summary and minutes
To: imap@cac.washington.edu
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>
Message-Id: <B27397-0100000@cac.washington.edu>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

`) + textBody(3028, 92, "\r\n", true)

// rfc9051Message has the body structure of the RFC 9051 7.5.2 BODYSTRUCTURE
// example.
var rfc9051Message = crlf(`From: Terry Gray <gray@cac.washington.edu>
Subject: cc.diff
MIME-Version: 1.0
Content-Type: MULTIPART/MIXED; BOUNDARY="=_960723"

--=_960723
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

`) + textBody(1152, 23, "\r\n", false) + crlf(`
--=_960723
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff
Content-ID: <960723163407.20117h@cac.washington.edu>
Content-Description: Compiler diff
Content-Transfer-Encoding: BASE64

`) + textBody(4554, 73, "\r\n", false) + crlf(`
--=_960723--
`)

var alternativeMessage = crlf(`From: Alice <alice@example.org>
To: Bob <bob@example.net>
Subject: =?UTF-8?Q?Caf=C3=A9?= plans
Date: Mon, 3 Nov 2025 10:00:00 +0100
Message-ID: <alt1@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Let's meet at the caf=C3=A9 =
tomorrow.
--alt
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Let's meet at the caf=C3=A9 tomorrow.</p></body></html>
--alt--
`)

// mixedNested is what Thunderbird and Apple Mail send for an HTML message
// with an inline image and an attachment.
var mixedNested = `From: Carol <carol@example.com>
To: dave@example.com
Subject: Report
Date: Tue, 4 Nov 2025 08:30:00 +0000
Message-ID: <mixed1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is a multi-part message in MIME format.
--outer
Content-Type: multipart/alternative; boundary="inner"

` + mixedInner + `
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.pdf"; size=15
Content-Language: en, de
Content-Location: http://example.com/report.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Description: Quarterly report

JVBERi0xLjQKJeLjz9MK
--outer--
`

// mixedInner is part 1 of mixedNested, its multipart/alternative body.
const mixedInner = `--inner
Content-Type: text/plain; charset=us-ascii

See the attached report.
--inner
Content-Type: multipart/related; boundary="rel"; type="text/html"

--rel
Content-Type: text/html; charset=us-ascii

<p>See the attached <b>report</b>.<img src="cid:logo@x"></p>
--rel
Content-Type: image/png; name="logo.png"
Content-ID: <logo@x>
Content-Transfer-Encoding: base64
Content-Disposition: inline; filename="logo.png"

iVBORw0KGgo=
--rel--
--inner--`

var forwardedMessage = crlf(`From: Eve <eve@example.com>
To: Frank <frank@example.com>
Subject: Fwd: Lunch
Date: Wed, 5 Nov 2025 09:00:00 +0000
Message-ID: <fwd@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain

Forwarding.
--fwd
Content-Type: message/rfc822
Content-Disposition: attachment

From: Grace <grace@example.org>
To: Eve <eve@example.com>
Subject: Lunch
Date: Mon, 3 Nov 2025 12:00:00 +0000
Message-ID: <lunch@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="l"

--l
Content-Type: text/plain; charset=utf-8

Noon?
--l
Content-Type: text/html; charset=utf-8

<p>Noon?</p>
--l--
--fwd--
`)

var digestMessage = crlf(`From: list@example.com
To: sub@example.com
Subject: Digest
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="d"

--d

From: a@example.com
Subject: one

First.
--d
Content-Type: message/rfc822

From: b@example.com
Subject: two

Second.
--d--
`)

var missingCloseMessage = crlf(`Subject: truncated
Content-Type: multipart/mixed; boundary=zz

--zz
Content-Type: text/plain

one
--zz
Content-Type: text/plain

two
`)

// missingInnerClose has an inner multipart that an outer delimiter ends.
var missingInnerClose = crlf(`Subject: inner not closed
Content-Type: multipart/mixed; boundary=o

--o
Content-Type: multipart/alternative; boundary=o2

--o2
Content-Type: text/plain

in
--o
Content-Type: text/plain

after
--o--
`)

var preambleEpilogue = crlf(`Subject: pre and epi
Content-Type: multipart/mixed; boundary="b"

preamble line
--b

implicit text/plain
--b--
epilogue line
`)

var rfc2231Message = crlf(`Subject: rates
Content-Type: application/octet-stream; name*0*=UTF-8''%E2%82%AC%20; name*1*=rate;
 name*2=".pdf"
Content-Disposition: attachment; filename*=iso-8859-1'en'%A3%20rates.txt

data
`)

// groupsMessage uses the address examples of RFC 5322 A.1.3 and A.5 and an
// RFC 5322 4.4 route.
var groupsMessage = crlf(`From: "Joe Q. Public" <john.q.public@example.com>
Sender: Pete(A nice \) chap) <pete(his account)@silly.test(his host)>
Reply-To: <@route.test,@two.test:boss@nil.test>
To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;
Cc: Undisclosed recipients:;
Bcc: user@host (Full Name)
Subject: groups

body
`)

var eightBitMessage = crlf("From: Ren\xe9 <rene@example.fr>\nTo: \"J\xc3\xbcrgen\" <j@example.de>\nSubject: Gr\xc3\xbc\xc3\x9fe\n\nHallo\n")

var htmlOnlyMessage = crlf(`Subject: newsletter
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: base64

PGh0bWw+PGhlYWQ+PHRpdGxlPk5ld3M8L3RpdGxlPjxzdHlsZT5wIHtjb2xvcjpyZWR9PC9zdHls
ZT48L2hlYWQ+PGJvZHk+PHA+Q2Fm6SAmYW1wOyBjcuhtZTwvcD48cD5TZWUgICB5b3U8L3A+PC9i
b2R5PjwvaHRtbD4=
`)

var noBlankLine = "From: a@example.com\r\nSubject: header only"

var emptyBody = crlf("Subject: empty\n\n")

var multipartNoBoundary = crlf(`Subject: broken
Content-Type: multipart/mixed

--x
text
`)
