package searchindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// mailboxRef names a mailbox of an account.
type mailboxRef struct {
	account string
	mailbox uint64
}

// Indexer keeps an Index in step with the metadata it is fed from (doc.go: "Where it
// runs"): Notify queues a mailbox whose HIGHESTMODSEQ moved, and Run syncs queued
// mailboxes one at a time, in the order they were first queued.
type Indexer struct {
	idx    *Index
	meta   metadatapb.MetadataClient
	blobs  Blobs
	logger *slog.Logger

	// lastChange is when Notify last ran (UnixNano): the apply path is busy while
	// changes keep coming, and the indexer then works at a low duty cycle (throttle).
	lastChange atomic.Int64

	mu      sync.Mutex
	queued  map[mailboxRef]bool
	order   []mailboxRef
	wake    chan struct{}
	syncing sync.Mutex // one sync (or rebuild) of the index at a time
}

// NewIndexer returns an indexer of idx that reads records through meta (admin calls: no
// acting user) and bodies from blobs.
func NewIndexer(idx *Index, meta metadatapb.MetadataClient, blobs Blobs, logger *slog.Logger) *Indexer {
	if logger == nil {
		logger = slog.Default()
	}
	return &Indexer{idx: idx, meta: meta, blobs: blobs, logger: logger.With("component", "searchindex"),
		queued: map[mailboxRef]bool{}, wake: make(chan struct{}, 1)}
}

// Index returns the index the indexer fills.
func (ix *Indexer) Index() *Index { return ix.idx }

// Notify queues a mailbox for a sync; it never blocks.
func (ix *Indexer) Notify(account string, mailbox uint64) {
	ix.lastChange.Store(time.Now().UnixNano())
	ref := mailboxRef{account, mailbox}
	ix.mu.Lock()
	if !ix.queued[ref] {
		ix.queued[ref] = true
		ix.order = append(ix.order, ref)
	}
	ix.mu.Unlock()
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// Run syncs queued mailboxes until ctx ends. It first queues every mailbox of every
// account (CatchUp), so a restart picks up whatever changed while it was down.
func (ix *Indexer) Run(ctx context.Context) {
	if err := ix.CatchUp(ctx); err != nil && ctx.Err() == nil {
		ix.logger.Warn("search index catch-up", "err", err)
	}
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	for {
		ix.mu.Lock()
		var next mailboxRef
		ok := len(ix.order) > 0
		if ok {
			next = ix.order[0]
			ix.order = ix.order[1:]
			delete(ix.queued, next)
		}
		ix.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-ix.wake:
				if !ix.settle(ctx) {
					return
				}
			case <-sweep.C:
				// Accounts deleted without an event of their mailboxes are dropped here.
				if err := ix.CatchUp(ctx); err != nil && ctx.Err() == nil {
					ix.logger.Warn("search index sweep", "err", err)
				}
			}
			continue
		}
		if err := ix.Sync(ctx, next.account, next.mailbox); err != nil {
			if ctx.Err() != nil {
				return
			}
			ix.logger.Warn("search index sync", "account", next.account, "mailbox", next.mailbox, "err", err)
			// Retry later: the metadata service may be electing a leader.
			time.AfterFunc(time.Second, func() { ix.Notify(next.account, next.mailbox) })
		}
	}
}

// CatchUp queues every mailbox of every account and drops the index of accounts that are
// gone.
func (ix *Indexer) CatchUp(ctx context.Context) error {
	accounts, err := ix.meta.ListAccounts(ctx, &metadatapb.ListAccountsRequest{})
	if err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}
	live := map[string]bool{}
	for _, a := range accounts.GetAccounts() {
		live[a.GetEmail()] = true
		if err := ix.queueAccount(ctx, a.GetEmail()); err != nil {
			return err
		}
	}
	held, err := ix.idx.Accounts()
	if err != nil {
		return err
	}
	for _, account := range held {
		if !live[account] {
			// Deleted, or a tenant-shared owner ("tenant:NAME"), which queueAccount
			// syncs or drops by its mailboxes.
			if err := ix.queueAccount(ctx, account); err != nil {
				return err
			}
		}
	}
	return nil
}

// queueAccount queues the mailboxes of account, and those the index holds that the
// account no longer has (their sync drops them).
func (ix *Indexer) queueAccount(ctx context.Context, account string) error {
	held, err := ix.idx.Mailboxes(account)
	if err != nil {
		return err
	}
	for _, id := range held {
		ix.Notify(account, id)
	}
	list, err := ix.meta.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: account})
	if status.Code(err) == codes.NotFound {
		return ix.DropAccount(account)
	}
	if err != nil {
		return fmt.Errorf("list mailboxes of %s: %w", account, err)
	}
	for _, mb := range list.GetMailboxes() {
		if !mb.GetNoselect() {
			ix.Notify(account, mb.GetId())
		}
	}
	return nil
}

