package sieve

import (
	"testing"
	"time"
)

// RFC 5429
func TestReject(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "reject", script: `require "reject"; reject "go away";`, want: []string{"reject go away"}},
		{name: "ereject", script: `require "ereject"; ereject "no";`, want: []string{"reject no"}},
		{name: "multi-line reason", script: "require \"reject\"; reject text:\r\nline1\r\nline2\r\n.\r\n;", want: []string{`reject line1\nline2\n`}},
		{name: "reject after fileinto fails", script: `require ["reject", "fileinto"]; fileinto "A"; reject "no";`, want: []string{"error"}},
		{name: "keep after reject fails", script: `require "reject"; reject "no"; keep;`, want: []string{"error"}},
		{name: "two rejects fail", script: `require "reject"; reject "a"; reject "b";`, want: []string{"error"}},
		{name: "reject with discard", script: `require "reject"; discard; reject "a";`, want: []string{"discard", "reject a"}},
	})
}

// RFC 5232
func TestImap4flags(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "flags on implicit keep", script: `require "imap4flags"; addflag "\\Seen Foo";`, want: []string{`implicit-keep flags=\seen foo`}},
		{name: "internal variable at fileinto", script: `require ["imap4flags", "fileinto"]; setflag "\\Flagged"; fileinto "A"; removeflag "\\Flagged"; addflag ["a", "b"];`,
			want: []string{`fileinto A flags=\flagged`}},
		{name: ":flags replaces", script: `require ["imap4flags"]; addflag "a"; keep :flags "b";`, want: []string{"keep flags=b"}},
		{name: "duplicate store takes the last flags", script: `require ["imap4flags", "fileinto"]; fileinto "A"; fileinto :flags "x" "A"; fileinto :flags "y" "A";`,
			want: []string{"fileinto A flags=y"}},
		{name: "addflag dedups case-insensitively", script: `require "imap4flags"; addflag "a A b"; addflag "B c";`, want: []string{"implicit-keep flags=a b c"}},
		{name: "invalid flags are dropped", script: `require "imap4flags"; addflag ["\\Bogus", "\\Recent", "a(b", "x*", "ok]", "é", "ok", "\\SEEN"]; if hasflag :contains "bog" { discard; }`,
			want: []string{`implicit-keep flags=\seen ok`}},
		{name: "invalid :flags are dropped", script: `require "imap4flags"; keep :flags "\\Bogus a";`, want: []string{"keep flags=a"}},
		{name: "system flags print first", script: `require "imap4flags"; addflag ["k", "\\Draft", "\\Seen", "\\Deleted", "\\Answered", "\\Flagged"];`,
			want: []string{`implicit-keep flags=\flagged \answered \deleted \seen \draft k`}},
		{name: "removeflag", script: `require "imap4flags"; setflag "a b c"; removeflag ["B", "x"];`, want: []string{"implicit-keep flags=a c"}},
		{name: "hasflag", script: `require "imap4flags"; setflag "\\Seen"; if hasflag "\\seen" { discard; }`, want: []string{"discard"}},
		{name: "hasflag :contains", script: `require "imap4flags"; setflag "Junk"; if hasflag :contains "un" { discard; }`, want: []string{"discard"}},
		{name: "flag variables", script: `require ["imap4flags", "variables"]; setflag "v" "a"; addflag "v" "b"; if hasflag "v" "b" { keep :flags "${v}"; }`,
			want: []string{"keep flags=a b"}},
		{name: "flag variable leaves internal alone", script: `require ["imap4flags", "variables"]; addflag "v" "a";`, want: []string{"implicit-keep"}},
	})
}

