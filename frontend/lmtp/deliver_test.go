package lmtp_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestLHLO checks the extensions announced (RFC 2033 4.1) and that HELO and EHLO are
// refused on an LMTP port.
func TestLHLO(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv)
	c.cmd("HELO client.test", "500 5.5.1 ")
	c.cmd("EHLO client.test", "500 5.5.1 ")
	got := c.cmd("LHLO client.test", "250 ")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING", "BINARYMIME", "SMTPUTF8", "SIZE 1048576"} {
		if !regexp.MustCompile(`(?m)^250[- ]` + ext + `$`).MatchString(got) {
			t.Errorf("LHLO reply lacks %s:\n%s", ext, got)
		}
	}
}

// TestDeliverOne delivers a message to one recipient and reads it back over IMAP: the
// trace fields come first, then the message as sent.
func TestDeliverOne(t *testing.T) {
	srv := startServer(t, nil)
	c := greeted(t, srv)
	msg := message("hello", "Body line\n.leading dot\n")
	c.deliver("alice@example.org", []string{"demo@example.com"}, msg)

	ic, err := imapclient.DialInsecure(srv.IMAPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := ic.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v, %d messages", err, len(msgs))
	}
	var body string
	for _, b := range msgs[0].BodySection {
		body = string(b.Bytes)
	}
	trace := regexp.MustCompile(`^Return-Path: <alice@example\.org>\r\n` +
		`Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n` +
		`\tby mx\.test \(Strata\) with LMTP id [0-9a-f]+\r\n` +
		`\tfor <demo@example\.com>; [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [-+]\d{4}\r\n` +
		`Delivered-To: demo@example\.com\r\n`)
	loc := trace.FindStringIndex(body)
	if loc == nil {
		t.Fatalf("stored message does not start with the trace fields:\n%s", body)
	}
	if rest := body[loc[1]:]; rest != msg {
		t.Fatalf("stored message after the trace fields:\n%q\nwant\n%q", rest, msg)
	}
}

