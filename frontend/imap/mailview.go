package imap

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Shared mailbox views (issue 14). A Server keeps one view per selected mailbox and user:
// the mailbox's UIDs, flags and MODSEQs, its HIGHESTMODSEQ and UIDNEXT, kept current by one
// Metadata.Watch stream that every session of this frontend with the mailbox selected
// shares. SELECT of a mailbox that is open here copies the view instead of listing the
// mailbox again; the first SELECT lists it in pages (ListMessages with a limit).
//
// Invariants:
//
//   - A view is keyed by owner, mailbox and user, not by mailbox alone: private \Seen
//     (proto/metadata.proto) makes the flags, and the feed, per user.
//   - Once ready, a view is the mailbox exactly as of seen, the MODSEQ its feed has
//     delivered up to. It is loaded page by page, each page read at or past the one before,
//     and the feed is replayed from the first page's HIGHESTMODSEQ; replaying a change
//     the view already holds changes nothing (apply), so the view is exact once the feed
//     has passed the last page's HIGHESTMODSEQ (needed), and only then may sessions join.
//   - A session joins under the view's lock: it copies the view as of seen and its feed
//     gets every batch after seen, so it misses no change and sees none twice.
//   - A session joins a view only at or past the HIGHESTMODSEQ that its own GetMailbox read
//     at SELECT, which is served at or past the frontend's read position
//     (frontend/metaclient/doc.go): so the copy holds every write acknowledged before the
//     session's login, and every write of this frontend acknowledged before the SELECT.
//   - When EXISTS, EXPUNGE and FETCH FLAGS may be sent (RFC 9051 7.4.1, 7.5.1) stays a
//     matter of each session: the view only queues batches in the session's changeFeed, and
//     the session applies them to its own copy where it may (sync.go).
//   - The view's messages are a msgList (msglist.go): a joining session shares its chunks
//     (copy on write, by chunk of 4,096 messages) instead of copying a million messages,
//     and flag slices are never changed in place (a change replaces the slice), so the
//     view and its sessions share them. A session that has applied every change of its
//     feed and holds what the view holds shares the view's chunks again (selected.rejoin,
//     sync.go), so idle sessions keep sharing as mail arrives, at any mailbox size: a
//     change costs each of them only the chunks it touches, and a compaction of the
//     view's flag sets, which copies every chunk, none (msgChunk.content).
//   - The view's rights are its user's rights on the mailbox as of aclVersion: those of the
//     listing's mailbox (Mailbox.my_rights and acl_version), then of each CHANGE_KIND_RIGHTS
//     its feed delivers (WatchRequest.follow_rights, with the version the view holds); they
//     only move to higher versions. aclWanted is the highest version this frontend has
//     learned otherwise (a SETACL or DELETEACL it made, a SELECT's GetMailbox): while
//     aclVersion is below it, the view's rights are stale and sessions read theirs from the
//     metadata service (acl.go, refreshRights).
//   - Neither lock is held while calling the metadata service or writing to a client. Lock
//     order: mailViews.mu, then mailView.mu, then changeFeed.mu.
//   - A view with no session is dropped mailViewLinger later, which ends its Watch stream;
//     Shutdown drops every view.

// defaultViewPageSize is how many messages one ListMessages page of a cold SELECT carries:
// ~1 MB.
const defaultViewPageSize = 65536

// viewPageSize is defaultViewPageSize, or a test's value (SetViewPageSize).
var viewPageSize atomic.Uint32

// defaultMailViewLinger is how long a view outlives its last session, so that a client that
// reconnects, or selects its mailboxes in turn, finds it open.
const defaultMailViewLinger = 10 * time.Second

// mailViewLinger is defaultMailViewLinger, or a test's value (SetMailViewLinger).
var mailViewLinger atomic.Int64

func init() {
	mailViewLinger.Store(int64(defaultMailViewLinger))
	viewPageSize.Store(defaultViewPageSize)
}

// errViewGone is a join of a view that stopped or was dropped meanwhile: the caller opens a
// new one.
var errViewGone = errors.New("mailbox view closed")

// viewKey names a view: a mailbox of an owner as user sees it.
type viewKey struct {
	owner     string
	mailboxID uint64
	user      string
}

// mailViews are a Server's open views.
type mailViews struct {
	mu    sync.Mutex
	views map[viewKey]*mailView
}

