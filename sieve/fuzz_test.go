package sieve

import (
	"context"
	"errors"
	"testing"
)

var fuzzSeeds = []string{
	``,
	`keep;`,
	`require ["fileinto", "imap4flags", "variables", "copy", "mailbox"]; if header :matches "subject" "*[?]*" { fileinto :copy :create :flags "\\Seen ${1}" "${2}"; }`,
	"require \"reject\"; reject text:\r\nbye\r\n..\r\n.\r\n;",
	`require ["vacation-seconds"]; vacation :seconds 60 :subject "s" :from "a@b.c" :addresses ["x@y.z"] :mime :handle "h" "r";`,
	`require ["relational", "comparator-i;ascii-numeric"]; if address :count "gt" :comparator "i;ascii-numeric" :all ["to","cc"] "1" { stop; }`,
	`require ["date", "index", "relational"]; if date :index 1 :last :zone "+0100" :value "ge" "date" "year" "2020" {} elsif currentdate :is "weekday" "0" {} else {}`,
	`require ["encoded-character", "variables"]; set :lower :upperfirst "a" "${hex: 41 42}${unicode:1F600}"; if string :is "${a}" "" { discard; }`,
	`require ["body", "editheader", "spamtestplus", "virustest", "duplicate", "environment", "special-use", "subaddress", "envelope"];
	 if anyof(body :content ["text", ""] :contains "x", spamtest :percent "50", virustest "1", duplicate :seconds 5 :handle "h",
	 environment "name" "Strata", specialuse_exists "\\Junk", envelope :detail "to" "d") { addheader :last "X" "y"; deleteheader :index 1 "X"; }`,
	`require ["include", "variables"]; global ["a", "b"]; include :global :once :optional "x"; return;`,
	`if allof(not exists "a", size :over 1M, anyof(true, false)) { redirect "a@b.c"; }`,
	`/* comment */ # another` + "\n" + `if header :is "a" ["b", "c"] { discard; }`,
}

// FuzzCompile: Compile never panics, every error is an *Error with a
// position, and whatever compiles also executes without panicking.
func FuzzCompile(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	msg, err := NewRawMessage([]byte(testMessage))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Compile("fuzz", src, Options{Limits: Limits{MaxSteps: 2000}})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Column < 1 {
				t.Fatalf("compile error without a position: %#v", err)
			}
			return
		}
		in := Input{Message: msg, Now: testNow, Envelope: Envelope{From: "a@b.c", To: "d@e.f"},
			Mailboxes: mailboxes{"INBOX": nil}, Vacations: responses{}, Duplicates: seenIDs{},
			Scripts: scripts{"personal/x": `keep;`}}
		res, err := p.Execute(context.Background(), in)
		if res == nil {
			t.Fatalf("nil result (err %v)", err)
		}
		_ = res.Outcome()
	})
}

// FuzzMessage: parsing any message and running tests over it never panics.
func FuzzMessage(f *testing.F) {
	f.Add([]byte(testMessage))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nb\r\n--x--\r\n"))
	f.Add([]byte("\r\nno header"))
	p, err := Compile("s", []byte(`require ["body", "date", "variables", "editheader"];
		if anyof(body :text :contains "b", body :raw :matches "*", date :is "date" "year" "2026", address :domain :is "from" "x", address :all :is ["to", "cc"] "x", body :content "message/rfc822" :contains "in", header :matches "subject" "*?*") {
			deleteheader "subject"; addheader "X" "${1}"; }`), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := NewRawMessage(raw)
		if err != nil {
			return
		}
		if _, err := p.Execute(context.Background(), Input{Message: m, Now: testNow}); err != nil {
			t.Fatalf("execute: %v", err)
		}
	})
}