// TestMultipleRecipients checks one reply per recipient in RCPT order (RFC 2033 4.2), a
// refused RCPT among accepted ones, and one stored body for all recipients of a tenant,
// without Delivered-To.
func TestMultipleRecipients(t *testing.T) {
	srv := startServer(t, nil)
	addAccount(t, srv, "bob@example.com")
	c := greeted(t, srv)
	c.cmd("MAIL FROM:<alice@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	c.cmd("RCPT TO:<nobody@example.com>", "550 5.1.1 ")
	c.cmd("RCPT TO:<someone@elsewhere.test>", "550 5.1.1 ")
	c.cmd("RCPT TO:<bob@example.com>", "250 ")
	replies := c.data(message("to both", "hi\n"), 2)
	if !strings.HasPrefix(replies[0], "250 2.0.0 <demo@example.com>") || !strings.HasPrefix(replies[1], "250 2.0.0 <bob@example.com>") {
		t.Fatalf("replies %q", replies)
	}
	demo := messages(t, srv, "demo@example.com", "INBOX")
	bob := messages(t, srv, "bob@example.com", "INBOX")
	if len(demo) != 1 || len(bob) != 1 {
		t.Fatalf("demo has %d messages, bob %d; want 1 each", len(demo), len(bob))
	}
	if demo[0].GetBlobKey() != bob[0].GetBlobKey() {
		t.Errorf("two bodies stored: %s and %s", demo[0].GetBlobKey(), bob[0].GetBlobKey())
	}
	h := header(demo[0])
	if strings.Contains(h, "Delivered-To") || strings.Contains(h, "\tfor <") {
		t.Errorf("a message to two recipients names one:\n%s", h)
	}
	if !strings.HasPrefix(h, "Return-Path: <alice@example.org>\r\nReceived: from client.test") {
		t.Errorf("header:\n%s", h)
	}
}

// TestRecipientRefusals checks the replies to RCPT for accounts that cannot take mail.
func TestRecipientRefusals(t *testing.T) {
	srv := startServer(t, nil)
	addAccount(t, srv, "off@example.com")
	admin(t, func(ctx context.Context) (*metadatapb.Account, error) {
		return srv.Metadata().SetAccountDisabled(ctx, &metadatapb.SetAccountDisabledRequest{RequestId: embedded.NewRequestID(), Email: "off@example.com", Disabled: true})
	})
	addAccount(t, srv, "full@example.com")
	one := uint64(1)
	admin(t, func(ctx context.Context) (*metadatapb.QuotaRoot, error) {
		return srv.Metadata().SetQuota(ctx, &metadatapb.SetQuotaRequest{RequestId: embedded.NewRequestID(), Account: "full@example.com", Limits: &metadatapb.QuotaLimits{Messages: &one}})
	})
	c := greeted(t, srv)
	c.deliver("a@example.org", []string{"full@example.com"}, message("first", "fills the quota\n"))

	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<off@example.com>", "550 5.1.1 ")          // disabled
	c.cmd("RCPT TO:<full@example.com>", "452 4.2.2 ")         // RFC 3463 X.2.2, temporary
	c.cmd("RCPT TO:<no-at-sign>", "501 5.5.2 ")               // RFC 5321 4.1.2 Forward-path
	c.cmd("RCPT TO:<dèmo@example.com>", "553 5.6.7 ")         // RFC 6531 3.5: no SMTPUTF8
	c.cmd("RCPT TO:<demo@example.com> FOO=BAR", "500 5.5.4 ") // unknown parameter
	c.cmd("DATA", "502 5.5.1 ")                               // no recipient accepted
	c.cmd("RSET", "250 ")

	setDelivery(t, srv, &metadatapb.DeliverySettings{QuotaPermanent: true})
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<full@example.com>", "552 5.2.2 ") // the tenant makes it permanent
	if n := len(messages(t, srv, "full@example.com", "INBOX")); n != 1 {
		t.Fatalf("full@example.com has %d messages, want 1", n)
	}
}

// TestSizeLimit checks 552 5.3.4 for a SIZE declared too large (RFC 1870 6) and for a
// message that is larger than it said, and that nothing of it is stored.
func TestSizeLimit(t *testing.T) {
	srv := startServer(t, func(cfg *embedded.Config) { cfg.MaxMessageSize = 4096 })
	c := greeted(t, srv)
	c.cmd("MAIL FROM:<a@example.org> SIZE=5000", "552 5.3.4 ")
	c.cmd("MAIL FROM:<a@example.org> SIZE=100", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	replies := c.data(message("big", strings.Repeat("0123456789abcdef\n", 300)), 1)
	if !strings.HasPrefix(replies[0], "552 5.3.4 ") {
		t.Fatalf("reply %q, want 552 5.3.4", replies[0])
	}
	if n := len(messages(t, srv, "demo@example.com", "INBOX")); n != 0 {
		t.Fatalf("INBOX has %d messages after a refused one", n)
	}
	// The session goes on.
	c.deliver("a@example.org", []string{"demo@example.com"}, message("small", "fits\n"))
}

// TestEightBitData checks that 8-bit data in a message declared BODY=7BIT (RFC 6152 3) and
// NUL bytes without BODY=BINARYMIME (RFC 3030) are refused with 554 5.6.1.
func TestEightBitData(t *testing.T) {
	srv := startServer(t, nil)
	c := greeted(t, srv)
	latin := message("caf\xe9", "na\xefve\n")
	c.cmd("MAIL FROM:<a@example.org> BODY=7BIT", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	if r := c.data(latin, 1); !strings.HasPrefix(r[0], "554 5.6.1 ") {
		t.Fatalf("8-bit with BODY=7BIT: %q", r[0])
	}
	c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	if r := c.data(message("nul", "a\x00b\n"), 2); !strings.HasPrefix(r[0], "554 5.6.1 ") || !strings.HasPrefix(r[1], "554 5.6.1 ") {
		t.Fatalf("NUL without BINARYMIME: %q", r)
	}
	if n := len(messages(t, srv, "demo@example.com", "INBOX")); n != 0 {
		t.Fatalf("INBOX has %d messages after refused ones", n)
	}
	c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	if r := c.data(latin, 1); !strings.HasPrefix(r[0], "250 2.0.0 ") {
		t.Fatalf("8-bit with BODY=8BITMIME: %q", r[0])
	}
	// Undeclared 8-bit data is taken as MTAs relay it.
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	if r := c.data(message("caf\xe9 2", "na\xefve\n"), 1); !strings.HasPrefix(r[0], "250 2.0.0 ") {
		t.Fatalf("8-bit without a BODY parameter: %q", r[0])
	}
	c.cmd("MAIL FROM:<ålice@example.org> SMTPUTF8", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	if r := c.data(message("utf8 ✓", "ok\n"), 1); !strings.HasPrefix(r[0], "250 2.0.0 ") {
		t.Fatalf("UTF-8 with SMTPUTF8: %q", r[0])
	}
	msgs := messages(t, srv, "demo@example.com", "INBOX")
	if len(msgs) != 3 || !strings.Contains(header(msgs[2]), "with UTF8LMTP id") {
		t.Fatalf("%d messages; the SMTPUTF8 one's header:\n%s", len(msgs), header(msgs[len(msgs)-1]))
	}
}

// TestChunking delivers with BDAT (RFC 3030), in two chunks, with BINARYMIME and a NUL
// byte, which is stored as given.
func TestChunking(t *testing.T) {
	srv := startServer(t, nil)
	c := greeted(t, srv)
	c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	msg := message("binary", "a\x00b\r\n")
	c.write("BDAT 10\r\n" + msg[:10])
	c.expect("250 ")
	c.write("BDAT " + strconv.Itoa(len(msg)-10) + " LAST\r\n" + msg[10:])
	c.expect("250 2.0.0 <demo@example.com>")
	msgs := messages(t, srv, "demo@example.com", "INBOX")
	if len(msgs) != 1 || msgs[0].GetSize() <= uint64(len(msg)) {
		t.Fatalf("%d messages stored", len(msgs))
	}
	c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	c.cmd("DATA", "502 5.5.1 ") // RFC 3030 3: BINARYMIME needs BDAT
}

// TestMalformedCommands checks that bad commands get a 5xx with an enhanced code and leave
// the session usable.
func TestMalformedCommands(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv)
	c.cmd("MAIL FROM:<a@example.org>", "502 5.5.1 ") // before LHLO
	c.cmd("LHLO", "501 5.5.2 ")
	c.cmd("LHLO client.test", "250 ")
	for _, bad := range []struct{ line, reply string }{
		{"FROB", "500 5.5.2 "},
		{"RCPT TO:<demo@example.com>", "502 5.5.1 "}, // before MAIL
		{"MAIL TO:<a@example.org>", "501 5.5.2 "},
		{"MAIL FROM:<a@example.org> SIZE=abc", "501 5.5.4 "},
		{"MAIL FROM:<a@example.org> BODY=9BIT", "501 5.5.4 "},
		{"DATA", "502 5.5.1 "},
		{"BDAT x", "501 5.5.4 "},
		{"VRFY demo", "252 2.5.0 "},
		{"EXPN list", "502 5.5.1 "},
	} {
		c.cmd(bad.line, bad.reply)
	}
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	replies := c.data(message("after errors", "fine\n"), 1)
	if !strings.HasPrefix(replies[0], "250 2.0.0 ") {
		t.Fatalf("reply %q", replies[0])
	}
	c.write(strings.Repeat("x", 3000) + "\r\n")
	c.expect("500 5.4.0 ") // a line past the limit ends the connection
}

// TestPipelining sends a whole transaction in one write (RFC 2920) and reads the replies
// in order.
func TestPipelining(t *testing.T) {
	srv := startServer(t, nil)
	addAccount(t, srv, "bob@example.com")
	c := greeted(t, srv)
	c.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@example.com>\r\nRCPT TO:<ghost@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
	for _, want := range []string{"250 ", "250 ", "550 5.1.1 ", "250 ", "354 "} {
		c.expect(want)
	}
	c.write(message("pipelined", "x\n") + ".\r\nNOOP\r\n")
	c.expect("250 2.0.0 <demo@example.com>")
	c.expect("250 2.0.0 <bob@example.com>")
	c.expect("250 ")
}

// TestRetryDeduplicated delivers the same message twice, as an MTA does when the first
// reply was lost: the second is answered 250 and stores nothing (the Append dedup key); a
// different recipient of the same message, or another message, is stored.
func TestRetryDeduplicated(t *testing.T) {
	srv := startServer(t, nil)
	addAccount(t, srv, "bob@example.com")
	msg := message("retried", "once\n")
	for range 2 {
		greeted(t, srv).deliver("a@example.org", []string{"demo@example.com"}, msg)
	}
	if n := len(messages(t, srv, "demo@example.com", "INBOX")); n != 1 {
		t.Fatalf("INBOX has %d messages after a retry, want 1", n)
	}
	c := greeted(t, srv)
	c.deliver("a@example.org", []string{"demo@example.com", "bob@example.com"}, msg) // trace fields differ: dedup keys do not
	c.deliver("other@example.org", []string{"demo@example.com"}, msg)
	c.deliver("a@example.org", []string{"demo@example.com"}, message("retried", "twice\n"))
	if n := len(messages(t, srv, "demo@example.com", "INBOX")); n != 3 {
		t.Fatalf("INBOX has %d messages, want 3", n)
	}
	if n := len(messages(t, srv, "bob@example.com", "INBOX")); n != 1 {
		t.Fatalf("bob's INBOX has %d messages, want 1", n)
	}
}

// TestTenRecipientsOneFailsAtCommit delivers to ten accounts, whose Appends go out at once,
// while one account's quota filled between RCPT and DATA: that recipient alone is answered
// 452 4.2.2 (RFC 3463 X.2.2) and stores nothing, the nine others 250 each in RCPT order
// (RFC 2033 4.2). The MTA's retry of the whole transaction then stores the tenth copy and
// dedups the nine: every account holds the message exactly once.
func TestTenRecipientsOneFailsAtCommit(t *testing.T) {
	srv := startServer(t, nil)
	var to []string
	for i := range 10 {
		to = append(to, fmt.Sprintf("r%d@example.com", i))
		addAccount(t, srv, to[i])
	}
	const full = 6
	c := greeted(t, srv)
	c.deliver("a@example.org", []string{to[full]}, message("before", "takes the quota\n"))
	setMessageQuota := func(limit uint64) {
		admin(t, func(ctx context.Context) (*metadatapb.QuotaRoot, error) {
			return srv.Metadata().SetQuota(ctx, &metadatapb.SetQuotaRequest{RequestId: embedded.NewRequestID(), Account: to[full], Limits: &metadatapb.QuotaLimits{Messages: &limit}})
		})
	}
	msg := message("to ten", "one body, ten recipients\n")
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	for _, rcpt := range to {
		c.cmd("RCPT TO:<"+rcpt+">", "250 ")
	}
	setMessageQuota(1)
	for i, r := range c.data(msg, len(to)) {
		want := "250 2.0.0 <" + to[i] + ">"
		if i == full {
			want = "452 4.2.2 "
		}
		if !strings.HasPrefix(r, want) {
			t.Errorf("reply %d (%s) = %q, want %q...", i, to[i], r, want)
		}
	}
	counts := func() []int {
		var n []int
		for _, rcpt := range to {
			n = append(n, len(messages(t, srv, rcpt, "INBOX")))
		}
		return n
	}
	want := []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	if got := counts(); !slices.Equal(got, want) {
		t.Fatalf("messages per account after the transaction = %v, want %v", got, want)
	}
	setMessageQuota(10)
	c.deliver("a@example.org", to, msg)
	want[full] = 2
	if got := counts(); !slices.Equal(got, want) {
		t.Fatalf("messages per account after the retry = %v, want %v", got, want)
	}
}

// TestAliases checks that an alias delivers to each of its accounts, one body for all, and
// that the domain's catch-all takes addresses nothing else matches.
func TestAliases(t *testing.T) {
	srv := startServer(t, nil)
	addAccount(t, srv, "bob@example.com")
	for _, alias := range []*metadatapb.AddAliasRequest{
		{Address: "team@example.com", Targets: []string{"demo@example.com", "bob@example.com"}},
		{Address: "@example.com", Targets: []string{"bob@example.com"}},
	} {
		alias.RequestId = embedded.NewRequestID()
		admin(t, func(ctx context.Context) (*metadatapb.Alias, error) { return srv.Metadata().AddAlias(ctx, alias) })
	}
	c := greeted(t, srv)
	c.deliver("a@example.org", []string{"team@example.com"}, message("to the team", "x\n"))
	c.deliver("a@example.org", []string{"anything@example.com"}, message("to anyone", "x\n"))
	demo := messages(t, srv, "demo@example.com", "INBOX")
	bob := messages(t, srv, "bob@example.com", "INBOX")
	if len(demo) != 1 || len(bob) != 2 {
		t.Fatalf("demo has %d messages, bob %d; want 1 and 2", len(demo), len(bob))
	}
	if demo[0].GetBlobKey() != bob[0].GetBlobKey() || !strings.Contains(header(bob[0]), "Delivered-To: team@example.com\r\n") {
		t.Fatalf("alias delivery: keys %s, %s; header:\n%s", demo[0].GetBlobKey(), bob[0].GetBlobKey(), header(bob[0]))
	}
	if !strings.Contains(header(bob[1]), "Delivered-To: anything@example.com\r\n") {
		t.Fatalf("catch-all delivery header:\n%s", header(bob[1]))
	}
}

// TestQuotaSize checks that a SIZE declared at MAIL that does not fit the storage quota is
// refused at RCPT (RFC 1870 6), and one that fits is accepted.
func TestQuotaSize(t *testing.T) {
	srv := startServer(t, nil)
	limit := uint64(10000)
	admin(t, func(ctx context.Context) (*metadatapb.QuotaRoot, error) {
		return srv.Metadata().SetQuota(ctx, &metadatapb.SetQuotaRequest{RequestId: embedded.NewRequestID(), Account: "demo@example.com", Limits: &metadatapb.QuotaLimits{StorageBytes: &limit}})
	})
	c := greeted(t, srv)
	c.cmd("MAIL FROM:<a@example.org> SIZE=20000", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "452 4.2.2 ")
	c.cmd("RSET", "250 ")
	c.cmd("MAIL FROM:<a@example.org> SIZE=2000", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
}

// TestShutdown checks that Shutdown tells idle LMTP connections 421 (RFC 5321 3.8) and
// closes them instead of waiting for them, and that a new connection is refused.
func TestShutdown(t *testing.T) {
	srv := startServer(t, nil)
	c := greeted(t, srv)
	c.cmd("NOOP", "250 ")
	if err := srv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if line, err := c.r.ReadLine(); err != nil || line != "421 4.3.0 Shutting down, try again later" {
		t.Fatalf("idle connection at shutdown: %q, %v; want 421 4.3.0", line, err)
	}
	if line, err := c.r.ReadLine(); err == nil {
		t.Fatalf("idle connection still open after shutdown, read %q", line)
	}
	if conn, err := net.Dial("tcp", srv.LMTPAddr()); err == nil {
		conn.Close()
		t.Fatal("LMTP accepts connections after shutdown")
	}
}

// TestShutdownDuringTransaction checks that a transaction in progress when the shutdown
// starts is completed (its recipients answered), and the connection is then told 421 and
// closed instead of taking another transaction (RFC 5321 3.8).
func TestShutdownDuringTransaction(t *testing.T) {
	srv := startServer(t, nil)
	c := greeted(t, srv)
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	shutdown := embeddedtest.ShutdownStarted(t, srv, srv.LMTPAddr())
	if replies := c.data(message("across a shutdown", "x\n"), 1); !strings.HasPrefix(replies[0], "250 ") {
		t.Fatalf("DATA across the shutdown: %q", replies)
	}
	if line, err := c.r.ReadLine(); err != nil || line != "421 4.3.0 Shutting down, try again later" {
		t.Fatalf("after the transaction: %q, %v; want 421 4.3.0", line, err)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