// mailView is one mailbox's shared view and its change feed.
type mailView struct {
	srv    *Server
	key    viewKey
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu sync.Mutex
	// refs are the sessions that hold the view (joined, or about to join).
	refs   int
	linger *time.Timer
	// gone: dropped, stopped or deleted; no session joins it any more.
	gone    bool
	loadErr error // why the load failed

	loaded bool
	ready  bool   // loaded, and seen >= needed
	needed uint64 // the highest HIGHESTMODSEQ of the pages

	uidValidity uint32
	uidNext     uint32
	seen        uint64 // the view is the mailbox as of this MODSEQ
	msgs        msgList
	// keywords counts the messages that have each keyword (RFC 9051 2.3.2), for FLAGS.
	keywords map[string]int

	subs map[*changeFeed]struct{}
	wake chan struct{} // closed and replaced whenever seen, ready or gone change

	// The user's rights on the mailbox (RFC 4314 2.1) as of aclVersion, once rightsKnown;
	// aclWanted and the rest: see the invariants above.
	rights      rights
	aclVersion  uint64
	rightsKnown bool
	aclWanted   uint64
	// deleted: the feed said the mailbox was deleted or the user may no longer read it;
	// stopped: the feed stopped for good. Either way its sessions cannot stay.
	deleted, stopped bool
	// retired: no longer among the open views (retire), so no ACL version is noted in it;
	// its sessions read their rights from the metadata service.
	retired bool
}

// viewRights is what a session reads of its view's rights before a command.
type viewRights struct {
	rights  rights
	version uint64
	known   bool // rights and version are set
	// current: the feed follows the mailbox, and no ACL version this frontend learned of is
	// newer than version.
	current bool
	// gone: the feed said the mailbox was deleted or the user may no longer read it.
	gone bool
}

// viewCopy is what a session copies from a view as it joins.
type viewCopy struct {
	uidValidity   uint32
	uidNext       uint32
	highestModSeq uint64
	msgs          msgList  // shared with the view (copy on write)
	keywords      []string // sorted
}

// acquire returns the open view of key with a reference for the caller, and opens it (and
// starts its feed) when there is none.
func (r *mailViews) acquire(srv *Server, key viewKey) *mailView {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.views[key]; v != nil {
		v.mu.Lock()
		if !v.gone {
			v.refs++
			if v.linger != nil {
				v.linger.Stop()
				v.linger = nil
			}
			v.mu.Unlock()
			return v
		}
		v.mu.Unlock()
	}
	if r.views == nil {
		r.views = map[viewKey]*mailView{}
	}
	v := newMailView(srv, key)
	v.refs = 1
	r.views[key] = v
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	go v.run(ctx)
	return v
}

func newMailView(srv *Server, key viewKey) *mailView {
	return &mailView{
		srv: srv, key: key, cancel: func() {}, done: make(chan struct{}),
		log:      srv.logger.With("mailbox", key.mailboxID, "owner", key.owner),
		keywords: map[string]int{},
		subs:     map[*changeFeed]struct{}{}, wake: make(chan struct{}),
	}
}

// release gives back a reference of acquire; the last one schedules the view's drop.
func (r *mailViews) release(v *mailView) {
	closing := v.srv.conns.Closing()
	r.mu.Lock()
	defer r.mu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.refs--
	if v.refs > 0 {
		return
	}
	linger := time.Duration(mailViewLinger.Load())
	if closing || v.gone || linger <= 0 {
		r.dropLocked(v)
		return
	}
	v.linger = time.AfterFunc(linger, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.refs == 0 {
			r.dropLocked(v)
		}
	})
}

// dropLocked closes v, with r.mu and v.mu held.
func (r *mailViews) dropLocked(v *mailView) {
	if r.views[v.key] == v {
		delete(r.views, v.key)
	}
	v.goneLocked()
	v.cancel()
}

// closeAll drops every view and waits for their feeds to end: the server is shutting down.
func (r *mailViews) closeAll() {
	r.mu.Lock()
	var done []chan struct{}
	for _, v := range r.views {
		v.mu.Lock()
		if v.linger != nil {
			v.linger.Stop()
		}
		r.dropLocked(v)
		v.mu.Unlock()
		done = append(done, v.done)
	}
	r.mu.Unlock()
	for _, d := range done {
		<-d
	}
}

// counts returns how many views are open with sessions in them and how many linger without
// (each has its own Watch stream), for the metrics.
func (r *mailViews) counts() (active, lingering int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.views {
		v.mu.Lock()
		if v.refs > 0 {
			active++
		} else {
			lingering++
		}
		v.mu.Unlock()
	}
	return active, lingering
}

// forget removes v from the open views, so that the next SELECT opens a new one.
func (r *mailViews) forget(v *mailView) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.views[v.key] == v {
		delete(r.views, v.key)
	}
}