// DropAccount removes the index of an account (deleted).
func (ix *Indexer) DropAccount(account string) error {
	ix.syncing.Lock()
	defer ix.syncing.Unlock()
	b := ix.idx.NewBatch()
	if err := b.DropAccount(account); err != nil {
		return err
	}
	return b.Commit()
}

// sweepInterval is how often Run compares the index's accounts with the metadata's.
const sweepInterval = 10 * time.Minute

// reindexDead is how many tombstones a mailbox may gather before a quarter of its docs
// being dead makes the indexer rebuild it.
const reindexDead = 1000

// Run lets changes gather before a sync until none came for quiet, or for maxDelay
// since the first, so that a burst of appends is indexed as one batch (one posting chunk
// per trigram and word of the batch: the larger the batch, the fewer keys per message).
const (
	quiet    = 200 * time.Millisecond
	maxDelay = 5 * time.Second
)

// settle waits for changes to gather (quiet, maxDelay); false when ctx ended.
func (ix *Indexer) settle(ctx context.Context) bool {
	start := time.Now()
	for {
		wait := quiet - time.Since(time.Unix(0, ix.lastChange.Load()))
		if wait <= 0 || time.Since(start) >= maxDelay {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(min(wait, maxDelay-time.Since(start))):
		}
	}
}

// While changes keep coming (the last within busyWindow), the indexer yields the CPU to
// the apply path: after every workSlice of indexing it sleeps idleRatio times as long, so
// it takes at most a fifth of one core, lags under write load and catches up when the
// writes pause (doc.go "Cost").
const (
	busyWindow = time.Second
	workSlice  = 20 * time.Millisecond
	idleRatio  = 4
)

// throttle is called between messages with the indexing time spent since the last
// pause; it returns the time to carry on counting from.
func (ix *Indexer) throttle(ctx context.Context, worked time.Duration) time.Duration {
	runtime.Gosched() // let the apply path's runnable goroutines go first
	if worked < workSlice {
		return worked
	}
	if time.Since(time.Unix(0, ix.lastChange.Load())) > busyWindow {
		return 0
	}
	select {
	case <-ctx.Done():
	case <-time.After(idleRatio * worked):
	}
	return 0
}

// fetchBatch is how many records a sync indexes per committed batch.
const fetchBatch = 1024

// Sync brings the index of one mailbox in step with its metadata: drops it when the
// mailbox is gone or has a new UIDVALIDITY, removes the messages expunged since the
// MODSEQ it synced, and indexes the messages above its last indexed UID.
func (ix *Indexer) Sync(ctx context.Context, account string, mailbox uint64) error {
	ix.syncing.Lock()
	defer ix.syncing.Unlock()
	return ix.sync(ctx, account, mailbox, nil)
}

func (ix *Indexer) sync(ctx context.Context, account string, mailbox uint64, progress func(n int)) error {
	st, ok, err := ix.idx.State(account, mailbox)
	if err != nil {
		return err
	}
	mb, err := ix.meta.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: account, Id: mailbox})
	if status.Code(err) == codes.NotFound {
		b := ix.idx.NewBatch()
		if err := b.DropMailbox(account, mailbox); err != nil {
			return err
		}
		return b.Commit()
	}
	if err != nil {
		return fmt.Errorf("get mailbox: %w", err)
	}
	if ok && st.UIDValidity != mb.GetUidValidity() {
		b := ix.idx.NewBatch()
		if err := b.DropMailbox(account, mailbox); err != nil {
			return err
		}
		if err := b.Commit(); err != nil {
			return err
		}
		ok = false
	}
	if ok && st.ModSeq == mb.GetHighestModseq() && st.LastUID+1 >= mb.GetUidNext() {
		return nil
	}
	if ok {
		removed, err := ix.removeExpunged(ctx, account, mailbox, st)
		if err != nil {
			return err
		}
		st.Dead += removed
		if st.Dead > reindexDead && st.Dead > st.Docs/4 {
			// Tombstones take more room than a rebuild of the mailbox costs.
			b := ix.idx.NewBatch()
			if err := b.DropMailbox(account, mailbox); err != nil {
				return err
			}
			if err := b.Commit(); err != nil {
				return err
			}
			ok = false
		}
	}
	if !ok {
		st = MailboxState{UIDValidity: mb.GetUidValidity()}
	}
	st.ModSeq = mb.GetHighestModseq()
	b := ix.idx.NewBatch()
	if err := b.SetState(account, mailbox, st); err != nil {
		return err
	}
	if err := b.Commit(); err != nil {
		return err
	}
	return ix.indexNew(ctx, account, mailbox, st, progress)
}

