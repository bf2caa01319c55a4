// Package fsmfeed runs a search indexer beside a metadata node's state machine (package
// searchindex, "Where it runs"): it feeds the indexer from the FSM's in-process change
// events, the applied log's feed, and makes the node's Metadata service answer
// SearchText from it. It is the only place that knows both the FSM and the index.
package fsmfeed

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/searchindex"
)

// feed adapts an FSM subscription to every mailbox to searchindex.Feed.
type feed struct {
	sub *metadata.Subscription
}

func (f feed) Next(ctx context.Context) ([]searchindex.MailboxChange, bool, error) {
	select {
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-f.sub.Ready():
	}
	events, overflowed, closed := f.sub.Drain()
	if closed {
		return nil, false, errors.New("state machine closed")
	}
	changes := make([]searchindex.MailboxChange, 0, len(events))
	for _, ev := range events {
		changes = append(changes, changeOf(ev))
	}
	return changes, overflowed, nil
}

// changeOf says what an FSM event means to the index: flag changes, renames and rights
// changes mean nothing (no indexed text), an event without kinds a full comparison, and
// so does a new UIDVALIDITY (an import): the mailbox is indexed anew, not incrementally.
func changeOf(ev metadata.ChangeEvent) searchindex.MailboxChange {
	return searchindex.MailboxChange{Account: ev.Account, Mailbox: ev.MailboxID, ModSeq: ev.HighestModSeq,
		Appended: ev.Kinds&metadata.ChangedAppend != 0,
		Expunged: ev.Kinds&metadata.ChangedExpunge != 0,
		Reset:    ev.Kinds == 0 || ev.Kinds&(metadata.ChangedDeleted|metadata.ChangedCreated|metadata.ChangedUIDValidity) != 0,
	}
}

// Indexer is a running indexer; Close stops it and closes its store.
type Indexer struct {
	*searchindex.Indexer
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error
}

// Start opens the index in dir/searchindex, makes svc answer SearchText from it and
// starts following fsm. meta is the node's own Metadata service (admin calls).
func Start(dir string, fsm *metadata.FSM, svc *metadata.Service, meta metadatapb.MetadataClient, blobs searchindex.Blobs, logger *slog.Logger) (*Indexer, error) {
	idx, err := searchindex.Open(filepath.Join(dir, "searchindex"))
	if err != nil {
		return nil, err
	}
	ix := searchindex.NewIndexer(idx, meta, blobs, logger)
	svc.SetTextIndex(ix)
	sub := fsm.Subscribe(0)
	// Reads of this node's own state, a follower's too (metadata.LocalReads): the
	// change feed it follows is this node's FSM's.
	ctx, cancel := context.WithCancel(metadata.LocalReads(context.Background()))
	done := make(chan struct{}, 2)
	go func() { ix.Run(ctx); done <- struct{}{} }()
	go func() {
		defer sub.Close()
		_ = ix.Follow(ctx, feed{sub: sub})
		done <- struct{}{}
	}()
	return &Indexer{Indexer: ix, cancel: cancel, done: done}, nil
}

// Close stops the indexer and closes the index; later calls return the first's result.
func (x *Indexer) Close() error {
	x.once.Do(func() {
		x.cancel()
		<-x.done
		<-x.done
		x.err = x.Index().Close()
	})
	return x.err
}