// RFC 5173
func TestBody(t *testing.T) {
	fwd := "Content-Type: message/rfc822\n\nFrom: x@y.example\nSubject: inner\n\nThe secret.\n"
	mime := "Content-Type: multipart/alternative; boundary=BB\r\nSubject: m\r\n\r\n" +
		"preamble\r\n--BB\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 soon=\r\n now\r\n" +
		"--BB\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+Ym9sZDwvYj4=\r\n--BB--\r\n"
	runCases(t, []sieveCase{
		{name: "default is text", script: `require "body"; if body :contains "keyword" { discard; }`, want: []string{"discard"}},
		{name: "raw", script: `require "body"; if body :raw :contains "=E9" { discard; }`, msg: mime, want: []string{"discard"}},
		{name: "text part decoded", script: `require "body"; if body :text :contains "Café soon now" { discard; }`, msg: mime, want: []string{"discard"}},
		{name: "text includes html as text", script: `require "body"; if body :text :contains "bold" { discard; }`, msg: mime, want: []string{"discard"}},
		{name: "text drops html markup", script: `require "body"; if body :text :contains "<b>" { discard; }`, msg: mime, want: []string{"implicit-keep"}},
		{name: "content html only", script: `require "body"; if body :content "text/html" :contains "Caf" { discard; }`, msg: mime, want: []string{"implicit-keep"}},
		{name: "content base64 decoded", script: `require "body"; if body :content "text/html" :contains "<b>" { discard; }`, msg: mime, want: []string{"discard"}},
		{name: "content image none", script: `require "body"; if body :content "image" :contains "" { discard; }`, msg: mime, want: []string{"implicit-keep"}},
		{name: "matches", script: `require "body"; if body :matches "*keyword*" { discard; }`, want: []string{"discard"}},
		{name: "message/rfc822 is its header", script: `require "body"; if body :content "message/rfc822" :contains "Subject: inner" { discard; }`, msg: fwd, want: []string{"discard"}},
		{name: "message/rfc822 header lines end in CRLF", script: `require ["body", "encoded-character"]; if body :content "message" :matches "From: x@y.example${hex:0D 0A}*inner${hex:0D 0A}" { discard; }`, msg: fwd, want: []string{"discard"}},
		{name: "message/rfc822 is not its body", script: `require "body"; if body :content "message/rfc822" :contains "secret" { discard; }`, msg: fwd, want: []string{"implicit-keep"}},
		{name: "embedded text part", script: `require "body"; if body :text :contains "secret" { discard; }`, msg: fwd, want: []string{"discard"}},
	})
}

// RFC 5229
func TestVariables(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "set and use", script: `require ["variables", "fileinto"]; set "box" "Lists"; fileinto "${box}/${BOX}";`, want: []string{"fileinto Lists/Lists"}},
		{name: "unset is empty", script: `require ["variables", "fileinto"]; fileinto "a${nothing}b";`, want: []string{"fileinto ab"}},
		{name: "not a reference", script: `require ["variables", "fileinto"]; fileinto "${a-b}${";`, want: []string{"fileinto ${a-b}${"}},
		{name: "match variables", script: `require ["variables", "fileinto"]; if header :matches "to" "*+*@*" { fileinto "${2}.${3}"; }`,
			want: []string{"fileinto lists.example.com, carol@example.net"}},
		{name: "match variable zero and ?", script: `require ["variables", "fileinto"]; if header :matches "subject" "H?llo *" { fileinto "${0}|${1}|${2}"; }`,
			want: []string{"fileinto Hello there|e|there"}},
		{name: "failed match keeps old values", script: `require ["variables", "fileinto"]; if header :matches "subject" "*" {} if header :matches "subject" "x*" {} fileinto "${1}";`,
			want: []string{"fileinto Hello there"}},
		{name: "modifiers", script: `require ["variables", "fileinto"]; set :upperfirst :lower "a" "hELLO"; set :length "n" "ab€"; set :quotewildcard "q" "a*b?"; fileinto "${a}${n}${q}";`,
			want: []string{`fileinto Hello3a\*b\?`}},
		{name: "upper", script: `require ["variables", "fileinto"]; set :upper "a" "abc"; fileinto "${a}";`, want: []string{"fileinto ABC"}},
		{name: "case modifiers change ASCII only", script: `require ["variables", "fileinto"]; set :upper "a" "café"; set :upperfirst "b" "élan"; set :lower "c" "ÉCOLE"; fileinto "${a}|${b}|${c}";`,
			want: []string{"fileinto CAFé|élan|École"}},
		{name: "string test", script: `require ["variables"]; set "x" "abc"; if string :is "${x}" "abc" { discard; }`, want: []string{"discard"}},
		{name: "string :count skips empty", script: `require ["variables", "relational"]; if string :count "eq" ["a", "", "b"] "2" { discard; }`, want: []string{"discard"}},
		{name: "quotewildcard round trip", script: `require ["variables"]; set :quotewildcard "p" "a*"; if string :matches "a*" "${p}" { discard; }`, want: []string{"discard"}},
		{name: "not expanded without require", script: `require "fileinto"; fileinto "${x}";`, want: []string{"fileinto ${x}"}},
	})
}