// goneLocked marks the view closed to new sessions and wakes those waiting to join.
func (v *mailView) goneLocked() {
	v.gone = true
	v.wakeLocked()
}

func (v *mailView) wakeLocked() {
	close(v.wake)
	v.wake = make(chan struct{})
}

// run loads the mailbox and follows its changes until the view is dropped or the feed
// stops for good.
func (v *mailView) run(ctx context.Context) {
	defer close(v.done)
	defer atTestHook("mail view closed")
	defer v.srv.recoverPanic(v.log, "mailbox change feed", func(any) { v.stop(feedFailedText) })
	if err := v.load(ctx); err != nil {
		v.mu.Lock()
		v.loadErr = err
		v.goneLocked()
		v.mu.Unlock()
		v.srv.views.forget(v)
		return
	}
	v.follow(ctx)
}

// load reads the mailbox in pages of viewPageSize messages (ListMessages), each call retried like a
// session's (withRetry).
func (v *mailView) load(ctx context.Context) error {
	after, more := uint32(0), true
	for more {
		var page *metadatapb.ListMessagesResponse
		err := metadataRetry.Do(ctx, func(ctx context.Context) error {
			var err error
			page, err = v.srv.cfg.Metadata.ListMessages(ctx, &metadatapb.ListMessagesRequest{
				Account: v.key.owner, MailboxId: v.key.mailboxID, User: v.key.user, AfterUid: after, Limit: viewPageSize.Load(),
				FlagSetDictionary: true,
			})
			return err
		})
		if err != nil {
			return err
		}
		n := len(page.GetUids())
		if !consistentPage(page, after) {
			return status.Error(codes.Internal, "inconsistent mailbox listing")
		}
		v.addPage(page, after == 0)
		atTestHook("mail view page")
		if n > 0 {
			after = page.GetUids()[n-1]
		}
		more = page.GetMore()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.loaded = true
	v.checkReadyLocked()
	return nil
}

// consistentPage reports whether a ListMessages page of the messages above after is well
// formed: UIDs ascending above after, a MODSEQ and flags for each, and more only after some
// messages. Its flags are a flag-set dictionary, or, from a metadata service that predates
// the dictionary, a flag set per message.
func consistentPage(page *metadatapb.ListMessagesResponse, after uint32) bool {
	uids := page.GetUids()
	n := len(uids)
	if len(page.GetModseqs()) != n || page.GetMore() && n == 0 {
		return false
	}
	for _, uid := range uids {
		if uid <= after {
			return false
		}
		after = uid
	}
	if len(page.GetFlags()) > 0 || len(page.GetFlagSets()) == 0 {
		return len(page.GetFlags()) == n && len(page.GetFlagSetIndexes()) == 0
	}
	if len(page.GetFlagSetIndexes()) != n {
		return false
	}
	for _, k := range page.GetFlagSetIndexes() {
		if int(k) >= len(page.GetFlagSets()) {
			return false
		}
	}
	return true
}

// addPage appends a page of the listing (consistentPage); the first page sets the feed's
// starting point.
func (v *mailView) addPage(page *metadatapb.ListMessagesResponse, first bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	mb := page.GetMailbox()
	if first {
		v.uidValidity = mb.GetUidValidity()
		v.seen = mb.GetHighestModseq()
	}
	v.needed = max(v.needed, mb.GetHighestModseq())
	v.uidNext = max(v.uidNext, mb.GetUidNext())
	if !v.rightsKnown || mb.GetAclVersion() > v.aclVersion {
		v.rights, v.aclVersion, v.rightsKnown = rights(mb.GetMyRights()), mb.GetAclVersion(), true
	}
	if len(page.GetFlags()) > 0 {
		for i, fs := range page.GetFlags() {
			flags := fs.GetFlags()
			v.msgs.append(page.GetUids()[i], page.GetModseqs()[i], flags)
			v.countKeywords(flags, 1)
		}
		v.msgs.sets.live = len(v.msgs.sets.list)
		return
	}
	// The page's dictionary onto the view's sets: each set interned and its keywords
	// counted once, each message an index.
	sets := page.GetFlagSets()
	refs := make([]uint32, len(sets))
	counts := make([]int, len(sets))
	for k, fs := range sets {
		refs[k] = v.msgs.intern(fs.GetFlags())
	}
	msgRefs := make([]uint32, len(page.GetFlagSetIndexes()))
	for m, k := range page.GetFlagSetIndexes() {
		msgRefs[m] = refs[k]
		counts[k]++
	}
	v.msgs.appendAll(page.GetUids(), page.GetModseqs(), msgRefs)
	for k, fs := range sets {
		v.countKeywords(fs.GetFlags(), counts[k])
	}
	v.msgs.sets.live = len(v.msgs.sets.list)
}

func (v *mailView) countKeywords(flags []string, delta int) {
	if delta == 0 {
		return
	}
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) {
			v.keywords[f] += delta
			if v.keywords[f] <= 0 {
				delete(v.keywords, f)
			}
		}
	}
}

