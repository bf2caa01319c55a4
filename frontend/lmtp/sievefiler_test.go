package lmtp_test

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/outbound"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/spam"
)

// activate stores a Sieve script of account and makes it the active one.
func activate(t testing.TB, srv *embedded.Server, account, name, content string) {
	t.Helper()
	admin(t, func(ctx context.Context) (*metadatapb.SieveScript, error) {
		return srv.Metadata().PutSieveScript(ctx, &metadatapb.PutSieveScriptRequest{RequestId: embedded.NewRequestID(), Account: account, Name: name, Content: []byte(content)})
	})
	admin(t, func(ctx context.Context) (*metadatapb.SetActiveSieveScriptResponse, error) {
		return srv.Metadata().SetActiveSieveScript(ctx, &metadatapb.SetActiveSieveScriptRequest{RequestId: embedded.NewRequestID(), Account: account, Name: name})
	})
}

// sieveDemo starts a server (configured by edit, which may be nil) whose demo account has
// the mailboxes and the active script "main", and returns it with a greeted LMTP client.
func sieveDemo(t testing.TB, edit func(*embedded.Config), script string, mailboxes ...string) (*embedded.Server, *client) {
	t.Helper()
	srv := startServer(t, edit)
	for _, name := range mailboxes {
		addMailbox(t, srv, embedded.DemoAccount, name, "")
	}
	activate(t, srv, embedded.DemoAccount, "main", script)
	return srv, greeted(t, srv)
}

// fromAlice delivers message(subject, body, extraHeader...) from alice@example.org to the
// demo account.
func (c *client) fromAlice(subject, body string, extraHeader ...string) {
	c.deliver("alice@example.org", []string{embedded.DemoAccount}, message(subject, body, extraHeader...))
}

// putGlobal stores a global script of the demo tenant in a phase ("before", "after").
func putGlobal(t testing.TB, srv *embedded.Server, name, phase, content string) {
	t.Helper()
	admin(t, func(ctx context.Context) (*metadatapb.SieveScript, error) {
		return srv.Metadata().PutSieveScript(ctx, &metadatapb.PutSieveScriptRequest{RequestId: embedded.NewRequestID(), Tenant: embedded.DemoTenant, Name: name, Phase: phase, Content: []byte(content)})
	})
}

// holdsOnly checks that a mailbox of the demo account holds one message, with that subject.
func holdsOnly(t testing.TB, srv *embedded.Server, mailbox, subject string) {
	t.Helper()
	recs := messages(t, srv, embedded.DemoAccount, mailbox)
	if len(recs) != 1 || !strings.Contains(header(recs[0]), "Subject: "+subject+"\r\n") {
		t.Errorf("%s holds %d messages, want only %q", mailbox, len(recs), subject)
	}
}

// count is the number of messages in a mailbox of the demo account.
func count(t testing.TB, srv *embedded.Server, mailbox string) int {
	t.Helper()
	return len(messages(t, srv, embedded.DemoAccount, mailbox))
}

// TestSieveFileintoFlags files by a header into an existing mailbox with flags
// (RFC 5228 4.1, RFC 5232 5), and others by the implicit keep into INBOX.
func TestSieveFileintoFlags(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require ["fileinto", "imap4flags"];
if header :contains "List-Id" "golang" { fileinto :flags ["\\Flagged", "$list"] "Lists"; }
`, "Lists")
	c.fromAlice("list mail", "hi\n", "List-Id: <golang-nuts.googlegroups.com>")
	c.fromAlice("personal", "hi\n")

	lists := messages(t, srv, embedded.DemoAccount, "Lists")
	if len(lists) != 1 || !strings.Contains(header(lists[0]), "Subject: list mail") {
		t.Fatalf("Lists holds %d messages, want the list mail", len(lists))
	}
	flags := lists[0].GetFlags()
	if !slices.Contains(flags, `\Flagged`) || !slices.Contains(flags, "$list") {
		t.Errorf("flags %q, want \\Flagged and $list", flags)
	}
	holdsOnly(t, srv, "INBOX", "personal")
}

// TestSieveFileintoCreate creates a missing mailbox with :create (RFC 5490 3.2); without
// it a missing mailbox falls back to INBOX.
func TestSieveFileintoCreate(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require ["fileinto", "mailbox"];
if header :is "Subject" "create" { fileinto :create "Archive/2026"; }
else { fileinto "Missing"; }
`)
	c.fromAlice("create", "x\n")
	c.fromAlice("other", "x\n")
	if n := count(t, srv, "Archive/2026"); n != 1 {
		t.Errorf("Archive/2026 holds %d messages, want 1", n)
	}
	if n := count(t, srv, "INBOX"); n != 1 {
		t.Errorf("INBOX holds %d messages, want 1 (fileinto a missing mailbox)", n)
	}
}

