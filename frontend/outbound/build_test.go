package outbound

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/strata-mail/strata/sieve"
)

const original = "Return-Path: <alice@example.org>\r\n" +
	"Received: from mx.example.org by mx.example.com; Sat, 5 Dec 2026 10:00:00 +0000\r\n" +
	"From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob@example.com>\r\n" +
	"Subject: lunch?\r\n" +
	"Message-ID: <m2@example.org>\r\n" +
	"In-Reply-To: <m1@example.org>\r\n" +
	"References: <m0@example.org> <m1@example.org>\r\n" +
	"\r\n" +
	"Shall we have lunch on Monday?\r\n"

var deliveryNow = time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)

func testDelivery(msg string) Delivery {
	return Delivery{Sender: "alice@example.org", Recipient: "bob@example.com", Message: []byte(msg), Hostname: "mx.example.com", Now: deliveryNow}
}

// parse reads a built message back with net/mail, failing on bare LF.
func parse(t *testing.T, msg []byte) *mail.Message {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("message has a bare LF:\n%s", msg)
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("parse built message: %v\n%s", err, msg)
	}
	return m
}

func wantField(t *testing.T, m *mail.Message, name, want string) {
	t.Helper()
	if got := m.Header.Get(name); got != want {
		t.Errorf("%s: %q, want %q", name, got, want)
	}
}

func TestVacationReply(t *testing.T) {
	v := &sieve.VacationReply{To: "alice@example.org", Subject: "Auto: lunch?", Body: "I am away.\nBack on Monday.", Send: true}
	o, err := BuildVacation(testDelivery(original), v)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 5230 5.1: from <> to the original envelope sender.
	if o.Envelope.From != "" || len(o.Envelope.To) != 1 || o.Envelope.To[0] != "alice@example.org" {
		t.Errorf("envelope %+v, want <> to alice@example.org", o.Envelope)
	}
	m := parse(t, o.Message)
	if d, err := m.Header.Date(); err != nil || !d.Equal(deliveryNow) {
		t.Errorf("Date: %v %v, want %v", d, err, deliveryNow)
	}
	wantField(t, m, "From", "<bob@example.com>")
	wantField(t, m, "To", "<alice@example.org>")
	wantField(t, m, "Subject", "Auto: lunch?")
	wantField(t, m, "In-Reply-To", "<m2@example.org>")
	wantField(t, m, "References", "<m0@example.org> <m1@example.org> <m2@example.org>")
	wantField(t, m, "Auto-Submitted", "auto-replied")
	wantField(t, m, "Content-Type", "text/plain; charset=utf-8")
	wantField(t, m, "MIME-Version", "1.0")
	if id := m.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@mx.example.com>") {
		t.Errorf("Message-ID %q", id)
	}
	body, _ := io.ReadAll(m.Body)
	if string(body) != "I am away.\r\nBack on Monday.\r\n" {
		t.Errorf("body %q", body)
	}
}

func TestVacationReplyNonASCIIAndFrom(t *testing.T) {
	msg := strings.Replace(original, "References: <m0@example.org> <m1@example.org>\r\n", "", 1)
	v := &sieve.VacationReply{To: "alice@example.org", From: "Bob Müller <bob@example.com>", Subject: "Auto: déjeuner", Body: "Absent jusqu'à lundi.", Send: true}
	o, err := BuildVacation(testDelivery(msg), v)
	if err != nil {
		t.Fatal(err)
	}
	if !isASCII(string(o.Message)) {
		t.Errorf("message not 7-bit:\n%s", o.Message)
	}
	m := parse(t, o.Message)
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subject != "Auto: déjeuner" {
		t.Errorf("Subject decodes to %q %v", subject, err)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Bob Müller" || from[0].Address != "bob@example.com" {
		t.Errorf("From %v %v", from, err)
	}
	// RFC 5322 3.6.4: without References, the parent's In-Reply-To.
	wantField(t, m, "References", "<m1@example.org> <m2@example.org>")
	wantField(t, m, "Content-Transfer-Encoding", "quoted-printable")
	e, err := gomessage.Read(bytes.NewReader(o.Message))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(e.Body)
	if string(body) != "Absent jusqu'à lundi.\r\n" {
		t.Errorf("decoded body %q", body)
	}
}

func TestVacationMIMEReason(t *testing.T) {
	v := &sieve.VacationReply{To: "alice@example.org", Subject: "Auto: lunch?", Body: "Content-Type: text/html; charset=utf-8\n\n<p>Away</p>\n", MIME: true, Send: true}
	o, err := BuildVacation(testDelivery(original), v)
	if err != nil {
		t.Fatal(err)
	}
	m := parse(t, o.Message)
	wantField(t, m, "Content-Type", "text/html; charset=utf-8")
	wantField(t, m, "Auto-Submitted", "auto-replied")
	body, _ := io.ReadAll(m.Body)
	if string(body) != "<p>Away</p>\r\n" {
		t.Errorf("body %q", body)
	}
}

