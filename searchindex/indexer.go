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

// work is what a queued mailbox needs, a set.
type work uint8

// pending is the queued work of a mailbox, and the highest MODSEQ of the changes that
// queued it.
type pending struct {
	work   work
	modseq uint64
}

const (
	workNew      work = 1 << iota // index the messages above the last indexed UID
	workExpunged                  // drop the messages expunged since the synced MODSEQ
	workFull                      // compare the whole mailbox with the index (Sync)
)

// Stats counts the indexer's work since it started.
type Stats struct {
	// Ignored counts changes that needed no work: flags, keywords, renames, rights.
	Ignored uint64
	// FullSyncs counts mailboxes compared whole with the index (Sync: after a restart,
	// an overflow of the feed, a created or deleted mailbox, a failed sync).
	FullSyncs uint64
	// Incremental counts mailboxes brought in step from their changes alone.
	Incremental uint64
	// MetadataCalls counts the indexer's calls to the Metadata service (mailbox, message
	// list, vanished and fetch reads).
	MetadataCalls uint64
	// Fetched counts the message records read to be indexed.
	Fetched uint64
	// Removed counts the expunged messages dropped from the index, each once.
	Removed uint64
}

// Indexer keeps an Index in step with the metadata it is fed from (doc.go: "Where it
// runs"): NotifyChange queues a mailbox with what changed in it (Notify: a full
// comparison), and Run syncs queued mailboxes one at a time, in the order they were first
// queued.
type Indexer struct {
	idx    *Index
	meta   metadatapb.MetadataClient
	blobs  Blobs
	logger *slog.Logger
	// recent holds the records the ingest path handed over with the bodies, when blobs
	// reads through RecentBodies (recentrecords.go); nil otherwise.
	recent *RecentBodies
	// doc is the doc indexNew extracts into, under syncing: kept from sync to sync, so
	// the words it interns (Doc.seen) are not met and allocated anew, and its map not
	// grown again, at every burst of appends.
	doc *Doc

	// lastChange is when Notify last ran (UnixNano): the apply path is busy while
	// changes keep coming, and the indexer then works at a low duty cycle (throttle).
	lastChange atomic.Int64

	ignored, fullSyncs, incremental, metadataCalls, fetched, removed atomic.Uint64

	mu     sync.Mutex
	queued map[mailboxRef]*pending
	// running is the mailbox being synced, its work already taken from queued.
	running mailboxRef
	// synced holds, per mailbox, the MODSEQ up to which every change is in the index
	// (or needed no work), when it is above the MODSEQ of its stored state: flag changes
	// move it without a write.
	synced  map[mailboxRef]uint64
	order   []mailboxRef
	wake    chan struct{}
	syncing sync.Mutex // one sync (or rebuild) of the index at a time

	// compared holds the mailboxes compared whole with the metadata (sync) since the
	// indexer started, under mu: until then the stored state may predate changes made
	// while it was down, and CaughtUp says no.
	compared map[mailboxRef]bool
}

// NewIndexer returns an indexer of idx that reads records through meta (admin calls: no
// acting user) and bodies from blobs. When blobs is RecentBodies.Over, the records the
// ingest path hands over with the bodies (KeepAppended) are taken from it as well.
func NewIndexer(idx *Index, meta metadatapb.MetadataClient, blobs Blobs, logger *slog.Logger) *Indexer {
	if logger == nil {
		logger = slog.Default()
	}
	ix := &Indexer{idx: idx, meta: meta, blobs: blobs, logger: logger.With("component", "searchindex"),
		queued: map[mailboxRef]*pending{}, synced: map[mailboxRef]uint64{}, compared: map[mailboxRef]bool{}, wake: make(chan struct{}, 1),
		doc: NewDoc()}
	if over, ok := blobs.(recentBlobs); ok {
		ix.recent = over.recent
	}
	return ix
}

// Index returns the index the indexer fills.
func (ix *Indexer) Index() *Index { return ix.idx }

// Stats returns the indexer's counters.
func (ix *Indexer) Stats() Stats {
	return Stats{Ignored: ix.ignored.Load(), FullSyncs: ix.fullSyncs.Load(), Incremental: ix.incremental.Load(),
		MetadataCalls: ix.metadataCalls.Load(), Fetched: ix.fetched.Load(), Removed: ix.removed.Load()}
}

// Notify queues a mailbox for a full sync (Sync); it never blocks.
func (ix *Indexer) Notify(account string, mailbox uint64) {
	ix.queue(mailboxRef{account, mailbox}, workFull, 0)
}

