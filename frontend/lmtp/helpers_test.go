package lmtp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// startServer runs a whole embedded Strata (Raft metadata over gRPC, filesystem blobs, the
// IMAP engine and this LMTP server on a loopback port) with the demo account.
func startServer(t testing.TB, edit func(*embedded.Config)) *embedded.Server {
	t.Helper()
	cfg := embedded.Config{
		LMTPListen:         "127.0.0.1:0",
		Hostname:           "mx.test",
		Demo:               true,
		AllowPlaintextAuth: true,
		MaxMessageSize:     1 << 20,
	}
	if edit != nil {
		edit(&cfg)
	}
	return embeddedtest.Start(t, cfg)
}

// client is a raw LMTP client over a real socket: it sends lines as given and reads replies
// whole, so tests can check exact reply codes.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *textproto.Reader
	w    *bufio.Writer
}

// dial connects to the server's LMTP port and reads the greeting.
func dial(t testing.TB, srv *embedded.Server) *client {
	t.Helper()
	conn, err := net.Dial("tcp", srv.LMTPAddr())
	if err != nil {
		t.Fatalf("dial LMTP: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: textproto.NewReader(bufio.NewReader(conn)), w: bufio.NewWriter(conn)}
	c.expect("220 ")
	return c
}

// greeted dials and sends LHLO.
func greeted(t testing.TB, srv *embedded.Server) *client {
	t.Helper()
	c := dial(t, srv)
	c.send("LHLO client.test")
	c.expect("250 ")
	return c
}

// send writes one command line.
func (c *client) send(line string) {
	c.t.Helper()
	c.write(line + "\r\n")
}

// write writes raw bytes.
func (c *client) write(s string) {
	c.t.Helper()
	if _, err := c.w.WriteString(s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	if err := c.w.Flush(); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one reply, multi-line ones joined by "\n", each line as sent.
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadLine()
		if err != nil {
			c.t.Fatalf("read reply (after %q): %v", lines, err)
		}
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// expect reads one reply and fails unless its last line starts with prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	last := r[strings.LastIndex(r, "\n")+1:]
	if !strings.HasPrefix(last, prefix) {
		c.t.Fatalf("reply %q, want %q...", r, prefix)
	}
	return r
}

// cmd sends a command and expects a reply starting with prefix.
func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line)
	return c.expect(prefix)
}

// data sends DATA and the message (dot-stuffed, CRLF) and returns the replies, one per
// accepted recipient (RFC 2033 4.2).
func (c *client) data(msg string, recipients int) []string {
	c.t.Helper()
	c.cmd("DATA", "354 ")
	var b strings.Builder
	for _, line := range strings.SplitAfter(msg, "\r\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteString(".")
		}
		b.WriteString(line)
	}
	if !strings.HasSuffix(msg, "\r\n") && msg != "" {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	c.write(b.String())
	replies := make([]string, recipients)
	for i := range replies {
		replies[i] = c.reply()
	}
	return replies
}

// deliver runs a whole transaction and fails unless every recipient is answered 250.
func (c *client) deliver(from string, to []string, msg string) {
	c.t.Helper()
	c.cmd("MAIL FROM:<"+from+">", "250 ")
	for _, rcpt := range to {
		c.cmd("RCPT TO:<"+rcpt+">", "250 ")
	}
	for i, r := range c.data(msg, len(to)) {
		if !strings.HasPrefix(r, "250 2.0.0 <"+to[i]+">") {
			c.t.Fatalf("reply for %s: %q, want 250 2.0.0", to[i], r)
		}
	}
}

// message returns a small RFC 5322 message with CRLF line ends.
func message(subject, body string, extraHeader ...string) string {
	h := strings.Join(extraHeader, "\r\n")
	if h != "" {
		h += "\r\n"
	}
	return strings.ReplaceAll(fmt.Sprintf("From: Alice <alice@example.org>\nTo: Demo <demo@example.com>\nSubject: %s\nMessage-ID: <%s@example.org>\n", subject, strings.ReplaceAll(subject, " ", ".")), "\n", "\r\n") +
		h + "\r\n" + strings.ReplaceAll(body, "\n", "\r\n")
}

// messages returns the records of an account's mailbox with their header block.
func messages(t testing.TB, srv *embedded.Server, account, mailbox string) []*metadatapb.MessageRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md := srv.Metadata()
	mb, err := md.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: account, Name: mailbox})
	if err != nil {
		t.Fatalf("get mailbox %s of %s: %v", mailbox, account, err)
	}
	stream, err := md.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{Account: account, MailboxId: mb.GetId(), WithStructure: true, HeaderOnly: true})
	if err != nil {
		t.Fatalf("fetch messages: %v", err)
	}
	var records []*metadatapb.MessageRecord
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return records
		}
		if err != nil {
			t.Fatalf("fetch messages: %v", err)
		}
		records = append(records, rec)
	}
}

// header returns the stored header block of a record.
func header(rec *metadatapb.MessageRecord) string {
	return string(rec.GetStructure().GetHeader())
}

// admin runs a metadata call with a deadline and fails the test on error.
func admin[T any](t testing.TB, call func(ctx context.Context) (T, error)) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := call(ctx)
	if err != nil {
		t.Fatalf("admin call: %v", err)
	}
	return v
}

// addAccount creates an account with password "pw".
func addAccount(t testing.TB, srv *embedded.Server, email string) {
	t.Helper()
	admin(t, func(ctx context.Context) (*metadatapb.Account, error) {
		return srv.Metadata().CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: email, Password: "pw"})
	})
}

// addMailbox creates a mailbox of an account, with a special use when given.
func addMailbox(t testing.TB, srv *embedded.Server, account, name, specialUse string) {
	t.Helper()
	admin(t, func(ctx context.Context) (*metadatapb.Mailbox, error) {
		return srv.Metadata().CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{RequestId: embedded.NewRequestID(), Account: account, Name: name, SpecialUse: specialUse})
	})
}

// setDelivery replaces the demo tenant's delivery settings.
func setDelivery(t testing.TB, srv *embedded.Server, settings *metadatapb.DeliverySettings) {
	t.Helper()
	admin(t, func(ctx context.Context) (*metadatapb.DeliverySettings, error) {
		return srv.Metadata().SetDeliverySettings(ctx, &metadatapb.SetDeliverySettingsRequest{RequestId: embedded.NewRequestID(), Tenant: embedded.DemoTenant, Settings: settings})
	})
}
