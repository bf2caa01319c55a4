package metadata

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// accountWatcher collects the batches of one WatchAccount stream.
type accountWatcher struct {
	batches chan *metadatapb.AccountChanges
	done    chan error
}

func (s *testService) watchAccount(user string) *accountWatcher {
	s.t.Helper()
	ctx, cancel := context.WithCancel(s.t.Context())
	s.t.Cleanup(cancel)
	stream, err := s.client.WatchAccount(ctx, &metadatapb.WatchAccountRequest{Account: alice, User: user})
	if err != nil {
		s.t.Fatalf("watch account: %v", err)
	}
	w := &accountWatcher{batches: make(chan *metadatapb.AccountChanges, 100), done: make(chan error, 1)}
	go func() {
		for {
			b, err := stream.Recv()
			if err != nil {
				w.done <- err
				return
			}
			w.batches <- b
		}
	}()
	return w
}

// next returns the next batch.
func (w *accountWatcher) next(t testing.TB) *metadatapb.AccountChanges {
	t.Helper()
	select {
	case b := <-w.batches:
		return b
	case err := <-w.done:
		t.Fatalf("account watch ended: %v", err)
	case <-time.After(rpcTimeout):
		t.Fatal("no account change batch")
	}
	return nil
}

// until reads batches until one satisfies ok, and returns it.
func (w *accountWatcher) until(t testing.TB, what string, ok func(*metadatapb.AccountChanges) bool) *metadatapb.AccountChanges {
	t.Helper()
	var found *metadatapb.AccountChanges
	testwait.Until(t, rpcTimeout, func() error {
		if found = w.next(t); !ok(found) {
			return fmt.Errorf("no batch with %s", what)
		}
		return nil
	})
	return found
}

func boxNamed(b *metadatapb.AccountChanges, name string) *metadatapb.Mailbox {
	for _, mb := range b.GetMailboxes() {
		if mb.GetName() == name {
			return mb
		}
	}
	return nil
}

// TestServiceWatchAccount: WatchAccount starts with a snapshot of the account's mailboxes
// and subscriptions, then sends each created, renamed, changed and deleted mailbox and each
// new subscription list; appends that arrive together come as one mailbox state.
func TestServiceWatchAccount(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	w := s.watchAccount(alice)
	first := w.next(t)
	if !first.GetSnapshot() || boxNamed(first, "INBOX") == nil || !slices.Contains(first.GetSubscriptions(), "INBOX") {
		t.Fatalf("first batch is not a snapshot of the account: %v", first)
	}
	inbox := boxNamed(first, "INBOX")

	created := must(c.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Lists"}))
	b := w.until(t, "the new mailbox", func(b *metadatapb.AccountChanges) bool { return boxNamed(b, "Lists") != nil })
	if b.GetSnapshot() || boxNamed(b, "Lists").GetId() != created.GetId() {
		t.Fatalf("create: %v", b)
	}

	must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Messages: newMessages(3, "a")}))
	must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Messages: newMessages(2, "b")}))
	b = w.until(t, "INBOX with 5 messages", func(b *metadatapb.AccountChanges) bool { return boxNamed(b, "INBOX").GetMessages() == 5 })
	if got := boxNamed(b, "INBOX"); got.GetUidNext() != 6 || got.GetUnseen() != 5 || got.GetHighestModseq() <= inbox.GetHighestModseq() {
		t.Fatalf("INBOX after appends: %v", got)
	}

	must(c.RenameMailbox(s.ctx(), &metadatapb.RenameMailboxRequest{RequestId: s.reqID(), Account: alice, From: "Lists", To: "Groups"}))
	b = w.until(t, "the renamed mailbox", func(b *metadatapb.AccountChanges) bool { return boxNamed(b, "Groups") != nil })
	if boxNamed(b, "Groups").GetId() != created.GetId() {
		t.Fatalf("rename: %v", b)
	}

	must(c.SetSubscribed(s.ctx(), &metadatapb.SetSubscribedRequest{RequestId: s.reqID(), Account: alice, Name: "Groups", Subscribed: true}))
	b = w.until(t, "the subscription list", func(b *metadatapb.AccountChanges) bool { return b.GetSubscriptionsChanged() })
	if !slices.Contains(b.GetSubscriptions(), "Groups") || !slices.Contains(b.GetSubscriptions(), "INBOX") {
		t.Fatalf("subscriptions: %v", b)
	}

	must(c.DeleteMailbox(s.ctx(), &metadatapb.DeleteMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Groups"}))
	b = w.until(t, "the deleted mailbox", func(b *metadatapb.AccountChanges) bool { return len(b.GetDeleted()) > 0 })
	if !slices.Equal(b.GetDeleted(), []uint64{created.GetId()}) {
		t.Fatalf("delete: %v", b)
	}

	// Another user may not watch alice's account.
	stream, err := c.WatchAccount(s.ctx(), &metadatapb.WatchAccountRequest{Account: alice, User: "bob@example.org"})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.PermissionDenied)
}

// TestBroadcasterAccountEvents: an account subscription gets the events of the account's
// mailboxes and its subscription list, and no other account's; mailbox subscriptions never
// get subscription-list events.
func TestBroadcasterAccountEvents(t *testing.T) {
	b := newBroadcaster()
	acct := b.subscribeAccount("a@x")
	all := b.subscribe(0)
	one := b.subscribe(7)
	defer acct.Close()
	defer all.Close()
	defer one.Close()
	b.publish([]ChangeEvent{
		{Account: "a@x", MailboxID: 7, HighestModSeq: 3},
		{Account: "b@x", MailboxID: 8, HighestModSeq: 4},
		{Account: "a@x", Subscriptions: true},
	})
	got, _, _ := acct.Drain()
	if len(got) != 2 || got[0].MailboxID != 7 || !got[1].Subscriptions {
		t.Fatalf("account subscription got %v", got)
	}
	if got, _, _ := all.Drain(); len(got) != 2 {
		t.Fatalf("all-mailbox subscription got %v", got)
	}
	if got, _, _ := one.Drain(); len(got) != 1 || got[0].MailboxID != 7 {
		t.Fatalf("mailbox subscription got %v", got)
	}
	b.closeAll()
	if _, _, closed := acct.Drain(); !closed {
		t.Fatal("closeAll left an account subscription open")
	}
}
