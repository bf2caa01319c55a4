package lmtp_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestSubaddressFolder checks that the detail of user+detail@domain files into the mailbox
// of that name when it exists and into INBOX otherwise (Dovecot's
// lmtp_save_to_detail_mailbox), and that Delivered-To keeps the address as given.
func TestSubaddressFolder(t *testing.T) {
	srv := startServer(t, nil)
	addMailbox(t, srv, "demo@example.com", "lists", "")
	c := greeted(t, srv)
	c.deliver("a@example.org", []string{"demo+lists@example.com"}, message("to lists", "x\n"))
	c.deliver("a@example.org", []string{"demo+nosuch@example.com"}, message("to nosuch", "x\n"))
	lists := messages(t, srv, "demo@example.com", "lists")
	inbox := messages(t, srv, "demo@example.com", "INBOX")
	if len(lists) != 1 || len(inbox) != 1 {
		t.Fatalf("lists has %d messages, INBOX %d; want 1 each", len(lists), len(inbox))
	}
	if h := header(lists[0]); !strings.Contains(h, "Delivered-To: demo+lists@example.com\r\n") || !strings.Contains(h, "Subject: to lists") {
		t.Fatalf("lists message header:\n%s", h)
	}

	setDelivery(t, srv, &metadatapb.DeliverySettings{SubaddressDelimiter: new(string)}) // "" disables subaddressing
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo+lists@example.com>", "550 5.1.1 ")
}

// TestSpamFiling checks the tenant's spam actions on the verdict headers of SpamAssassin and
// rspamd: file into \Junk (the default), tag with $Junk, and refuse at or above the score.
func TestSpamFiling(t *testing.T) {
	srv := startServer(t, nil)
	c := greeted(t, srv)
	spamHeaders := []string{
		"X-Spam-Flag: YES",
		"X-Spam-Status: Yes, score=7.3 required=5.0 tests=FOO autolearn=no",
		"X-Spam: Yes",
		"X-Rspamd-Action: add header",
		"X-Spamd-Result: default: True [15.50 / 15.00]; R_SPF_FAIL(1.00)[-all]",
	}
	for _, h := range spamHeaders {
		c.deliver("a@example.org", []string{"demo@example.com"}, message("spam "+h, "x\n", h))
	}
	c.deliver("a@example.org", []string{"demo@example.com"}, message("ham", "x\n", "X-Spam-Flag: NO", "X-Spam-Status: No, score=0.1 required=5.0", "X-Rspamd-Action: no action", "X-Spamd-Result: default: False [0.50 / 15.00]"))
	if n := len(messages(t, srv, "demo@example.com", "Junk")); n != len(spamHeaders) {
		t.Fatalf("Junk has %d messages, want %d", n, len(spamHeaders))
	}
	if n := len(messages(t, srv, "demo@example.com", "INBOX")); n != 1 {
		t.Fatalf("INBOX has %d messages, want 1", n)
	}

	setDelivery(t, srv, &metadatapb.DeliverySettings{SpamAction: "tag"})
	c.deliver("a@example.org", []string{"demo@example.com"}, message("tagged", "x\n", spamHeaders[0]))
	inbox := messages(t, srv, "demo@example.com", "INBOX")
	if len(inbox) != 2 || !slices.Contains(inbox[1].GetFlags(), "$Junk") {
		t.Fatalf("INBOX: %v", inbox)
	}

	setDelivery(t, srv, &metadatapb.DeliverySettings{SpamAction: "reject", SpamRejectScore: 10})
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@example.com>", "250 ")
	if r := c.data(message("rejected", "x\n", spamHeaders[4]), 1); !strings.HasPrefix(r[0], "550 5.7.1 ") {
		t.Fatalf("score 15.5 at reject score 10: %q", r[0])
	}
	// Below the reject score it is filed.
	c.deliver("a@example.org", []string{"demo@example.com"}, message("below", "x\n", spamHeaders[1]))
	if n := len(messages(t, srv, "demo@example.com", "Junk")); n != len(spamHeaders)+1 {
		t.Fatalf("Junk has %d messages, want %d", n, len(spamHeaders)+1)
	}

	// Without a \Junk mailbox, spam stays in INBOX, tagged.
	admin(t, func(ctx context.Context) (*metadatapb.DeleteMailboxResponse, error) {
		return srv.Metadata().DeleteMailbox(ctx, &metadatapb.DeleteMailboxRequest{RequestId: embedded.NewRequestID(), Account: "demo@example.com", Name: "Junk"})
	})
	setDelivery(t, srv, &metadatapb.DeliverySettings{})
	c.deliver("a@example.org", []string{"demo@example.com"}, message("no junk", "x\n", spamHeaders[2]))
	inbox = messages(t, srv, "demo@example.com", "INBOX")
	if len(inbox) != 3 || !slices.Contains(inbox[2].GetFlags(), "$Junk") {
		t.Fatalf("INBOX: %v", inbox)
	}
}
