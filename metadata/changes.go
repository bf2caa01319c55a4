package metadata

import (
	"sync"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// ChangeEvent says that a mailbox reached a new HIGHESTMODSEQ in an applied batch, or was
// created, or (MailboxID 0, Subscriptions) that an account's subscription list changed.
type ChangeEvent struct {
	Account       string
	MailboxID     uint64
	HighestModSeq uint64
	// Subscriptions marks an event about the account's subscription list, not a mailbox.
	Subscriptions bool
	// Kinds says what the applied command did to the mailbox, so that a subscriber that
	// follows some kinds only skips the others without reading the mailbox (the search
	// index ignores flag changes: flags are not indexed text).
	Kinds ChangeKinds
}

// ChangeKinds is a set of the kinds of change a command made to a mailbox.
type ChangeKinds uint8

// The kinds of ChangeKinds, from the journal's metadatapb.ChangeKind of the command's
// changes (and its created and ACL marks, which have no journal entry).
const (
	ChangedAppend      ChangeKinds = 1 << iota // a new message
	ChangedFlags                               // flags or keywords of a message
	ChangedExpunge                             // a message expunged
	ChangedDeleted                             // the mailbox was deleted
	ChangedCreated                             // the mailbox was created, or was \Noselect and is selectable again
	ChangedOther                               // renamed, rights or ACL changed
	ChangedUIDValidity                         // an import gave the mailbox a new UIDVALIDITY (RFC 9051 2.3.1.1)
)

// kindsOf returns the kinds of changes.
func kindsOf(changes []*metadatapb.Change) ChangeKinds {
	var k ChangeKinds
	for _, ch := range changes {
		switch ch.GetKind() {
		case metadatapb.ChangeKind_CHANGE_KIND_APPEND:
			k |= ChangedAppend
		case metadatapb.ChangeKind_CHANGE_KIND_FLAGS:
			k |= ChangedFlags
		case metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE:
			k |= ChangedExpunge
		case metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED:
			k |= ChangedDeleted
		default:
			k |= ChangedOther
		}
	}
	return k
}

// maxPendingEvents bounds a subscription's queue; beyond it events coalesce into
// the overflow signal.
const maxPendingEvents = 1024

// broadcaster fans change events out to in-process subscribers without ever
// blocking the apply loop: each subscription has a bounded queue and a one-slot
// wake-up channel.
type broadcaster struct {
	mu sync.Mutex
	// subs indexes subscriptions by mailbox id; 0 holds those of every mailbox.
	subs map[uint64]map[*Subscription]struct{}
	// accounts indexes the subscriptions to every event of an account (WatchAccount).
	accounts map[string]map[*Subscription]struct{}
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: map[uint64]map[*Subscription]struct{}{}, accounts: map[string]map[*Subscription]struct{}{}}
}

// Subscription receives the change events of one mailbox, or of all when its
// mailbox id is 0, or, when account is set, every event of that account (its mailboxes
// and its subscription list).
type Subscription struct {
	b         *broadcaster
	mailboxID uint64
	account   string
	ready     chan struct{}

	mu         sync.Mutex
	pending    []ChangeEvent
	overflowed bool
	closed     bool
}

func (b *broadcaster) subscribe(mailboxID uint64) *Subscription {
	s := &Subscription{b: b, mailboxID: mailboxID, ready: make(chan struct{}, 1)}
	b.mu.Lock()
	set := b.subs[mailboxID]
	if set == nil {
		set = map[*Subscription]struct{}{}
		b.subs[mailboxID] = set
	}
	set[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// subscribeAccount registers for every event of account.
func (b *broadcaster) subscribeAccount(account string) *Subscription {
	s := &Subscription{b: b, account: account, ready: make(chan struct{}, 1)}
	b.mu.Lock()
	set := b.accounts[account]
	if set == nil {
		set = map[*Subscription]struct{}{}
		b.accounts[account] = set
	}
	set[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// publish delivers events to matching subscriptions.
func (b *broadcaster) publish(events []ChangeEvent) {
	if len(events) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[0] {
		s.deliver(events)
	}
	for _, ev := range events {
		if ev.MailboxID != 0 {
			for s := range b.subs[ev.MailboxID] {
				s.deliver([]ChangeEvent{ev})
			}
		}
		for s := range b.accounts[ev.Account] {
			s.deliver([]ChangeEvent{ev})
		}
	}
}

// everySubscription calls fn on each subscription; b.mu is held.
func (b *broadcaster) everySubscription(fn func(*Subscription)) {
	for _, set := range b.subs {
		for s := range set {
			fn(s)
		}
	}
	for _, set := range b.accounts {
		for s := range set {
			fn(s)
		}
	}
}

// signalAll tells every subscriber that anything may have changed (after a
// snapshot restore).
func (b *broadcaster) signalAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.everySubscription(func(s *Subscription) {
		s.mu.Lock()
		s.overflowed = true
		s.pending = nil
		s.mu.Unlock()
		s.wake()
	})
}

func (b *broadcaster) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.everySubscription(func(s *Subscription) {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.wake()
	})
	clear(b.subs)
	clear(b.accounts)
}

func (s *Subscription) deliver(events []ChangeEvent) {
	s.mu.Lock()
	matched := false
	for _, ev := range events {
		if !s.matches(ev) {
			continue
		}
		matched = true
		if s.overflowed {
			continue
		}
		if len(s.pending) >= maxPendingEvents {
			s.overflowed = true
			s.pending = nil
			continue
		}
		s.pending = append(s.pending, ev)
	}
	s.mu.Unlock()
	if matched {
		s.wake()
	}
}

// matches reports whether the subscription follows ev.
func (s *Subscription) matches(ev ChangeEvent) bool {
	if s.account != "" {
		return ev.Account == s.account
	}
	return ev.MailboxID != 0 && (s.mailboxID == 0 || ev.MailboxID == s.mailboxID)
}

func (s *Subscription) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled when events are pending or the subscription overflowed or was
// closed.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Drain returns the pending events; overflowed means some were dropped and the
// subscriber must re-read what it follows. closed means the FSM is shut down.
func (s *Subscription) Drain() (events []ChangeEvent, overflowed, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, overflowed = s.pending, s.overflowed
	s.pending, s.overflowed = nil, false
	return events, overflowed, s.closed
}

// Close unregisters the subscription.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	if s.account != "" {
		if set := s.b.accounts[s.account]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(s.b.accounts, s.account)
			}
		}
	} else if set := s.b.subs[s.mailboxID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(s.b.subs, s.mailboxID)
		}
	}
	s.b.mu.Unlock()
}
