package metadata

import (
	"sync"
)

// ChangeEvent says that a mailbox reached a new HIGHESTMODSEQ in an applied batch.
type ChangeEvent struct {
	Account       string
	MailboxID     uint64
	HighestModSeq uint64
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
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: map[uint64]map[*Subscription]struct{}{}}
}

// Subscription receives the change events of one mailbox, or of all when its
// mailbox id is 0.
type Subscription struct {
	b         *broadcaster
	mailboxID uint64
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
		for s := range b.subs[ev.MailboxID] {
			s.deliver([]ChangeEvent{ev})
		}
	}
}

// signalAll tells every subscriber that anything may have changed (after a
// snapshot restore).
func (b *broadcaster) signalAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, set := range b.subs {
		for s := range set {
			s.mu.Lock()
			s.overflowed = true
			s.pending = nil
			s.mu.Unlock()
			s.wake()
		}
	}
}

func (b *broadcaster) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, set := range b.subs {
		for s := range set {
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			s.wake()
		}
		delete(b.subs, id)
	}
}

func (s *Subscription) deliver(events []ChangeEvent) {
	s.mu.Lock()
	matched := false
	for _, ev := range events {
		if s.mailboxID != 0 && ev.MailboxID != s.mailboxID {
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
	if set := s.b.subs[s.mailboxID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(s.b.subs, s.mailboxID)
		}
	}
	s.b.mu.Unlock()
}