// RFC 5230, RFC 6131
func TestVacation(t *testing.T) {
	reply := func(tracker responses) func(*Input) {
		return func(in *Input) { in.Vacations = tracker }
	}
	runCases(t, []sieveCase{
		{name: "defaults", script: `require "vacation"; vacation "I am away";`, want: []string{"vacation subject= seconds=604800", "implicit-keep"}},
		{name: "days and subject", script: `require "vacation"; vacation :days 3 :subject "away" :from "bob@example.com" "I am away";`,
			want: []string{"vacation subject=away seconds=259200 from=bob@example.com", "implicit-keep"}},
		{name: "seconds clamped to minimum", script: `require "vacation-seconds"; vacation :seconds 0 "x";`, want: []string{"vacation subject= seconds=86400", "implicit-keep"}},
		{name: "no maximum by default", script: `require "vacation"; vacation :days 1000 "x";`, want: []string{"vacation subject= seconds=86400000", "implicit-keep"}},
		{name: "vacation with fileinto", script: `require ["vacation", "fileinto"]; fileinto "A"; vacation "x";`, want: []string{"fileinto A", "vacation subject= seconds=604800"}},
		{name: "vacation with reject fails", script: `require ["vacation", "reject"]; vacation "x"; reject "no";`, want: []string{"error"}},
		{name: "two vacations fail", script: `require ["vacation"]; vacation "x"; vacation "y";`, want: []string{"error"}},
		{name: "tracked response not listed", script: `require "vacation"; vacation "x";`,
			input: reply(responses{"x<default-subject><default-from><NO-MIME>\x00alice@example.org": testNow.Add(-time.Hour)}),
			want:  []string{"implicit-keep"}},
		{name: "suppressed response not listed", script: `require "vacation"; vacation "x";`, msg: "To: nobody@example.net\r\nSubject: s\r\n\r\nb\r\n",
			want: []string{"implicit-keep"}},
	})
}