// CaughtUp reports whether the index of account's mailbox mb (as the metadata holds it
// now) is in step with it: every message indexed and every change up to its
// HIGHESTMODSEQ applied or, for flag changes, seen. It also returns the stored state.
// While a failed sync waits for its retry (a full Sync a second later), it may report a
// later change's MODSEQ; the stored state keeps the MODSEQ the retry resumes from, so
// nothing is lost. It is false until the mailbox has been compared whole with the metadata
// since the indexer started (the catch-up of a restart, Run): a change seen before that
// says nothing of the changes made while the indexer was down. It is false as well for a
// state of another UIDVALIDITY (RFC 9051 2.3.1.1: other messages).
func (ix *Indexer) CaughtUp(account string, mb *metadatapb.Mailbox) (bool, MailboxState, error) {
	st, ok, err := ix.idx.State(account, mb.GetId())
	if err != nil || !ok {
		return false, st, err
	}
	ref := mailboxRef{account, mb.GetId()}
	ix.mu.Lock()
	synced := max(st.ModSeq, ix.synced[ref])
	compared := ix.compared[ref]
	ix.mu.Unlock()
	return compared && st.UIDValidity == mb.GetUidValidity() && st.LastUID+1 >= mb.GetUidNext() && synced >= mb.GetHighestModseq(), st, nil
}

// NotifyChange queues the work a change of the feed needs, none for a change of flags,
// keywords, name or rights (no indexed text); it never blocks.
func (ix *Indexer) NotifyChange(c MailboxChange) {
	// The apply path is busy whatever changed (throttle).
	ix.lastChange.Store(time.Now().UnixNano())
	var w work
	if c.Appended {
		w |= workNew
	}
	if c.Expunged {
		w |= workExpunged
	}
	if c.Reset {
		w |= workFull
	}
	ref := mailboxRef{c.Account, c.Mailbox}
	if w == 0 {
		ix.ignored.Add(1)
		ix.mu.Lock()
		_, queued := ix.queued[ref]
		if !queued && ix.running != ref {
			// Every earlier change of the mailbox is done: the index is in step up to here.
			ix.synced[ref] = max(ix.synced[ref], c.ModSeq)
			ix.mu.Unlock()
			return
		}
		ix.mu.Unlock()
	}
	ix.queue(ref, w, c.ModSeq)
}

