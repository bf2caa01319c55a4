package metadata

import (
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// WatchAccount streams the mailbox-level changes of an account's own mailboxes (RFC 5465
// NOTIFY on the frontends). It subscribes to the account's change events before it reads
// the snapshot it sends first, so no change falls between the two; after each wake-up it
// reads the current state of the mailboxes the events name (created, renamed, changed or
// gone) and, when the subscription list changed, the list. Every event that arrived
// between two wake-ups is answered by one batch with each mailbox once, in its latest
// state, so a burst of appends costs one read per mailbox. When the subscription's queue
// overflowed, the stream sends a new snapshot instead. A stream that ends is resumed by
// opening another, whose snapshot the client compares with what it knew.
func (s *Service) WatchAccount(req *metadatapb.WatchAccountRequest, stream grpc.ServerStreamingServer[metadatapb.AccountChanges]) error {
	ctx := stream.Context()
	user, err := actingUser(req.GetUser())
	if err != nil {
		return err
	}
	account := accountName(req.GetAccount())
	if account == "" {
		return status.Errorf(codes.InvalidArgument, "invalid account %q", req.GetAccount())
	}
	if user != "" && user != account {
		// Only the owner's own mailboxes are streamed (RFC 5465 6.3 "personal"): other
		// owners' mailboxes would need their ACLs re-checked on every event.
		return status.Error(codes.PermissionDenied, "an account's changes are streamed to the account only")
	}
	sub := s.fsm.SubscribeAccount(account)
	defer sub.Close()
	v, err := s.read(ctx)
	if err != nil {
		return err
	}
	batch, err := v.accountSnapshot(account)
	v.close()
	if err != nil {
		return err
	}
	for {
		if batch != nil {
			if err := stream.Send(batch); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-sub.Ready():
		}
		events, overflowed, closed := sub.Drain()
		if closed {
			return status.Error(codes.Unavailable, "metadata service shutting down")
		}
		v := s.fsm.view()
		if overflowed {
			batch, err = v.accountSnapshot(account)
		} else {
			batch, err = v.accountChanges(account, events)
		}
		v.close()
		if err != nil {
			return err
		}
	}
}

// accountSnapshot is every mailbox and the subscription list of account, as a snapshot
// batch; NotFound when there is no such account.
func (v *view) accountSnapshot(account string) (*metadatapb.AccountChanges, error) {
	if exists, err := ownerExists(v.r, account); err != nil {
		return nil, storageStatus(err)
	} else if !exists {
		return nil, status.Errorf(codes.NotFound, "account %q not found", account)
	}
	boxes, err := v.mailboxes(account)
	if err != nil {
		return nil, storageStatus(err)
	}
	subscribed, err := v.subscriptions(account)
	if err != nil {
		return nil, storageStatus(err)
	}
	for i, box := range boxes {
		boxes[i] = presentMailbox(box, account, account, allRights)
	}
	return &metadatapb.AccountChanges{Snapshot: true, Mailboxes: boxes, Subscriptions: subscribed, SubscriptionsChanged: true}, nil
}

// accountChanges answers events of account: the current state of each mailbox they name,
// or its id among the deleted, and the subscription list when it changed. nil when there
// is nothing to send.
func (v *view) accountChanges(account string, events []ChangeEvent) (*metadatapb.AccountChanges, error) {
	out := &metadatapb.AccountChanges{}
	var ids []uint64
	for _, ev := range events {
		if ev.Subscriptions {
			out.SubscriptionsChanged = true
		} else if ev.MailboxID != 0 {
			ids = append(ids, ev.MailboxID)
		}
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		box, found, err := v.mailbox(account, id)
		if err != nil {
			return nil, storageStatus(err)
		}
		if !found {
			out.Deleted = append(out.Deleted, id)
			continue
		}
		out.Mailboxes = append(out.Mailboxes, presentMailbox(box, account, account, allRights))
	}
	if out.SubscriptionsChanged {
		var err error
		if out.Subscriptions, err = v.subscriptions(account); err != nil {
			return nil, storageStatus(err)
		}
	}
	if len(out.Mailboxes) == 0 && len(out.Deleted) == 0 && !out.SubscriptionsChanged {
		return nil, nil
	}
	return out, nil
}