// TestVacationResponseRules checks who gets a reply (RFC 5230 4.5) and the
// reply's fields.
func TestVacationResponseRules(t *testing.T) {
	cases := []struct {
		name     string
		header   string
		from     string
		script   string
		tracker  responses
		suppress string
	}{
		{name: "sent", header: "To: bob+lists@example.com\r\n", from: "alice@example.org"},
		{name: "null sender", header: "To: bob+lists@example.com\r\n", from: "", suppress: "null sender"},
		{name: "list", header: "To: bob+lists@example.com\r\nList-Id: <l.example.org>\r\n", from: "alice@example.org", suppress: "mailing list"},
		{name: "auto-submitted", header: "To: bob+lists@example.com\r\nAuto-Submitted: auto-replied\r\n", from: "alice@example.org", suppress: "auto-submitted"},
		{name: "auto-submitted no", header: "To: bob+lists@example.com\r\nAuto-Submitted: no\r\n", from: "alice@example.org"},
		{name: "bulk", header: "To: bob+lists@example.com\r\nPrecedence: bulk\r\n", from: "alice@example.org", suppress: "bulk precedence"},
		{name: "daemon", header: "To: bob+lists@example.com\r\n", from: "MAILER-DAEMON@example.org", suppress: "system address"},
		{name: "request", header: "To: bob+lists@example.com\r\n", from: "list-request@example.org", suppress: "system address"},
		{name: "not addressed", header: "To: someone@example.com\r\n", from: "alice@example.org", suppress: "not addressed to the user"},
		{name: "addressed via :addresses", header: "To: Bob <bob@alias.example>\r\n", from: "alice@example.org",
			script: `require "vacation"; vacation :addresses "bob@alias.example" "x";`},
		{name: "already responded", header: "To: bob+lists@example.com\r\n", from: "alice@example.org",
			tracker: responses{"h\x00alice@example.org": testNow.Add(-24 * time.Hour)}, script: `require "vacation"; vacation :handle "h" :days 2 "x";`, suppress: "already responded"},
		{name: "responded before the period", header: "To: bob+lists@example.com\r\n", from: "alice@example.org",
			tracker: responses{"h\x00alice@example.org": testNow.Add(-72 * time.Hour)}, script: `require "vacation"; vacation :handle "h" :days 2 "x";`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := testInput(t, "Subject: Hi\r\nMessage-ID: <m1@x>\r\n"+c.header+"\r\nbody\r\n")
			in.Envelope.From = c.from
			in.Vacations = c.tracker
			script := c.script
			if script == "" {
				script = `require "vacation"; vacation "x";`
			}
			res, err := execute(t, script, in)
			if err != nil {
				t.Fatal(err)
			}
			v := res.Actions[0].Vacation
			if v.Send != (c.suppress == "") || v.SuppressedBy != c.suppress {
				t.Fatalf("send=%v suppressed=%q, want %q", v.Send, v.SuppressedBy, c.suppress)
			}
		})
	}
	in := testInput(t, "Subject: Hi\r\nMessage-ID: <m1@x>\r\nTo: bob+lists@example.com\r\n\r\nbody\r\n")
	res, err := execute(t, "require \"vacation\"; vacation :mime text:\r\nContent-Type: text/plain\r\n\r\nAway\r\n.\r\n;", in)
	if err != nil {
		t.Fatal(err)
	}
	v := res.Actions[0].Vacation
	if v.To != "alice@example.org" || v.From != "bob+lists@example.com" || v.Subject != "Auto: Hi" || !v.MIME ||
		v.InReplyTo != "<m1@x>" || v.Handle != "Content-Type: text/plain\r\n\r\nAway\r\n<default-subject><default-from><MIME>" {
		t.Fatalf("reply %+v", v)
	}
}

// RFC 5231
func TestRelational(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "count header fields", script: `require ["relational", "comparator-i;ascii-numeric"]; if header :count "ge" :comparator "i;ascii-numeric" "x-spam" "2" { discard; }`, want: []string{"discard"}},
		{name: "count addresses", script: `require ["relational", "comparator-i;ascii-numeric"]; if address :count "eq" :comparator "i;ascii-numeric" ["to", "cc"] "3" { discard; }`, want: []string{"discard"}},
		{name: "value numeric", script: `require ["relational", "comparator-i;ascii-numeric"]; if header :value "gt" :comparator "i;ascii-numeric" "x-score" "9" { discard; }`,
			msg: "X-Score: 10\r\n\r\nx\r\n", want: []string{"discard"}},
		{name: "value string order", script: `require ["relational"]; if header :value "gt" "x-score" "9" { discard; }`,
			msg: "X-Score: 10\r\n\r\nx\r\n", want: []string{"implicit-keep"}},
		{name: "numeric non-digit is infinity", script: `require ["relational", "comparator-i;ascii-numeric"]; if header :value "gt" :comparator "i;ascii-numeric" "subject" "99999" { discard; }`,
			want: []string{"discard"}},
		{name: "numeric equality ignores leading zeros", script: `require ["comparator-i;ascii-numeric"]; if header :is :comparator "i;ascii-numeric" "x-score" "7" { discard; }`,
			msg: "X-Score: 007\r\n\r\nx\r\n", want: []string{"discard"}},
		{name: "ne", script: `require ["relational"]; if header :value "ne" "subject" "Hello there" { discard; }`, want: []string{"implicit-keep"}},
	})
}