// TestSieveDiscard stores nothing and answers 250 (RFC 5228 4.4).
func TestSieveDiscard(t *testing.T) {
	srv, c := sieveDemo(t, nil, `if header :contains "Subject" "junk" { discard; }`)
	c.fromAlice("junk offer", "x\n")
	c.fromAlice("fine", "x\n")
	holdsOnly(t, srv, "INBOX", "fine")
}

// TestSieveReject refuses the recipient at protocol level with 550 5.7.1 and the reason
// (RFC 5429 2.1), while another recipient of the transaction gets the message.
func TestSieveReject(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require "reject";
reject "I do not want this";
`)
	addAccount(t, srv, "bob@example.com")
	c.cmd("MAIL FROM:<alice@example.org>", "250 ")
	c.cmd("RCPT TO:<"+embedded.DemoAccount+">", "250 ")
	c.cmd("RCPT TO:<bob@example.com>", "250 ")
	replies := c.data(message("unwanted", "x\n"), 2)
	if !strings.HasPrefix(replies[0], "550 5.7.1 ") || !strings.Contains(replies[0], "I do not want this") {
		t.Errorf("reply for the rejecting account: %q, want 550 5.7.1 with the reason", replies[0])
	}
	if !strings.HasPrefix(replies[1], "250 ") {
		t.Errorf("reply for bob: %q, want 250", replies[1])
	}
	if n := count(t, srv, "INBOX"); n != 0 {
		t.Errorf("rejecting account's INBOX holds %d messages", n)
	}
	if n := len(messages(t, srv, "bob@example.com", "INBOX")); n != 1 {
		t.Errorf("bob's INBOX holds %d messages, want 1", n)
	}
}

// TestSieveBeforeScript runs the tenant's before script ahead of the user's: filing the
// message away ends the chain; keeping it lets the user's script run.
func TestSieveBeforeScript(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require "fileinto"; fileinto "User";`, "Quarantine", "User")
	putGlobal(t, srv, "00-site", "before", `require "fileinto";
if header :contains "Subject" "virus" { fileinto "Quarantine"; }
`)
	c.fromAlice("virus inside", "x\n")
	c.fromAlice("hello", "x\n")
	if n := count(t, srv, "Quarantine"); n != 1 {
		t.Errorf("Quarantine holds %d messages, want 1", n)
	}
	holdsOnly(t, srv, "User", "hello")
}