func (v *mailView) checkReadyLocked() {
	if v.loaded && !v.ready && v.seen >= v.needed {
		v.ready = true
		v.wakeLocked()
	}
}

// follow runs the view's Watch stream from seen until ctx ends or the feed stops for good.
// The stream carries the user's rights as well (follow_rights): each new stream sends them
// first when the ACL changed since the version the view holds, so a reconnect misses no ACL
// change either.
func (v *mailView) follow(ctx context.Context) {
	req := &metadatapb.WatchRequest{Account: v.key.owner, MailboxId: v.key.mailboxID, User: v.key.user, FollowRights: true}
	// A broken stream resumes from the last MODSEQ seen, so no change is lost.
	followStream(ctx, v.log, "mailbox change feed",
		func(ctx context.Context) (recver[metadatapb.ChangeBatch], error) {
			atTestHook("mail view watch")
			v.mu.Lock()
			req.SinceModseq, req.KnownAclVersion = v.seen, v.aclVersion
			v.mu.Unlock()
			return v.srv.cfg.Metadata.Watch(ctx, req)
		},
		func(batch *metadatapb.ChangeBatch) {
			atTestHook("feed")
			v.srv.metrics.observeFeedLag(batch.GetTimestampUnixNano())
			v.apply(batch)
		},
		func(err error) bool {
			switch status.Code(err) {
			case codes.NotFound, codes.PermissionDenied:
				// Deleted, or no longer readable by the view's user (Watch needs r, RFC
				// 4314 4): its sessions cannot stay in it.
				v.apply(&metadatapb.ChangeBatch{Changes: []*metadatapb.Change{{Kind: metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED}}})
				return true
			case codes.OutOfRange:
				v.stop(feedBehindText)
				return true
			case codes.InvalidArgument, codes.Unimplemented:
				// A request the service refuses, or a service without Watch: no retry mends it.
				v.log.Error("mailbox change feed failed", "err", err)
				v.stop(feedFailedText)
				return true
			}
			return false
		})
}

// apply brings the view up to a batch and queues the batch for every session in the view.
// Replayed changes the view already holds change nothing: an APPEND of a UID it has, a
// FLAGS change not newer than the message's MODSEQ, an EXPUNGE of a UID it lacks.
func (v *mailView) apply(batch *metadatapb.ChangeBatch) {
	deleted := false
	func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		var expunged []uint32
		for _, ch := range batch.GetChanges() {
			uid := ch.GetUid()
			i, found := v.msgs.search(uid)
			switch ch.GetKind() {
			case metadatapb.ChangeKind_CHANGE_KIND_APPEND:
				if found {
					continue
				}
				// At the end, except while replaying the changes of a paged load: a UID
				// that its page missed because it was expunged, whose EXPUNGE follows.
				v.msgs.insert(i, uid, ch.GetModseq(), ch.GetFlags())
				v.countKeywords(ch.GetFlags(), 1)
				v.uidNext = max(v.uidNext, uid+1) // RFC 9051 2.3.1.1
			case metadatapb.ChangeKind_CHANGE_KIND_FLAGS:
				if !found || ch.GetModseq() <= v.msgs.modseq(i) {
					continue
				}
				v.countKeywords(v.msgs.flags(i), -1)
				v.countKeywords(ch.GetFlags(), 1)
				v.msgs.setFlags(i, ch.GetFlags(), ch.GetModseq())
			case metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE:
				if found {
					expunged = append(expunged, uid)
				}
			case metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED:
				deleted = true
				v.deleted = true
			case metadatapb.ChangeKind_CHANGE_KIND_RIGHTS:
				// RFC 4314 4: the rights each later command of the view's sessions checks.
				if !v.rightsKnown || ch.GetAclVersion() >= v.aclVersion {
					v.rights, v.aclVersion, v.rightsKnown = rights(ch.GetRights()), ch.GetAclVersion(), true
				}
			}
		}
		v.removeLocked(expunged)
		v.msgs.compactSets()
		v.seen = max(v.seen, batch.GetHighestModseq())
		v.checkReadyLocked()
		for f := range v.subs {
			f.add(batch)
		}
		if deleted {
			v.goneLocked()
		}
		v.wakeLocked()
	}()
	if deleted {
		v.srv.views.forget(v)
	}
}

