package imap

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// notifyConn is a connection with NOTIFY on and a feed that the test fills by hand; its
// responses go to out.
func notifyConn(groups []notifyGroup, known ...*metadatapb.Mailbox) (*conn, *bytes.Buffer) {
	out := &bytes.Buffer{}
	done := make(chan struct{})
	close(done)
	c := &conn{
		account: &metadatapb.Account{Email: "demo@example.com"},
		bw:      newConnWriter(out),
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		notify: &notifyState{
			groups:     groups,
			feed:       &accountFeed{cancel: func() {}, done: done, wake: make(chan struct{})},
			known:      map[uint64]*metadatapb.Mailbox{},
			subscribed: map[string]bool{},
		},
	}
	for _, mb := range known {
		c.notify.known[mb.GetId()] = mb
	}
	return c, out
}

// flushLines sends the pending notifications and returns the lines written.
func flushLines(t *testing.T, c *conn, out *bytes.Buffer) []string {
	t.Helper()
	c.sendNotifications()
	if err := c.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSuffix(out.String(), "\r\n")
	out.Reset()
	if text == "" {
		return nil
	}
	return strings.Split(text, "\r\n")
}

func box(id uint64, name string, messages, uidNext uint32) *metadatapb.Mailbox {
	return &metadatapb.Mailbox{Id: id, Name: name, Messages: messages, UidNext: uidNext, UidValidity: 7, Unseen: messages, HighestModseq: uint64(uidNext)}
}

// TestNotifyCoalesces: the batches that arrive between two flushes become one STATUS per
// mailbox, with its latest counters.
func TestNotifyCoalesces(t *testing.T) {
	c, out := notifyConn([]notifyGroup{{filter: imapwire.NotifyPersonal, messages: true}}, box(1, "INBOX", 0, 1), box(2, "Sent", 0, 1))
	for n := uint32(1); n <= 5; n++ {
		c.notify.feed.add(&metadatapb.AccountChanges{Mailboxes: []*metadatapb.Mailbox{box(1, "INBOX", n, n+1)}})
	}
	got := flushLines(t, c, out)
	want := []string{"* STATUS INBOX (MESSAGES 5 UIDNEXT 6 UIDVALIDITY 7 UNSEEN 5)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after five appends: %q, want %q", got, want)
	}
	if got := flushLines(t, c, out); got != nil {
		t.Fatalf("second flush: %q", got)
	}
}

// TestNotifySnapshotAfterReconnect: a reconnected stream's snapshot is compared with what
// the session knew, so a mailbox deleted and one created while the stream was down are
// reported, and so is new mail.
func TestNotifySnapshotAfterReconnect(t *testing.T) {
	c, out := notifyConn([]notifyGroup{{filter: imapwire.NotifyPersonal, messages: true, mailboxName: true}},
		box(1, "INBOX", 0, 1), box(2, "Old", 0, 1))
	c.notify.feed.add(&metadatapb.AccountChanges{Snapshot: true, Mailboxes: []*metadatapb.Mailbox{box(1, "INBOX", 2, 3), box(3, "New", 0, 1)}, SubscriptionsChanged: true})
	got := flushLines(t, c, out)
	want := []string{
		`* LIST (\HasNoChildren) "/" New`,
		`* LIST (\NonExistent) "/" Old`,
		"* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 7 UNSEEN 2)",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after a snapshot: %q, want %q", got, want)
	}
	if _, known := c.notify.known[2]; known || c.notify.known[3] == nil {
		t.Fatalf("known after the snapshot: %v", c.notify.known)
	}
}

// TestNotifyOverflow: more mailboxes waiting than maxNotifyPending is an untagged OK
// [NOTIFICATIONOVERFLOW], after which NOTIFY is off (RFC 5465 5.8).
func TestNotifyOverflow(t *testing.T) {
	c, out := notifyConn([]notifyGroup{{filter: imapwire.NotifyPersonal, messages: true}})
	batch := &metadatapb.AccountChanges{}
	for id := uint64(1); id <= maxNotifyPending+1; id++ {
		batch.Mailboxes = append(batch.Mailboxes, box(id, "M", 1, 2))
	}
	c.notify.feed.add(batch)
	got := flushLines(t, c, out)
	if len(got) != 1 || !strings.HasPrefix(got[0], "* OK [NOTIFICATIONOVERFLOW] ") || c.notify != nil {
		t.Fatalf("after an overflow: %q, notify %v", got, c.notify)
	}
}