// TestSieveRuntimeLimit keeps the message in INBOX when the script fails at run time
// (RFC 5228 2.10.6): here more redirects than the limit.
func TestSieveRuntimeLimit(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require ["fileinto", "copy"];
fileinto "Never";
redirect :copy "a@example.net"; redirect :copy "b@example.net"; redirect :copy "c@example.net";
redirect :copy "d@example.net"; redirect :copy "e@example.net"; redirect :copy "f@example.net";
`, "Never")
	c.fromAlice("limit", "x\n")
	if n := count(t, srv, "INBOX"); n != 1 {
		t.Errorf("INBOX holds %d messages, want the implicit keep", n)
	}
	if n := count(t, srv, "Never"); n != 0 {
		t.Errorf("Never holds %d messages: the failed script's fileinto was carried out", n)
	}
}

// TestSieveSpamImplicitKeep: a script that leaves the implicit keep in effect files spam
// by the tenant's spam policy into \Junk, as without a script.
func TestSieveSpamImplicitKeep(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require "imap4flags"; addflag "$seen-by-sieve";`)
	c.fromAlice("buy now", "x\n", "X-Spam-Flag: YES")
	// The demo account's Junk has the \Junk special use.
	spam := messages(t, srv, embedded.DemoAccount, "Junk")
	if len(spam) != 1 {
		t.Fatalf("Junk holds %d messages, want 1", len(spam))
	}
	if !slices.Contains(spam[0].GetFlags(), "$seen-by-sieve") {
		t.Errorf("flags %q, want the implicit keep's $seen-by-sieve", spam[0].GetFlags())
	}
	if n := count(t, srv, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d messages", n)
	}
}

// smtpRelay is a real SMTP server (go-smtp) the outbound queue relays to.
type smtpRelay struct {
	mu  sync.Mutex
	got []relayed
}

type relayed struct {
	from string
	to   []string
	data string
}

func startSMTPRelay(t *testing.T) (*smtpRelay, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &smtpRelay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "relay.test"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r, ln.Addr().String()
}

func (r *smtpRelay) messages() []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

type relaySession struct {
	r    *smtpRelay
	from string
	to   []string
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.got = append(s.r.got, relayed{from: s.from, to: s.to, data: string(b)})
	s.r.mu.Unlock()
	return nil
}
func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

// TestSieveVacation queues a vacation response to a real SMTP relay (RFC 5230 4, 5), keeps
// the message, and answers the same sender only once in the period (RFC 5230 4.2).
func TestSieveVacation(t *testing.T) {
	relay, addr := startSMTPRelay(t)
	srv, c := sieveDemo(t, func(cfg *embedded.Config) {
		cfg.Outbound = outbound.Config{Relay: addr, TLS: outbound.TLSNone, HeloName: "mx.test"}
	}, `require "vacation";
vacation :days 7 :subject "Away" "I am away until Monday.";
`)
	c.fromAlice("are you there", "x\n")
	testwait.Until(t, 30*time.Second, func() error {
		if len(relay.messages()) == 0 {
			return io.ErrNoProgress
		}
		return nil
	})
	got := relay.messages()[0]
	if got.from != "" || !slices.Equal(got.to, []string{"alice@example.org"}) {
		t.Errorf("vacation envelope from %q to %q, want <> to alice@example.org (RFC 5230 5.1)", got.from, got.to)
	}
	if !strings.Contains(got.data, "Subject: Away") || !strings.Contains(got.data, "I am away until Monday.") {
		t.Errorf("vacation response:\n%s", got.data)
	}
	if n := count(t, srv, "INBOX"); n != 1 {
		t.Errorf("INBOX holds %d messages, want the kept message", n)
	}
	// The mark was recorded after the enqueue: a second message from the same sender
	// within the period gets no response, while another sender's does. The queue sends
	// in order, so once bob's response is there alice's second would be too.
	c.fromAlice("still there", "x\n")
	c.deliver("bob@example.org", []string{embedded.DemoAccount}, message("hi from bob", "x\n"))
	testwait.Until(t, 30*time.Second, func() error {
		for _, m := range relay.messages() {
			if slices.Equal(m.to, []string{"bob@example.org"}) {
				return nil
			}
		}
		return io.ErrNoProgress
	})
	toAlice := 0
	for _, m := range relay.messages() {
		if slices.Equal(m.to, []string{"alice@example.org"}) {
			toAlice++
		}
	}
	if toAlice != 1 {
		t.Errorf("alice got %d vacation responses, want 1 (RFC 5230 4.2)", toAlice)
	}
	if n := count(t, srv, "INBOX"); n != 3 {
		t.Errorf("INBOX holds %d messages, want 3", n)
	}
}

