package sievestate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/sievestate"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/sieve"
)

const testWait = 30 * time.Second

// startMetadata runs an embedded Strata (a single-node metadata service on a real gRPC
// listener) with the demo account and returns its metadata client.
func startMetadata(t *testing.T) metadatapb.MetadataClient {
	t.Helper()
	return embeddedtest.Start(t, embedded.Config{Demo: true}).Metadata()
}

func rpcContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	t.Cleanup(cancel)
	return ctx
}

func compile(t *testing.T, src string) *sieve.Program {
	t.Helper()
	p, err := sieve.Compile("test", []byte(src), sieve.Options{})
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return p
}

// deliver runs p over a message from sender to the demo account at now with tr as its
// state, and returns the result.
func deliver(t *testing.T, p *sieve.Program, tr *sievestate.Tracker, sender, messageID string, now time.Time) *sieve.Result {
	t.Helper()
	raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: hello\r\nMessage-ID: %s\r\n\r\nbody\r\n", sender, embedded.DemoAccount, messageID)
	msg, err := sieve.NewRawMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Execute(rpcContext(t), sieve.Input{
		Message: msg, Envelope: sieve.Envelope{From: sender, To: embedded.DemoAccount},
		Now: now, Vacations: tr, Duplicates: tr,
	})
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	return res
}

func outcome(res *sieve.Result) string { return fmt.Sprint(res.Outcome()) }

// TestDuplicate: RFC 7352 3 over the metadata service: an ID is a duplicate only after a
// delivery recorded it, within its :seconds, and per :handle.
func TestDuplicate(t *testing.T) {
	md := startMetadata(t)
	tr := sievestate.New(md, embedded.DemoAccount)
	p := compile(t, `require "duplicate"; if duplicate :seconds 3600 { discard; }`)
	now := time.Now()

	first := deliver(t, p, tr, "bob@example.net", "<m1@example.net>", now)
	if got := outcome(first); got != "[implicit-keep]" {
		t.Fatalf("first delivery: %s", got)
	}
	// Not recorded (the delivery failed): the retry is no duplicate.
	if got := outcome(deliver(t, p, tr, "bob@example.net", "<m1@example.net>", now)); got != "[implicit-keep]" {
		t.Fatalf("retry of a failed delivery: %s", got)
	}
	if err := tr.RecordDuplicates(rpcContext(t), first.DuplicateMarks, now); err != nil {
		t.Fatal(err)
	}
	if got := outcome(deliver(t, p, tr, "bob@example.net", "<m1@example.net>", now.Add(time.Minute))); got != "[discard]" {
		t.Fatalf("second delivery: %s", got)
	}
	if got := outcome(deliver(t, p, tr, "bob@example.net", "<m2@example.net>", now.Add(time.Minute))); got != "[implicit-keep]" {
		t.Fatalf("another message: %s", got)
	}
	// Past :seconds the ID is forgotten.
	if got := outcome(deliver(t, p, tr, "bob@example.net", "<m1@example.net>", now.Add(time.Hour+time.Second))); got != "[implicit-keep]" {
		t.Fatalf("after the period: %s", got)
	}
	// Another :handle tracks apart (RFC 7352 3.1).
	other := compile(t, `require "duplicate"; if duplicate :handle "lists" :seconds 3600 { discard; }`)
	if got := outcome(deliver(t, other, tr, "bob@example.net", "<m1@example.net>", now.Add(time.Minute))); got != "[implicit-keep]" {
		t.Fatalf("other handle: %s", got)
	}
	// Another account has its own IDs.
	if _, err := md.CreateAccount(rpcContext(t), &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: "carol@example.com", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if seen, err := sievestate.New(md, "carol@example.com").Seen(rpcContext(t), "", "<m1@example.net>", now); err != nil || seen {
		t.Fatalf("carol saw demo's ID: %v %v", seen, err)
	}
}

// TestVacation: RFC 5230 4.2 over the metadata service: no second response to the same
// sender with the same handle within the period, once the first was recorded as sent.
func TestVacation(t *testing.T) {
	md := startMetadata(t)
	tr := sievestate.New(md, embedded.DemoAccount)
	p := compile(t, `require "vacation"; vacation :days 1 :handle "away" "I am away";`)
	now := time.Now()

	first := deliver(t, p, tr, "bob@example.net", "<m1@example.net>", now)
	reply := first.Actions[0].Vacation
	if !reply.Send {
		t.Fatalf("first response suppressed: %s", reply.SuppressedBy)
	}
	if err := tr.RecordVacation(rpcContext(t), reply, now); err != nil {
		t.Fatal(err)
	}
	again := deliver(t, p, tr, "Bob@Example.NET", "<m2@example.net>", now.Add(time.Hour)).Actions[0].Vacation
	if again.Send || again.SuppressedBy != "already responded" {
		t.Fatalf("second response within the period: send %v (%s)", again.Send, again.SuppressedBy)
	}
	if other := deliver(t, p, tr, "carol@example.net", "<m3@example.net>", now.Add(time.Hour)).Actions[0].Vacation; !other.Send {
		t.Fatalf("response to another sender suppressed: %s", other.SuppressedBy)
	}
	otherHandle := compile(t, `require "vacation"; vacation :days 1 :handle "other" "I am away";`)
	if r := deliver(t, otherHandle, tr, "bob@example.net", "<m4@example.net>", now.Add(time.Hour)).Actions[0].Vacation; !r.Send {
		t.Fatalf("response with another handle suppressed: %s", r.SuppressedBy)
	}
	if later := deliver(t, p, tr, "bob@example.net", "<m5@example.net>", now.Add(24*time.Hour+time.Minute)).Actions[0].Vacation; !later.Send {
		t.Fatalf("response after the period suppressed: %s", later.SuppressedBy)
	}
}

// TestUnknownAccount: a tracker of an account that does not exist fails, and the
// interpreter turns that into a runtime error with the implicit keep (RFC 5228 2.10.6).
func TestUnknownAccount(t *testing.T) {
	md := startMetadata(t)
	tr := sievestate.New(md, "nobody@example.com")
	if _, err := tr.Seen(rpcContext(t), "", "<x>", time.Now()); status.Code(err) != codes.NotFound {
		t.Fatalf("seen on an unknown account: %v", err)
	}
	if err := tr.RecordDuplicates(rpcContext(t), []sieve.DuplicateMark{{ID: "<x>", Expires: time.Now().Add(time.Hour)}}, time.Now()); status.Code(err) != codes.NotFound {
		t.Fatalf("record on an unknown account: %v", err)
	}
	p := compile(t, `require "duplicate"; if duplicate { discard; }`)
	raw := "Message-ID: <x@example.net>\r\n\r\nbody\r\n"
	msg, _ := sieve.NewRawMessage([]byte(raw))
	res, err := p.Execute(rpcContext(t), sieve.Input{Message: msg, Now: time.Now(), Duplicates: tr})
	if err == nil || !res.ImplicitKeep {
		t.Fatalf("execute with a failing tracker: %v, implicit keep %v", err, res.ImplicitKeep)
	}
}