func TestNoAutoReply(t *testing.T) {
	v := &sieve.VacationReply{To: "alice@example.org", Subject: "Auto", Body: "away", Send: true}
	header := func(f string) string { return strings.Replace(original, "Subject:", f+"\r\nSubject:", 1) }
	for _, tc := range []struct {
		name string
		d    Delivery
	}{
		{"null sender", Delivery{Sender: "", Recipient: "bob@example.com", Message: []byte(original)}},
		{"own address", Delivery{Sender: "Bob@Example.com", Recipient: "bob@example.com", Message: []byte(original)}},
		{"mailer-daemon", Delivery{Sender: "MAILER-DAEMON@example.org", Recipient: "bob@example.com", Message: []byte(original)}},
		{"list owner", Delivery{Sender: "owner-lunch@example.org", Recipient: "bob@example.com", Message: []byte(original)}},
		{"list request", Delivery{Sender: "lunch-request@example.org", Recipient: "bob@example.com", Message: []byte(original)}},
		{"auto-replied", testDelivery(header("Auto-Submitted: auto-replied"))},
		{"auto-generated with comment", testDelivery(header("Auto-Submitted: Auto-Generated (bounce)"))},
		{"precedence bulk", testDelivery(header("Precedence: bulk"))},
		{"precedence list", testDelivery(header("Precedence: LIST"))},
		{"precedence junk", testDelivery(header("Precedence: junk"))},
		{"list-id", testDelivery(header("List-Id: Lunch <lunch.example.org>"))},
		{"list-unsubscribe", testDelivery(header("List-Unsubscribe: <mailto:lunch-leave@example.org>"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildVacation(tc.d, v)
			if !errors.Is(err, ErrSuppressed) {
				t.Errorf("BuildVacation: %v, want ErrSuppressed", err)
			}
		})
	}
	// Auto-Submitted: no is a person's message (RFC 3834 5).
	if _, err := BuildVacation(testDelivery(header("Auto-Submitted: no")), v); err != nil {
		t.Errorf("Auto-Submitted: no: %v", err)
	}
	// A reply that would go to the account itself.
	self := &sieve.VacationReply{To: "bob@example.com", Subject: "Auto", Body: "away", Send: true}
	if _, err := BuildVacation(testDelivery(original), self); !errors.Is(err, ErrSuppressed) {
		t.Errorf("reply to own address: %v, want ErrSuppressed", err)
	}
}

func TestRejectionMDN(t *testing.T) {
	o, err := BuildRejection(testDelivery(original), "I don't want\nyour lunch.", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Envelope.From != "" || len(o.Envelope.To) != 1 || o.Envelope.To[0] != "alice@example.org" {
		t.Errorf("envelope %+v, want <> to alice@example.org", o.Envelope)
	}
	m := parse(t, o.Message)
	wantField(t, m, "To", "<alice@example.org>")
	wantField(t, m, "From", "Mail Delivery Subsystem <postmaster@example.com>")
	wantField(t, m, "Subject", "Automatically rejected mail: lunch?")
	wantField(t, m, "In-Reply-To", "<m2@example.org>")
	wantField(t, m, "Auto-Submitted", "auto-replied (rejected)")

	e, err := gomessage.Read(bytes.NewReader(o.Message))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := e.Header.ContentType()
	if mt != "multipart/report" || params["report-type"] != "disposition-notification" {
		t.Fatalf("Content-Type %s %v", mt, params)
	}
	mr := e.MultipartReader()
	var parts []struct {
		typ  string
		body string
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		typ, _, _ := p.Header.ContentType()
		b, _ := io.ReadAll(p.Body)
		parts = append(parts, struct{ typ, body string }{typ, string(b)})
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	if parts[0].typ != "text/plain" || parts[0].body != "Your message to <bob@example.com> was automatically rejected:\r\nI don't want\r\nyour lunch.\r\n" {
		t.Errorf("human part %s %q", parts[0].typ, parts[0].body)
	}
	if parts[1].typ != "message/disposition-notification" {
		t.Errorf("second part %s", parts[1].typ)
	}
	// RFC 8098 3.1: the notification is header fields.
	fields, err := textproto.ReadHeader(bufioReader(parts[1].body + "\r\n"))
	if err != nil {
		t.Fatalf("notification fields: %v", err)
	}
	for name, want := range map[string]string{
		"Reporting-UA":        "mx.example.com; Strata",
		"Final-Recipient":     "rfc822; bob@example.com",
		"Original-Message-ID": "<m2@example.org>",
		"Disposition":         "automatic-action/MDN-sent-automatically; deleted",
	} {
		if got := fields.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if parts[2].typ != "text/rfc822-headers" || !strings.Contains(parts[2].body, "Subject: lunch?\r\n") || strings.Contains(parts[2].body, "Shall we") {
		t.Errorf("third part %s %q, want the original header only", parts[2].typ, parts[2].body)
	}

	for _, d := range []Delivery{
		{Sender: "", Recipient: "bob@example.com", Message: []byte(original)},
		{Sender: "bob@example.com", Recipient: "bob@example.com", Message: []byte(original)},
	} {
		if _, err := BuildRejection(d, "no", Policy{}); !errors.Is(err, ErrSuppressed) {
			t.Errorf("rejection from %q: %v, want ErrSuppressed", d.Sender, err)
		}
	}
}

func TestRedirect(t *testing.T) {
	o, err := BuildRedirect(testDelivery(original), "carol@example.net", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	// RFC 5228 4.2: the original envelope sender is kept.
	if o.Envelope.From != "alice@example.org" || len(o.Envelope.To) != 1 || o.Envelope.To[0] != "carol@example.net" {
		t.Errorf("envelope %+v", o.Envelope)
	}
	// The message unchanged but for Return-Path removed and the loop field added.
	want := "X-Sieve-Redirected-From: <bob@example.com>\r\n" + strings.TrimPrefix(original, "Return-Path: <alice@example.org>\r\n")
	if string(o.Message) != want {
		t.Errorf("redirected message\n%q\nwant\n%q", o.Message, want)
	}

	o, err = BuildRedirect(testDelivery(original), "carol@example.net", Policy{RedirectSender: "bounces@example.com"})
	if err != nil || o.Envelope.From != "bounces@example.com" {
		t.Errorf("with RedirectSender: %+v %v", o.Envelope, err)
	}
	null := testDelivery(original)
	null.Sender = ""
	o, err = BuildRedirect(null, "carol@example.net", Policy{RedirectSender: "bounces@example.com"})
	if err != nil || o.Envelope.From != "" {
		t.Errorf("from <>: %+v %v, want <> kept (RFC 5228 4.2)", o.Envelope, err)
	}

	// A message without Message-ID gets one; LF line ends become CRLF.
	bare := "From: a@example.org\nSubject: x\n\nline\n"
	o, err = BuildRedirect(testDelivery(bare), "carol@example.net", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	m := parse(t, o.Message)
	if m.Header.Get("Message-ID") == "" {
		t.Errorf("no Message-ID added:\n%s", o.Message)
	}
	if body, _ := io.ReadAll(m.Body); string(body) != "line\r\n" {
		t.Errorf("body %q", body)
	}
}

func TestRedirectLoops(t *testing.T) {
	header := func(f string) string { return strings.Replace(original, "Subject:", f+"\r\nSubject:", 1) }
	many := strings.Repeat("Received: from a by b; Sat, 5 Dec 2026 10:00:00 +0000\r\n", DefaultMaxHops)
	for _, tc := range []struct {
		name string
		msg  string
		to   string
	}{
		{"to own address", original, "BOB@example.com"},
		{"redirected here before", header("X-Sieve-Redirected-From: <bob@example.com>"), "carol@example.net"},
		{"delivered here before", header("Delivered-To: bob@example.com"), "carol@example.net"},
		{"too many hops", many + original, "carol@example.net"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := BuildRedirect(testDelivery(tc.msg), tc.to, Policy{}); !errors.Is(err, ErrSuppressed) {
				t.Errorf("BuildRedirect: %v, want ErrSuppressed", err)
			}
		})
	}
	if _, err := BuildRedirect(testDelivery(original), "carol@example.net\r\nX: y", Policy{}); err == nil || errors.Is(err, ErrSuppressed) {
		t.Errorf("bad address: %v, want an address error", err)
	}
	// Another account's marks are no loop.
	if _, err := BuildRedirect(testDelivery(header("X-Sieve-Redirected-From: <dave@example.com>")), "carol@example.net", Policy{}); err != nil {
		t.Errorf("redirected by another account: %v", err)
	}
}

func TestBuildFromResult(t *testing.T) {
	var actions []sieve.Action
	for _, to := range []string{"r1@example.net", "r2@example.net", "r3@example.net", "r4@example.net", "r5@example.net"} {
		actions = append(actions, sieve.Action{Kind: sieve.ActionRedirect, Address: to})
	}
	actions = append(actions,
		sieve.Action{Kind: sieve.ActionKeep, Mailbox: "INBOX"},
		sieve.Action{Kind: sieve.ActionVacation, Vacation: &sieve.VacationReply{To: "alice@example.org", Subject: "Auto", Body: "away", Send: true}},
		sieve.Action{Kind: sieve.ActionVacation, Vacation: &sieve.VacationReply{To: "alice@example.org", Send: false, SuppressedBy: "already replied"}},
		sieve.Action{Kind: sieve.ActionEreject, Reason: "no"},
	)
	out, skipped := Build(testDelivery(original), actions, Policy{})
	var kinds []string
	for _, o := range out {
		kinds = append(kinds, string(o.Kind)+" "+o.Envelope.To[0])
	}
	want := "redirect r1@example.net,redirect r2@example.net,redirect r3@example.net,redirect r4@example.net,vacation alice@example.org"
	if strings.Join(kinds, ",") != want {
		t.Errorf("built %q, want %q", kinds, want)
	}
	if len(skipped) != 1 || skipped[0].Kind != sieve.ActionRedirect || !strings.Contains(skipped[0].Reason, "more than 4 redirects") {
		t.Errorf("skipped %+v, want the fifth redirect", skipped)
	}
}

// TestVacationThroughRelay sends a built reply through a real relay: the
// relay sees MAIL FROM:<> and the reply as built.
func TestVacationThroughRelay(t *testing.T) {
	relay := startRelay(t, "", relayOptions{})
	q := newQueue(t, testConfig(t, relay.addr, t.TempDir()))
	o, err := BuildVacation(testDelivery(original), &sieve.VacationReply{To: "alice@example.org", Subject: "Auto: lunch?", Body: "away", Send: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(context.Background(), o.Envelope, o.Message); err != nil {
		t.Fatal(err)
	}
	waitStats(t, q, "sent 1", func(s Stats) bool { return s.Sent == 1 })
	got := relay.messages()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages", len(got))
	}
	checkReceived(t, got[0], Envelope{From: "", To: []string{"alice@example.org"}}, string(o.Message))
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// TestEnqueueActions runs a Sieve result's actions through a real relay:
// a redirect keeps the sender, a vacation reply goes from <>, and a
// redirect back to the account sends nothing.
func TestEnqueueActions(t *testing.T) {
	relay := startRelay(t, "", relayOptions{})
	q := newQueue(t, testConfig(t, relay.addr, t.TempDir()))
	actions := []sieve.Action{
		{Kind: sieve.ActionRedirect, Address: "carol@example.net"},
		{Kind: sieve.ActionRedirect, Address: "bob@example.com"},
		{Kind: sieve.ActionVacation, Vacation: &sieve.VacationReply{To: "alice@example.org", Subject: "Auto: lunch?", Body: "away", Send: true}},
	}
	if err := q.EnqueueActions(context.Background(), testDelivery(original), actions, Policy{}); err != nil {
		t.Fatal(err)
	}
	waitStats(t, q, "sent 2", func(s Stats) bool { return s.Sent == 2 })
	got := relay.messages()
	if len(got) != 2 {
		t.Fatalf("relay got %d messages, want 2", len(got))
	}
	byTo := map[string]received{}
	for _, r := range got {
		byTo[r.to[0]] = r
	}
	if r, ok := byTo["carol@example.net"]; !ok || r.from != "alice@example.org" || !bytes.HasPrefix(r.data, []byte("X-Sieve-Redirected-From: <bob@example.com>\r\n")) {
		t.Errorf("redirect: %+v", r)
	}
	if r, ok := byTo["alice@example.org"]; !ok || r.from != "" || !bytes.Contains(r.data, []byte("Auto-Submitted: auto-replied\r\n")) {
		t.Errorf("vacation: %+v", r)
	}
}

func TestLongSubjectAndBody(t *testing.T) {
	subject := "Auto: " + strings.Repeat("déjeuner très long ", 40)
	body := strings.Repeat("x", 2000)
	o, err := BuildVacation(testDelivery(original), &sieve.VacationReply{To: "alice@example.org", Subject: subject, Body: body, Send: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(o.Message), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	m := parse(t, o.Message)
	var dec mime.WordDecoder
	got, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil || got != truncateRunes(subject, maxSubject) {
		t.Errorf("Subject decodes to %q %v", got, err)
	}
	e, err := gomessage.Read(bytes.NewReader(o.Message))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(e.Body); string(b) != body+"\r\n" {
		t.Errorf("body of %d bytes, want %d", len(b), len(body)+2)
	}
}