// TestSieveSpamtestHeaders reads the MTA's verdict fields as the spamtest score (RFC 5235
// 3.2): 3.0 of rspamd's 15 is low, 15 and above is 10.
func TestSieveSpamtestHeaders(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "9" { fileinto "Suspect"; }
`, "Suspect")
	c.fromAlice("low", "x\n", "X-Spamd-Result: default: False [3.00 / 15.00]")
	c.fromAlice("high", "x\n", "X-Spamd-Result: default: False [16.00 / 15.00]")
	holdsOnly(t, srv, "Suspect", "high")
	if n := count(t, srv, "INBOX"); n != 1 {
		t.Errorf("INBOX holds %d messages, want 1", n)
	}
}

// TestSieveRspamdFailClosed refuses the whole transaction with 451 4.7.1 when rspamd
// (here a port nothing listens on) gives no verdict and the site fails closed.
func TestSieveRspamdFailClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	srv, c := sieveDemo(t, func(cfg *embedded.Config) {
		cfg.Rspamd = spam.Config{URL: "http://" + dead, FailClosed: true}
	}, `keep;`)
	addAccount(t, srv, "bob@example.com")
	c.cmd("MAIL FROM:<alice@example.org>", "250 ")
	c.cmd("RCPT TO:<"+embedded.DemoAccount+">", "250 ")
	c.cmd("RCPT TO:<bob@example.com>", "250 ")
	for i, r := range c.data(message("unscanned", "x\n"), 2) {
		if !strings.HasPrefix(r, "451 4.7.1 ") {
			t.Errorf("reply %d: %q, want 451 4.7.1", i, r)
		}
	}
	if n := count(t, srv, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d messages", n)
	}
}

// TestSieveRedirectWithoutRelay: with no outbound relay configured a redirect is dropped
// and logged, and delivery still succeeds; the redirect canceled the implicit keep
// (RFC 5228 4.2), so nothing is stored, and a :copy keeps it.
func TestSieveRedirectWithoutRelay(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require "copy";
if header :is "Subject" "copy" { redirect :copy "other@example.net"; }
else { redirect "other@example.net"; }
`)
	c.fromAlice("away", "x\n")
	c.fromAlice("copy", "x\n")
	holdsOnly(t, srv, "INBOX", "copy")
}

// TestSieveSpecialUse files into the mailbox with the special use when there is one (RFC
// 8579 4), here the demo account's Junk, whatever the name given.
func TestSieveSpecialUse(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require ["fileinto", "special-use"];
fileinto :specialuse "\\Junk" "Spam";
`)
	c.fromAlice("special", "x\n")
	if n := count(t, srv, "Junk"); n != 1 {
		t.Errorf("Junk holds %d messages, want 1", n)
	}
	if n := count(t, srv, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d messages", n)
	}
}

// TestSieveDuplicate discards a second message with the same Message-ID (RFC 7352 3): the
// mark of the first was recorded once it was stored.
func TestSieveDuplicate(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require "duplicate";
if duplicate { discard; }
`)
	c.fromAlice("same id", "first\n")
	c.fromAlice("same id", "second\n")
	c.fromAlice("other id", "third\n")
	if n := count(t, srv, "INBOX"); n != 2 {
		t.Errorf("INBOX holds %d messages, want 2 (the duplicate discarded)", n)
	}
}