// RFC 5233
func TestSubaddress(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "detail", script: `require ["subaddress", "envelope"]; if envelope :detail "to" "lists" { discard; }`, want: []string{"discard"}},
		{name: "user", script: `require ["subaddress"]; if address :user "to" "bob" { discard; }`, want: []string{"discard"}},
		{name: "no delimiter no detail", script: `require ["subaddress"]; if address :detail :matches "from" "*" { discard; }`, want: []string{"implicit-keep"}},
		{name: "empty detail", script: `require ["subaddress"]; if address :detail :is "to" "" { discard; }`,
			msg: "To: bob+@example.com\r\n\r\nx\r\n", want: []string{"discard"}},
		{name: "custom delimiter", script: `require ["subaddress", "envelope"]; if envelope :detail "to" "tag" { discard; }`,
			input: func(in *Input) { in.Envelope.To = "bob--tag@example.com"; in.SubaddressDelimiter = "--" }, want: []string{"discard"}},
	})
}

// RFC 3894
func TestCopy(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "fileinto copy keeps", script: `require ["fileinto", "copy"]; fileinto :copy "A";`, want: []string{"fileinto A", "implicit-keep"}},
		{name: "redirect copy keeps", script: `require ["copy"]; redirect :copy "a@b.c";`, want: []string{"redirect a@b.c", "implicit-keep"}},
		{name: "copy then plain cancels", script: `require ["fileinto", "copy"]; fileinto :copy "A"; fileinto "B";`, want: []string{"fileinto A", "fileinto B"}},
	})
}

// RFC 5260
func TestDate(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "date year", script: `require "date"; if date :is "date" "year" "2026" { discard; }`, want: []string{"discard"}},
		{name: "local zone", script: `require "date"; if date :is "date" "hour" "09" { discard; }`, want: []string{"discard"}},
		{name: "originalzone", script: `require "date"; if date :originalzone :is "date" "hour" "10" { discard; }`, want: []string{"discard"}},
		{name: "zone", script: `require "date"; if date :zone "-0500" :is "date" "time" "04:00:00" { discard; }`, want: []string{"discard"}},
		{name: "iso8601", script: `require "date"; if date :originalzone :is "date" "iso8601" "2026-12-01T10:00:00+01:00" { discard; }`, want: []string{"discard"}},
		{name: "invalid zone is the local zone", script: `require "date"; if date :zone "CET" :is "date" "zone" "+0000" { discard; }`, want: []string{"discard"}},
		{name: "zone minutes carry", script: `require "date"; if date :zone "+0160" :is "date" "zone" "+0200" { discard; }`, want: []string{"discard"}},
		{name: "iso8601 utc is Z", script: `require "date"; if date :zone "+0000" :is "date" "iso8601" "2026-12-01T09:00:00Z" { discard; }`, want: []string{"discard"}},
		{name: "std11 and zone part", script: `require "date"; if allof(date :originalzone :is "date" "std11" "Tue, 01 Dec 2026 10:00:00 +0100", date :originalzone :is "date" "zone" "+0100") { discard; }`, want: []string{"discard"}},
		{name: "weekday and julian", script: `require "date"; if allof(date :is "date" "weekday" "2", date :is "date" "julian" "61375") { discard; }`, want: []string{"discard"}},
		{name: "bad date never matches", script: `require "date"; if date :matches "date" "year" "*" { discard; }`, msg: "Date: soon\r\n\r\nx\r\n", want: []string{"implicit-keep"}},
		{name: "received date after semicolon", script: `require "date"; if date :is "received" "date" "2026-11-30" { discard; }`,
			msg: "Received: from a by b; Mon, 30 Nov 2026 22:00:00 +0000\r\n\r\nx\r\n", want: []string{"discard"}},
		{name: "currentdate", script: `require ["date", "relational"]; if allof(currentdate :is "date" "2026-12-05", currentdate :value "ge" "hour" "10", currentdate :zone "+0200" :is "hour" "12") { discard; }`, want: []string{"discard"}},
		{name: "index", script: `require ["index"]; if header :index 2 :is "x-spam" "maybe" { discard; }`, want: []string{"discard"}},
		{name: "index last", script: `require ["index"]; if header :index 1 :last :is "x-spam" "maybe" { discard; }`, want: []string{"discard"}},
		{name: "index out of range", script: `require ["index"]; if header :index 3 :contains "x-spam" "" { discard; }`, want: []string{"implicit-keep"}},
		{name: "address index", script: `require ["index"]; if address :index 1 :is "to" "bob+lists@example.com" { discard; }`, want: []string{"discard"}},
	})
}