// removeExpunged drops the messages expunged after st.ModSeq, from the tombstones; when
// those are pruned, it compares the index with the mailbox's UIDs.
func (ix *Indexer) removeExpunged(ctx context.Context, account string, mailbox uint64, st MailboxState) (uint32, error) {
	if st.LastUID == 0 {
		return 0, nil
	}
	res, err := ix.meta.ListVanished(ctx, &metadatapb.ListVanishedRequest{Account: account, MailboxId: mailbox, SinceModseq: st.ModSeq,
		Uids: []*metadatapb.UidRange{{First: 1, Last: st.LastUID}}})
	if err != nil {
		return 0, fmt.Errorf("list vanished: %w", err)
	}
	var gone []uint32
	if res.GetComplete() {
		for _, r := range res.GetVanished() {
			for uid := r.GetFirst(); uid >= r.GetFirst() && uid <= r.GetLast(); uid++ {
				gone = append(gone, uid)
			}
		}
	} else {
		if gone, err = ix.unlisted(ctx, account, mailbox, st.LastUID); err != nil {
			return 0, err
		}
	}
	b := ix.idx.NewBatch()
	for _, uid := range gone {
		if err := b.Remove(account, mailbox, uid); err != nil {
			return 0, err
		}
	}
	return uint32(len(gone)), b.Commit()
}

// unlisted returns the UIDs up to last the index holds docs of but the mailbox no longer
// has.
func (ix *Indexer) unlisted(ctx context.Context, account string, mailbox uint64, last uint32) ([]uint32, error) {
	present := map[uint32]bool{}
	after := uint32(0)
	for {
		res, err := ix.meta.ListMessages(ctx, &metadatapb.ListMessagesRequest{Account: account, MailboxId: mailbox, AfterUid: after, Limit: 10000})
		if err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		for _, uid := range res.GetUids() {
			present[uid] = true
			after = uid
		}
		if !res.GetMore() || len(res.GetUids()) == 0 {
			break
		}
	}
	held, err := ix.idx.docs(account, mailbox)
	if err != nil {
		return nil, err
	}
	var gone []uint32
	for _, uid := range held {
		if uid <= last && !present[uid] {
			gone = append(gone, uid)
		}
	}
	return gone, nil
}

// indexNew indexes the messages above st.LastUID, committing the state with every batch.
func (ix *Indexer) indexNew(ctx context.Context, account string, mailbox uint64, st MailboxState, progress func(n int)) error {
	stream, err := ix.meta.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{Account: account, MailboxId: mailbox,
		Uids: []*metadatapb.UidRange{{First: st.LastUID + 1, Last: 0xFFFFFFFF}}, WithStructure: true})
	if err != nil {
		return fmt.Errorf("fetch messages: %w", err)
	}
	b := ix.idx.NewBatch()
	n := 0
	doc := NewDoc()
	var worked time.Duration
	flush := func() error {
		if err := b.SetState(account, mailbox, st); err != nil {
			return err
		}
		if err := b.Commit(); err != nil {
			return err
		}
		if progress != nil {
			progress(n)
		}
		n = 0
		b = ix.idx.NewBatch()
		return nil
	}
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.b.Close()
			return fmt.Errorf("fetch messages: %w", err)
		}
		if rec.GetUid() <= st.LastUID {
			continue
		}
		t0 := time.Now()
		err = ExtractInto(ctx, doc, ix.blobs, rec)
		if err != nil {
			ix.logger.Warn("search index: message not indexed, always a candidate", "account", account, "mailbox", mailbox, "uid", rec.GetUid(), "err", err)
			err = b.Skip(account, mailbox, rec.GetUid())
		} else {
			err = b.Add(account, mailbox, rec.GetUid(), doc)
			st.Docs++
		}
		if err != nil {
			b.b.Close()
			return err
		}
		st.LastUID = rec.GetUid()
		n++
		if n == fetchBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		worked = ix.throttle(ctx, worked+time.Since(t0))
	}
	return flush()
}

// Rebuild drops the index of account and builds it again from the stored messages,
// reporting the messages indexed so far and the total. While it runs, the account's
// mailboxes answer from the part already built plus a scan of the rest (doc.go:
// Superset), so SEARCH answers stay exact.
func (ix *Indexer) Rebuild(ctx context.Context, account string, progress func(done, total uint64)) error {
	list, err := ix.meta.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: account})
	if err != nil {
		return fmt.Errorf("list mailboxes of %s: %w", account, err)
	}
	var total, done uint64
	for _, mb := range list.GetMailboxes() {
		total += uint64(mb.GetMessages())
	}
	if progress != nil {
		progress(0, total)
	}
	ix.syncing.Lock()
	defer ix.syncing.Unlock()
	b := ix.idx.NewBatch()
	if err := b.DropAccount(account); err != nil {
		return err
	}
	if err := b.Commit(); err != nil {
		return err
	}
	for _, mb := range list.GetMailboxes() {
		if mb.GetNoselect() {
			continue
		}
		err := ix.sync(ctx, account, mb.GetId(), func(n int) {
			done += uint64(n)
			if progress != nil {
				progress(min(done, total), total)
			}
		})
		if err != nil {
			return fmt.Errorf("rebuild %s of %s: %w", mb.GetName(), account, err)
		}
	}
	if progress != nil {
		progress(total, total)
	}
	return nil
}