// queue adds w to the mailbox's queued work (w may be none: a change that only moves its
// MODSEQ once the work before it is done).
func (ix *Indexer) queue(ref mailboxRef, w work, modseq uint64) {
	ix.lastChange.Store(time.Now().UnixNano())
	ix.mu.Lock()
	p := ix.queued[ref]
	if p == nil {
		p = &pending{}
		ix.queued[ref] = p
		ix.order = append(ix.order, ref)
	}
	p.work |= w
	p.modseq = max(p.modseq, modseq)
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
		var p *pending
		ok := len(ix.order) > 0
		if ok {
			next = ix.order[0]
			ix.order = ix.order[1:]
			p = ix.queued[next]
			delete(ix.queued, next)
			ix.running = next
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
		err := ix.syncWork(ctx, next.account, next.mailbox, p.work)
		ix.mu.Lock()
		ix.running = mailboxRef{}
		if err == nil {
			ix.synced[next] = max(ix.synced[next], p.modseq)
		}
		ix.mu.Unlock()
		if err != nil {
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
// per word of the batch: the larger the batch, the fewer keys per message).
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

// syncWork does the work queued for a mailbox. From the feed's changes alone (no
// workFull), it reads only what changed: the vanished UIDs since the synced MODSEQ after
// an expunge, the records above the last indexed UID after an append. A mailbox the
// index holds no state of, one gone meanwhile, and one whose tombstones call for a
// rebuild take the full comparison.
func (ix *Indexer) syncWork(ctx context.Context, account string, mailbox uint64, w work) error {
	ix.syncing.Lock()
	defer ix.syncing.Unlock()
	if w == 0 {
		return nil
	}
	if w&workFull != 0 {
		return ix.sync(ctx, account, mailbox, nil)
	}
	st, ok, err := ix.idx.State(account, mailbox)
	if err != nil {
		return err
	}
	if !ok {
		return ix.sync(ctx, account, mailbox, nil)
	}
	ix.incremental.Add(1)
	if w&workExpunged != 0 {
		removed, modseq, err := ix.removeExpunged(ctx, account, mailbox, st)
		if status.Code(err) == codes.NotFound {
			return ix.sync(ctx, account, mailbox, nil)
		}
		if err != nil {
			return err
		}
		st.Dead += removed
		if st.Dead > reindexDead && st.Dead > st.Docs/4 {
			// A rebuild: dropped first, so that the full comparison does not list and
			// count the vanished UIDs removed above a second time.
			if err := ix.dropMailbox(account, mailbox); err != nil {
				return err
			}
			return ix.sync(ctx, account, mailbox, nil)
		}
		if modseq > st.ModSeq {
			// Every expunge up to modseq is applied; later ones come with their own change.
			st.ModSeq = modseq
		}
		b := ix.idx.NewBatch()
		if err := b.SetState(account, mailbox, st); err != nil {
			return err
		}
		if err := b.Commit(); err != nil {
			return err
		}
	}
	if w&workNew != 0 {
		err := ix.indexNew(ctx, account, mailbox, st, nil)
		if status.Code(err) == codes.NotFound {
			return ix.sync(ctx, account, mailbox, nil)
		}
		return err
	}
	return nil
}

func (ix *Indexer) sync(ctx context.Context, account string, mailbox uint64, progress func(n int)) error {
	ix.fullSyncs.Add(1)
	st, ok, err := ix.idx.State(account, mailbox)
	if err != nil {
		return err
	}
	ix.metadataCalls.Add(1)
	mb, err := ix.meta.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: account, Id: mailbox})
	if status.Code(err) == codes.NotFound {
		ix.mu.Lock()
		delete(ix.compared, mailboxRef{account, mailbox})
		ix.mu.Unlock()
		return ix.dropMailbox(account, mailbox)
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
		// In step: compared whole as surely as after the work below (without this, a
		// mailbox unchanged while the indexer was down never counted as caught up).
		ix.mu.Lock()
		ix.compared[mailboxRef{account, mailbox}] = true
		ix.mu.Unlock()
		return nil
	}
	if ok {
		removed, _, err := ix.removeExpunged(ctx, account, mailbox, st)
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
	if err := ix.indexNew(ctx, account, mailbox, st, progress); err != nil {
		return err
	}
	if err := ix.skipExpungedTop(account, mailbox, mb.GetUidNext()); err != nil {
		return err
	}
	ix.mu.Lock()
	ix.compared[mailboxRef{account, mailbox}] = true
	ix.mu.Unlock()
	return nil
}

// skipExpungedTop raises the stored LastUID to uidNext-1 after a full comparison that
// read every message below uidNext: the messages above the last one indexed were expunged,
// and without it CaughtUp would wait for them for ever.
func (ix *Indexer) skipExpungedTop(account string, mailbox uint64, uidNext uint32) error {
	st, ok, err := ix.idx.State(account, mailbox)
	if err != nil || !ok || st.LastUID+1 >= uidNext {
		return err
	}
	st.LastUID = uidNext - 1
	b := ix.idx.NewBatch()
	if err := b.SetState(account, mailbox, st); err != nil {
		return err
	}
	return b.Commit()
}

// dropMailbox removes everything the index holds of a mailbox.
func (ix *Indexer) dropMailbox(account string, mailbox uint64) error {
	b := ix.idx.NewBatch()
	if err := b.DropMailbox(account, mailbox); err != nil {
		return err
	}
	return b.Commit()
}

// removeExpunged drops the messages expunged after st.ModSeq, from the tombstones; when
// those are pruned, it compares the index with the mailbox's UIDs. It returns how many
// it dropped and the MODSEQ up to which it looked (0 when it did not).
func (ix *Indexer) removeExpunged(ctx context.Context, account string, mailbox uint64, st MailboxState) (uint32, uint64, error) {
	if st.LastUID == 0 {
		return 0, 0, nil
	}
	ix.metadataCalls.Add(1)
	res, err := ix.meta.ListVanished(ctx, &metadatapb.ListVanishedRequest{Account: account, MailboxId: mailbox, SinceModseq: st.ModSeq,
		Uids: []*metadatapb.UidRange{{First: 1, Last: st.LastUID}}})
	if err != nil {
		return 0, 0, fmt.Errorf("list vanished: %w", err)
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
			return 0, 0, err
		}
	}
	b := ix.idx.NewBatch()
	for _, uid := range gone {
		if err := b.Remove(account, mailbox, uid); err != nil {
			return 0, 0, err
		}
	}
	if err := b.Commit(); err != nil {
		return 0, 0, err
	}
	ix.removed.Add(uint64(len(gone)))
	return uint32(len(gone)), res.GetHighestModseq(), nil
}

// unlisted returns the UIDs up to last the index holds docs of but the mailbox no longer
// has.
func (ix *Indexer) unlisted(ctx context.Context, account string, mailbox uint64, last uint32) ([]uint32, error) {
	present := map[uint32]bool{}
	after := uint32(0)
	for {
		ix.metadataCalls.Add(1)
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

// indexNew indexes the messages above st.LastUID, committing the state with every batch;
// under ix.syncing.
// With records handed over by the ingest path of this process (RecentBodies.KeepAppended)
// it lists the UIDs above st.LastUID and fetches only the records not handed over
// (recentrecords.go); otherwise it fetches them all.
func (ix *Indexer) indexNew(ctx context.Context, account string, mailbox uint64, st MailboxState, progress func(n int)) error {
	b := ix.idx.NewBatch()
	n := 0
	doc := ix.doc
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
	add := func(rec *metadatapb.MessageRecord) error {
		if rec.GetUid() <= st.LastUID {
			return nil
		}
		ix.fetched.Add(1)
		t0 := time.Now()
		err := ExtractInto(ctx, doc, ix.blobs, rec)
		if err != nil {
			ix.logger.Warn("search index: message not indexed, always a candidate", "account", account, "mailbox", mailbox, "uid", rec.GetUid(), "err", err)
			err = b.Skip(account, mailbox, rec.GetUid())
		} else {
			err = b.Add(account, mailbox, rec.GetUid(), doc)
			st.Docs++
		}
		if err != nil {
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
		return nil
	}
	var err error
	if ix.recent != nil && ix.recent.hasRecords(account, mailbox) {
		err = ix.listNew(ctx, account, mailbox, &st, add)
	} else {
		err = ix.fetchRecords(ctx, account, mailbox, []*metadatapb.UidRange{{First: st.LastUID + 1, Last: 0xFFFFFFFF}}, add)
	}
	if err != nil {
		b.b.Close()
		return err
	}
	return flush()
}

// fetchRecords reads the records of uids with their structure (FetchMessages) and gives
// them to add in UID order.
func (ix *Indexer) fetchRecords(ctx context.Context, account string, mailbox uint64, uids []*metadatapb.UidRange, add func(*metadatapb.MessageRecord) error) error {
	ix.metadataCalls.Add(1)
	stream, err := ix.meta.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{Account: account, MailboxId: mailbox,
		Uids: uids, WithStructure: true})
	if err != nil {
		return fmt.Errorf("fetch messages: %w", err)
	}
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch messages: %w", err)
		}
		if err := add(rec); err != nil {
			return err
		}
	}
}

// listNew gives add the records of the messages above st.LastUID the mailbox holds now
// (ListMessages, a page at a time): those handed over by the ingest path from memory, the
// others from FetchMessages. A handed record of a message listed no more (expunged
// meanwhile) is dropped: the index holds the messages the listing found, and an expunge
// after the listing comes with its own change, as after a FetchMessages.
func (ix *Indexer) listNew(ctx context.Context, account string, mailbox uint64, st *MailboxState, add func(*metadatapb.MessageRecord) error) error {
	after := st.LastUID
	for {
		ix.metadataCalls.Add(1)
		list, err := ix.meta.ListMessages(ctx, &metadatapb.ListMessagesRequest{Account: account, MailboxId: mailbox, AfterUid: after, Limit: fetchBatch})
		if err != nil {
			return fmt.Errorf("list messages: %w", err)
		}
		uids := list.GetUids()
		if list.GetMailbox().GetUidValidity() != st.UIDValidity {
			// Changed since the sync compared it: the next (full) sync starts anew.
			return status.Error(codes.NotFound, "mailbox has a new UIDVALIDITY")
		}
		recs := make([]*metadatapb.MessageRecord, len(uids))
		var missing []*metadatapb.UidRange
		for i, uid := range uids {
			recs[i] = ix.recent.takeRecord(account, mailbox, st.UIDValidity, uid)
			if recs[i] != nil {
				continue
			}
			if k := len(missing) - 1; k >= 0 && missing[k].Last+1 == uid {
				missing[k].Last = uid
			} else {
				missing = append(missing, &metadatapb.UidRange{First: uid, Last: uid})
			}
		}
		if len(missing) > 0 {
			fetched := map[uint32]*metadatapb.MessageRecord{}
			err := ix.fetchRecords(ctx, account, mailbox, missing, func(rec *metadatapb.MessageRecord) error {
				fetched[rec.GetUid()] = rec
				return nil
			})
			if err != nil {
				return err
			}
			for i, uid := range uids {
				if recs[i] == nil {
					// Expunged between the listing and the fetch: not stored, not indexed.
					recs[i] = fetched[uid]
				}
			}
		}
		for _, rec := range recs {
			if rec == nil {
				continue
			}
			if err := add(rec); err != nil {
				return err
			}
		}
		if len(uids) > 0 {
			after = uids[len(uids)-1]
		}
		if !list.GetMore() || len(uids) == 0 {
			ix.recent.dropRecordsThrough(account, mailbox, after)
			return nil
		}
	}
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
