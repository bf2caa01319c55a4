package sieve

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// testMessage is the message most table tests run against.
const testMessage = "From: Alice <alice@example.org>\r\n" +
	"To: bob+lists@example.com, carol@example.net\r\n" +
	"Cc: \"Dave\" <dave@EXAMPLE.com>\r\n" +
	"Subject: Hello there\r\n" +
	"Date: Tue, 01 Dec 2026 10:00:00 +0100\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"X-Spam: yes\r\n" +
	"X-Spam: maybe\r\n" +
	"\r\n" +
	"Body text with a keyword.\r\n"

var testNow = time.Date(2026, 12, 5, 10, 30, 0, 0, time.UTC)

type sieveCase struct {
	name   string
	script string
	msg    string       // testMessage when ""
	input  func(*Input) // adjusts the input
	want   []string     // Outcome lines
}

func testInput(t *testing.T, msg string) Input {
	t.Helper()
	if msg == "" {
		msg = testMessage
	}
	m, err := NewRawMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return Input{Message: m, Now: testNow, Location: time.UTC,
		Envelope: Envelope{From: "alice@example.org", To: "bob+lists@example.com"}}
}

// execute compiles and runs a script; compile errors fail the test.
func execute(t *testing.T, script string, in Input) (*Result, error) {
	t.Helper()
	p, err := Compile("test", []byte(script), Options{})
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, script)
	}
	return p.Execute(context.Background(), in)
}

func runCases(t *testing.T, cases []sieveCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := testInput(t, tc.msg)
			if tc.input != nil {
				tc.input(&in)
			}
			res, _ := execute(t, tc.script, in)
			got := res.Outcome()
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("outcome\n got %q\nwant %q\nscript: %s", got, tc.want, tc.script)
			}
		})
	}
}

// mailboxes is the caller's view of the user's mailboxes.
type mailboxes map[string][]string // name -> special-use attributes

func (m mailboxes) MailboxExists(_ context.Context, name string) (bool, error) {
	_, ok := m[name]
	return ok, nil
}

func (m mailboxes) SpecialUseExists(_ context.Context, mailbox, use string) (bool, error) {
	for name, uses := range m {
		if mailbox != "" && name != mailbox {
			continue
		}
		for _, u := range uses {
			if strings.EqualFold(u, use) {
				return true, nil
			}
		}
	}
	return false, nil
}

// responses records vacation responses like the delivery code will.
type responses map[string]time.Time // handle + sender -> when

func (r responses) Responded(_ context.Context, handle, sender string, since time.Time) (bool, error) {
	at, ok := r[handle+"\x00"+sender]
	return ok && at.After(since), nil
}

type seenIDs map[string]time.Time // handle + id -> expiry

func (s seenIDs) Seen(_ context.Context, handle, id string, now time.Time) (bool, error) {
	exp, ok := s[handle+"\x00"+id]
	return ok && exp.After(now), nil
}

// scripts is a ScriptLoader over compiled sources.
type scripts map[string]string // "personal/name" -> source

func (s scripts) LoadScript(_ context.Context, loc ScriptLocation, name string) (*Program, error) {
	src, ok := s[loc.String()+"/"+name]
	if !ok {
		return nil, ErrScriptNotFound
	}
	return Compile(name, []byte(src), Options{})
}

func compileErr(t *testing.T, script string) *Error {
	t.Helper()
	_, err := Compile("s", []byte(script), Options{})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want a compile error for %q, got %v", script, err)
	}
	return e
}