// RFC 5490, RFC 8579
func TestMailboxAndSpecialUse(t *testing.T) {
	boxes := func(in *Input) { in.Mailboxes = mailboxes{"INBOX": nil, "Junk": {`\Junk`}, "Lists": nil} }
	runCases(t, []sieveCase{
		{name: "create", script: `require ["fileinto", "mailbox"]; fileinto :create "New";`, want: []string{"fileinto New"}},
		{name: "mailboxexists", script: `require ["fileinto", "mailbox"]; if mailboxexists ["Lists", "INBOX"] { fileinto "Lists"; }`, input: boxes, want: []string{"fileinto Lists"}},
		{name: "mailboxexists missing", script: `require ["fileinto", "mailbox"]; if mailboxexists "Nope" { discard; }`, input: boxes, want: []string{"implicit-keep"}},
		{name: "specialuse_exists", script: `require ["special-use"]; if specialuse_exists "\\Junk" { discard; }`, input: boxes, want: []string{"discard"}},
		{name: "specialuse_exists on mailbox", script: `require ["special-use"]; if specialuse_exists "Lists" "\\Junk" { discard; }`, input: boxes, want: []string{"implicit-keep"}},
		{name: "fileinto specialuse", script: `require ["fileinto", "special-use"]; fileinto :specialuse "\\Junk" "Spam";`, want: []string{"fileinto Spam"}},
	})
	in := testInput(t, "")
	res, err := execute(t, `require ["fileinto", "special-use", "mailbox"]; fileinto :specialuse "\\Junk" :create "Spam";`, in)
	if err != nil || res.Actions[0].SpecialUse != `\Junk` || !res.Actions[0].Create {
		t.Fatalf("%+v %v", res, err)
	}
}

// RFC 5235
func TestSpamtest(t *testing.T) {
	spam := func(in *Input) {
		in.Spam = Score{Tested: true, Value: 8, Percent: 75}
		in.Virus = Score{Tested: true, Value: 1}
	}
	runCases(t, []sieveCase{
		{name: "untested is 0", script: `require "spamtest"; if spamtest :is "0" { discard; }`, want: []string{"discard"}},
		{name: "value numeric", script: `require ["spamtest", "relational", "comparator-i;ascii-numeric"]; if spamtest :value "ge" :comparator "i;ascii-numeric" "5" { discard; }`,
			input: func(in *Input) { in.Spam = Score{Tested: true, Value: 10} }, want: []string{"discard"}},
		{name: "casemap by default", script: `require ["spamtest", "relational"]; if spamtest :value "ge" "5" { discard; }`,
			input: func(in *Input) { in.Spam = Score{Tested: true, Value: 10} }, want: []string{"implicit-keep"}},
		{name: "matches captures the score", script: `require ["spamtest", "variables", "fileinto"]; if spamtest :matches "*" { fileinto "s${1}"; }`, input: spam, want: []string{"fileinto s8"}},
		{name: "percent", script: `require ["spamtestplus", "relational"]; if spamtest :percent :value "gt" "70" { discard; }`, input: spam, want: []string{"discard"}},
		{name: "virustest", script: `require ["virustest", "relational"]; if virustest :value "gt" "1" { discard; }`, input: spam, want: []string{"implicit-keep"}},
	})
}