// TestSieveScriptsOfManyRecipients delivers one message to three accounts, two with scripts
// of their own, whose scripts are looked up at once (SieveFiler.Prepare): each is filed by
// its own. A script activated after that runs for the next message.
func TestSieveScriptsOfManyRecipients(t *testing.T) {
	srv := startServer(t, nil)
	for _, account := range []string{"bob@example.com", "carol@example.com"} {
		addAccount(t, srv, account)
	}
	addMailbox(t, srv, embedded.DemoAccount, "Filed", "")
	addMailbox(t, srv, "carol@example.com", "Filed", "")
	activate(t, srv, embedded.DemoAccount, "file", `require "fileinto"; fileinto "Filed";`)
	activate(t, srv, "bob@example.com", "drop", `discard;`)
	to := []string{embedded.DemoAccount, "bob@example.com", "carol@example.com"}
	c := greeted(t, srv)
	c.deliver("alice@example.org", to, message("first", "hi\n"))
	activate(t, srv, embedded.DemoAccount, "keep", `keep;`)
	activate(t, srv, "carol@example.com", "file", `require "fileinto"; fileinto "Filed";`)
	c.deliver("alice@example.org", to, message("second", "hi\n"))

	for _, want := range []struct {
		account, mailbox string
		subjects         []string
	}{
		{embedded.DemoAccount, "Filed", []string{"first"}},
		{embedded.DemoAccount, "INBOX", []string{"second"}},
		{"bob@example.com", "INBOX", nil},
		{"carol@example.com", "INBOX", []string{"first"}},
		{"carol@example.com", "Filed", []string{"second"}},
	} {
		var got []string
		for _, rec := range messages(t, srv, want.account, want.mailbox) {
			for _, subject := range []string{"first", "second"} {
				if strings.Contains(header(rec), "Subject: "+subject+"\r\n") {
					got = append(got, subject)
				}
			}
		}
		if !slices.Equal(got, want.subjects) {
			t.Errorf("%s %s holds %q, want %q", want.account, want.mailbox, got, want.subjects)
		}
	}
}

// TestSieveEditheader stores the message as the recipient's script edited it (RFC 5293 4,
// 5): the added field first (and one last with :last), the deleted one gone, for that
// account alone; another recipient of the same transaction gets the message as received,
// from a body of its own.
func TestSieveEditheader(t *testing.T) {
	srv, c := sieveDemo(t, nil, `require ["editheader", "fileinto"];
addheader "X-Sieve-Tag" "work";
addheader :last "X-Sieve-Last" "end";
deleteheader :index 2 "X-Remove";
fileinto "INBOX";
`)
	addAccount(t, srv, "bob@example.com")
	msg := message("edited", "body stays\n", "X-Remove: one", "X-Remove: two", "X-Remove: three")
	c.deliver("alice@example.org", []string{embedded.DemoAccount, "bob@example.com"}, msg)

	demo := messages(t, srv, embedded.DemoAccount, "INBOX")
	bob := messages(t, srv, "bob@example.com", "INBOX")
	if len(demo) != 1 || len(bob) != 1 {
		t.Fatalf("demo holds %d messages and bob %d, want 1 each", len(demo), len(bob))
	}
	h := header(demo[0])
	if !strings.HasPrefix(h, "X-Sieve-Tag: work\r\n") {
		t.Errorf("demo's header does not start with the added field:\n%s", h)
	}
	if !strings.HasSuffix(h, "X-Sieve-Last: end\r\n\r\n") {
		t.Errorf("demo's header does not end with the :last field:\n%s", h)
	}
	if !strings.Contains(h, "X-Remove: one\r\nX-Remove: three\r\n") || strings.Contains(h, "X-Remove: two") {
		t.Errorf("demo's header should have lost the second X-Remove only:\n%s", h)
	}
	hb := header(bob[0])
	if strings.Contains(hb, "X-Sieve") || !strings.Contains(hb, "X-Remove: two") {
		t.Errorf("bob's message was edited by demo's script:\n%s", hb)
	}
	if demo[0].GetBlobKey() == bob[0].GetBlobKey() {
		t.Errorf("the edited and the unedited message share blob %s", demo[0].GetBlobKey())
	}
	if demo[0].GetSize() != bob[0].GetSize()+uint64(len("X-Sieve-Tag: work\r\nX-Sieve-Last: end\r\n")-len("X-Remove: two\r\n")) {
		t.Errorf("sizes %d (edited) and %d: the edit should change only the header", demo[0].GetSize(), bob[0].GetSize())
	}
}