// removeLocked removes the messages uids (in any order) in one pass.
func (v *mailView) removeLocked(uids []uint32) {
	if len(uids) == 0 {
		return
	}
	idx := v.msgs.indexesOf(uids)
	for _, i := range idx {
		v.countKeywords(v.msgs.flags(i), -1)
	}
	v.msgs.remove(idx)
}

// stop ends the view for good: its sessions are told why with their next update, and the
// next SELECT opens a new view.
func (v *mailView) stop(reason string) {
	v.mu.Lock()
	for f := range v.subs {
		f.stop(reason)
	}
	v.stopped = true
	v.goneLocked()
	v.mu.Unlock()
	v.srv.views.forget(v)
}

// join waits until the view is ready and holds the mailbox at least as of atLeast, then
// copies it and returns the copy with a feed of the changes after it, which calls onChange
// as they arrive. A view that failed to load returns its error; one that went away
// meanwhile errViewGone.
func (v *mailView) join(ctx context.Context, atLeast uint64, onChange func()) (*viewCopy, *changeFeed, error) {
	for {
		v.mu.Lock()
		switch {
		case v.loadErr != nil:
			err := v.loadErr
			v.mu.Unlock()
			return nil, nil, err
		case v.gone:
			v.mu.Unlock()
			return nil, nil, errViewGone
		case v.ready && v.seen >= atLeast:
			cp := &viewCopy{
				uidValidity:   v.uidValidity,
				uidNext:       v.uidNext,
				highestModSeq: v.seen,
				msgs:          v.msgs.share(),
				keywords:      slices.Sorted(maps.Keys(v.keywords)),
			}
			f := &changeFeed{view: v, seen: v.seen, wake: make(chan struct{}), onChange: onChange}
			v.subs[f] = struct{}{}
			v.mu.Unlock()
			return cp, f, nil
		}
		wake := v.wake
		v.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// sessionRights returns the view's rights for a session's next command.
func (v *mailView) sessionRights() viewRights {
	v.mu.Lock()
	defer v.mu.Unlock()
	return viewRights{
		rights: v.rights, version: v.aclVersion, known: v.rightsKnown,
		current: v.rightsKnown && v.aclVersion >= v.aclWanted && !v.retired && !v.stopped,
		gone:    v.deleted,
	}
}

// noteACLVersion records that the mailbox's ACL reached version: until the feed delivers
// rights as of it, the view's rights are stale.
func (v *mailView) noteACLVersion(version uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.aclWanted = max(v.aclWanted, version)
}

// noteACLVersion records an ACL version of owner's mailbox in every view of it (one per
// user): this frontend changed its ACL (SETACL, DELETEACL), so each user's rights may have
// changed, and none of its sessions may use rights older than that (acl.go).
func (r *mailViews) noteACLVersion(owner string, mailboxID, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, v := range r.views {
		if key.owner == owner && key.mailboxID == mailboxID {
			v.noteACLVersion(version)
		}
	}
}

// open returns the open view of key, or nil when there is none; it takes no reference.
func (r *mailViews) open(key viewKey) *mailView {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.views[key]
}

// deletedUIDs returns the UIDs of the view's messages that have \Deleted, once the view is
// ready and holds the mailbox at least as of atLeast (as join waits for it), for STATUS
// DELETED (RFC 9051 6.3.11) without listing the mailbox. A view that went away meanwhile
// returns errViewGone, as does one of another UIDVALIDITY than uidValidity: the caller
// lists the mailbox.
func (v *mailView) deletedUIDs(ctx context.Context, uidValidity uint32, atLeast uint64) ([]uint32, error) {
	for {
		v.mu.Lock()
		switch {
		case v.gone || v.loadErr != nil || v.loaded && v.uidValidity != uidValidity:
			v.mu.Unlock()
			return nil, errViewGone
		case v.ready && v.seen >= atLeast:
			var uids []uint32
			for i, uid := range v.msgs.uids(0) {
				if slices.Contains(v.msgs.flags(i), `\Deleted`) {
					uids = append(uids, uid)
				}
			}
			v.mu.Unlock()
			return uids, nil
		}
		wake := v.wake
		v.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// leave removes a session's feed from the view and gives back its reference.
func (v *mailView) leave(f *changeFeed) {
	v.mu.Lock()
	delete(v.subs, f)
	v.mu.Unlock()
	v.srv.views.release(v)
}

// retire closes a view that no new session may join (its UIDVALIDITY is not the mailbox's).
func (v *mailView) retire() {
	v.mu.Lock()
	v.retired = true
	v.goneLocked()
	v.mu.Unlock()
	v.srv.views.forget(v)
}