// RFC 7352
func TestDuplicate(t *testing.T) {
	seen := func(in *Input) { in.Duplicates = seenIDs{"\x00<1@example.org>": testNow.Add(time.Hour)} }
	runCases(t, []sieveCase{
		{name: "first time", script: `require "duplicate"; if duplicate { discard; }`, want: []string{"implicit-keep"}},
		{name: "seen", script: `require "duplicate"; if duplicate { discard; }`, input: seen, want: []string{"discard"}},
		{name: "second test in one run", script: `require "duplicate"; if duplicate {} if duplicate { discard; }`, want: []string{"discard"}},
		{name: "uniqueid and handle", script: `require "duplicate"; if duplicate :handle "h" :uniqueid "<1@example.org>" { discard; }`, input: seen, want: []string{"implicit-keep"}},
		{name: "no message-id", script: `require "duplicate"; if duplicate {} if duplicate { discard; }`, msg: "Subject: x\r\n\r\nb\r\n", want: []string{"implicit-keep"}},
	})
	in := testInput(t, "")
	res, err := execute(t, `require "duplicate"; if duplicate :seconds 60 :header "subject" {}`, in)
	if err != nil || len(res.DuplicateMarks) != 1 || res.DuplicateMarks[0].ID != "Hello there" || !res.DuplicateMarks[0].Expires.Equal(testNow.Add(time.Minute)) {
		t.Fatalf("%+v %v", res, err)
	}
}

// RFC 5293
func TestEditheader(t *testing.T) {
	runCases(t, []sieveCase{
		{name: "added header is seen", script: `require "editheader"; addheader "X-Note" "hi"; if header :is "x-note" "hi" { discard; }`, want: []string{"discard"}},
		{name: "deleted header is gone", script: `require "editheader"; deleteheader "subject"; if exists "subject" { discard; }`, want: []string{"implicit-keep"}},
		{name: "delete by value", script: `require "editheader"; deleteheader :is "x-spam" "yes"; if header :is "x-spam" "yes" { discard; }`, want: []string{"implicit-keep"}},
		{name: "delete by index", script: `require ["editheader", "relational"]; deleteheader :index 1 :last "x-spam"; if header :count "eq" "x-spam" "1" { if header :is "x-spam" "yes" { discard; } }`, want: []string{"discard"}},
		{name: "received may be added", script: `require "editheader"; addheader "Received" "x"; if header :is "received" "x" { discard; }`, want: []string{"discard"}},
		{name: "auto-submitted may be added but not deleted", script: `require "editheader"; addheader "Auto-Submitted" "auto-generated"; deleteheader "auto-submitted"; if exists "auto-submitted" { discard; }`,
			want: []string{"discard"}},
		{name: "received is protected", script: `require "editheader"; deleteheader "received"; if exists "received" { discard; }`,
			msg: "Received: from a\r\n\r\nx\r\n", want: []string{"discard"}},
	})
	in := testInput(t, "")
	res, err := execute(t, `require "editheader"; addheader :last "X-A" "Grüße"; addheader "X-B" "b"; deleteheader :contains "x-spam" "y";`, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []HeaderEdit{{Name: "X-A", Value: "=?utf-8?q?Gr=C3=BC=C3=9Fe?=", Last: true}, {Name: "X-B", Value: "b"}, {Delete: true, Name: "X-Spam", Occurrence: 1}, {Delete: true, Name: "X-Spam", Occurrence: 1}}
	if len(res.HeaderEdits) != len(want) {
		t.Fatalf("edits %+v", res.HeaderEdits)
	}
	for i := range want {
		if res.HeaderEdits[i] != want[i] {
			t.Errorf("edit %d: %+v, want %+v", i, res.HeaderEdits[i], want[i])
		}
	}
}

// RFC 5183
func TestEnvironment(t *testing.T) {
	env := func(in *Input) { in.Environment = map[string]string{"domain": "example.com", "remote-ip": "192.0.2.1"} }
	runCases(t, []sieveCase{
		{name: "given item", script: `require "environment"; if environment :is "remote-ip" "192.0.2.1" { discard; }`, input: env, want: []string{"discard"}},
		{name: "default item", script: `require "environment"; if environment :is "location" "MDA" { discard; }`, want: []string{"discard"}},
		{name: "unknown item fails", script: `require "environment"; if environment :matches "vnd.none" "*" { discard; }`, want: []string{"implicit-keep"}},
	})
}
