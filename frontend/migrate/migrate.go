// Package migrate copies an account from another IMAP server (Dovecot, a hosted service)
// into a Strata account, with go-imap v2's imapclient on the source side and
// frontend/importer, the ingest path of the frontends, on the target side.
//
// What is copied: every selectable folder with its messages (bodies byte for byte,
// flags and keywords, internal dates), the folders' special use (RFC 6154) and the
// subscriptions (RFC 9051 6.3.7, from LIST-EXTENDED RFC 5258). A target mailbox that has
// never held a message takes the source folder's UIDVALIDITY and each message its source
// UID (ImportMessages), so clients that synced from the source keep their caches.
//
// Invariants:
//
//   - Resumable and incremental: each target mailbox records what was copied from which
//     source UIDVALIDITY (importer.State) before the first batch and after every committed
//     one; a later run copies only source UIDs above it (and the failed ones, below), and
//     recognises by source UID a batch committed after the last record. A source folder
//     with another UIDVALIDITY is copied again in full.
//   - Every copied message carries its source UID in its own record, written by the same
//     ImportMessages command that stores it (MessageIndex.source_uid), whether it kept its
//     UID or got a new one (a target mailbox that already held mail). That is the
//     mailbox's source-UID -> UID map: it is atomic with the copy (no batch is mapped and
//     not stored, or stored and not mapped), costs a few bytes per message wherever the
//     message is, so it scales with the mailbox (1M messages: 1M small integers in the
//     store, read back in pages by ListMessages), and keeps the record annotation, limited
//     to 16 KiB, free of per-message data. A per-mailbox map kept beside the messages
//     would be a second structure to keep in step with every expunge and MOVE; the field
//     goes with the record, so a message expunged or moved away leaves the map with it (a
//     COPY does not carry it). Under a record written before source UIDs were kept, the
//     messages up to State.KeptThrough without one count as copied with their UIDs.
//   - Flag changes at the source are applied on every run to the copied messages by that
//     map, read with CHANGEDSINCE (RFC 7162 3.1.4) from the HIGHESTMODSEQ of the last run
//     when the source has CONDSTORE, else in full and compared.
//   - Expunges at the source are applied (Config.Expunge) only to messages in that map,
//     which are the source's by construction: mail delivered to Strata directly has no
//     source UID and is never touched, whatever its UID.
//   - The source is only read: SELECT for CONDSTORE and BODY.PEEK (RFC 9051 6.4.5), so not
//     even \Seen changes there.
//   - A message the source fails to FETCH is reported (Report.Failures), listed in the
//     record with why (State.Failed, at most importer.MaxFailed) and the run goes on; every
//     later run fetches it again, reports it while it fails, and drops it from the list
//     once it is copied or gone from the source. A failure the list has no room for keeps
//     State.LastUID below it, so the next run meets it again as a new message.
package migrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/importer"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Defaults of Config.
const (
	DefaultBatchMessages  = 64
	DefaultMaxMessageSize = 64 << 20
	spoolMemory           = 256 << 10 // a body above this spills to a file in SpoolDir
	// maxReconnects bounds how often a run logs in again after the source closed the
	// connection (Dovecot answers a message it cannot read with BYE).
	maxReconnects = 100
)

// Config is one account's copy.
type Config struct {
	Source Source
	Target *importer.Target
	// BatchMessages bounds one ImportMessages command, and what is spooled at once (twice:
	// one batch is fetched while the one before is committed); each body holds at most
	// 256 KiB of memory, the rest in a file in SpoolDir.
	BatchMessages  int
	MaxMessageSize int64
	SpoolDir       string // "" : the system's temporary directory
	// Expunge applies the source's expunges to the target (package comment).
	Expunge  bool
	Progress func(Progress)
	Log      *slog.Logger
}

// Progress is reported after each committed batch.
type Progress struct {
	Folder string
	// Done of Total messages of the folder to copy in this run; Bytes of them copied.
	Done, Total int
	Bytes       int64
}

// Report is the outcome of one run.
type Report struct {
	Folders  []FolderReport
	Failures []Failure
}

// FolderReport is what a run did in one folder.
type FolderReport struct {
	Source, Target string
	// Copied messages and their bytes, Retried of them listed as failed by an earlier run;
	// FlagsUpdated and Expunged messages.
	Copied       int
	Bytes        int64
	Retried      int
	FlagsUpdated int
	Expunged     int
	// UIDsKept: the target mailbox has the source's UIDVALIDITY, SourceUIDValidity, and its
	// copied messages their UIDs.
	UIDsKept          bool
	SourceUIDValidity uint32
	// SourceCount and TargetCount are the message counts at the end (STATUS MESSAGES and
	// the target mailbox): they agree unless messages failed or mail arrived in either.
	SourceCount, TargetCount uint32
}

// Failure is what could not be copied.
type Failure struct {
	Folder string
	UID    uint32 // 0: the whole folder
	Err    string
	// Retried: the message failed in an earlier run too.
	Retried bool
}

func (f Failure) String() string {
	switch {
	case f.UID == 0:
		return fmt.Sprintf("%s: %s", f.Folder, f.Err)
	case f.Retried:
		return fmt.Sprintf("%s UID %d (failed before too): %s", f.Folder, f.UID, f.Err)
	}
	return fmt.Sprintf("%s UID %d: %s", f.Folder, f.UID, f.Err)
}

// Run copies the source account into the target account.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.BatchMessages <= 0 {
		cfg.BatchMessages = DefaultBatchMessages
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c, err := cfg.Source.dial()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, c: c, report: &Report{}, condstore: c.Caps().Has(imap.CapCondStore)}
	defer r.closeClient()
	// imapclient takes no context: closing the connection ends whatever waits on it.
	stop := context.AfterFunc(ctx, r.closeClient)
	defer stop()
	err = r.all(ctx)
	if ctx.Err() != nil {
		return r.report, ctx.Err()
	}
	return r.report, err
}

type run struct {
	cfg       Config
	report    *Report
	condstore bool
	// c is the connection to the source: replaced by reconnect (only by the goroutine that
	// uses it), closed by closeClient from any.
	mu         sync.Mutex
	c          *imapclient.Client
	closed     bool
	reconnects int
}

// closeClient closes the connection to the source, and any that replaces it later.
func (r *run) closeClient() {
	r.mu.Lock()
	r.closed = true
	c := r.c
	r.mu.Unlock()
	c.Close()
}

// reconnect logs in again after the source closed the connection, and selects folder,
// which must still have uidValidity.
func (r *run) reconnect(folder string, uidValidity uint32) error {
	if r.reconnects >= maxReconnects {
		return fmt.Errorf("the source closed the connection %d times; giving up", r.reconnects)
	}
	r.reconnects++
	c, err := r.cfg.Source.dial()
	if err != nil {
		return err
	}
	r.mu.Lock()
	old, closed := r.c, r.closed
	r.c = c
	r.mu.Unlock()
	old.Close()
	if closed {
		c.Close()
		return errors.New("interrupted")
	}
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true, CondStore: r.condstore}).Wait()
	if err != nil {
		return fmt.Errorf("select again after a reconnection: %w", err)
	}
	if sel.UIDValidity != uidValidity {
		return fmt.Errorf("UIDVALIDITY changed during the copy (%d, now %d)", uidValidity, sel.UIDValidity)
	}
	return nil
}

// folder is one source folder to copy.
type folder struct {
	source, target string
	specialUse     string
	subscribed     bool
}

func (r *run) all(ctx context.Context) error {
	folders, subscriptions, err := r.folders()
	if err != nil {
		return err
	}
	boxes, subs, err := r.cfg.Target.Mailboxes(ctx)
	if err != nil {
		return err
	}
	for _, f := range folders {
		if err := r.folder(ctx, f, boxes[f.target]); err != nil {
			if ctx.Err() != nil {
				return err
			}
			r.cfg.Log.Warn("folder not copied", "folder", f.source, "err", err)
			r.report.Failures = append(r.report.Failures, Failure{Folder: f.source, Err: err.Error()})
		}
	}
	// The subscription list becomes the source's (RFC 9051 6.3.7), names that are no
	// folder included.
	if subscriptions != nil {
		for name := range subscriptions {
			if !subs[name] {
				if err := r.cfg.Target.SetSubscribed(ctx, name, true); err != nil {
					return err
				}
			}
		}
		for name := range subs {
			if !subscriptions[name] {
				if err := r.cfg.Target.SetSubscribed(ctx, name, false); err != nil {
					return err
				}
			}
		}
	}
	return r.verify(ctx)
}

// specialUses are the RFC 6154 2 attributes a folder's special use is taken from.
var specialUses = []imap.MailboxAttr{imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts,
	imap.MailboxAttrFlagged, imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash}

// folders lists the source's selectable folders, INBOX first, and its subscriptions by
// target name (nil when the source cannot tell them: no LIST-EXTENDED, RFC 5258).
func (r *run) folders() ([]folder, map[string]bool, error) {
	caps := r.c.Caps()
	opts := &imap.ListOptions{}
	extended := caps.Has(imap.CapListExtended) || caps.Has(imap.CapIMAP4rev2)
	if extended {
		opts.ReturnSubscribed = true // RFC 5258 3.4
	}
	if caps.Has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true // RFC 6154 5.1
	}
	list, err := r.c.List("", "*", opts).Collect()
	if err != nil {
		return nil, nil, fmt.Errorf("list source folders: %w", err)
	}
	var subscriptions map[string]bool
	if extended {
		subscriptions = map[string]bool{}
	}
	var out []folder
	for _, l := range list {
		f := folder{source: l.Mailbox, target: targetName(l.Mailbox, l.Delim)}
		selectable := true
		for _, a := range l.Attrs {
			switch {
			case a == imap.MailboxAttrNoSelect || a == imap.MailboxAttrNonExistent:
				selectable = false
			case a == imap.MailboxAttrSubscribed:
				f.subscribed = true
			case slices.Contains(specialUses, a) && f.specialUse == "":
				f.specialUse = string(a)
			}
		}
		if f.subscribed && extended {
			subscriptions[f.target] = true
		}
		if selectable {
			out = append(out, f)
		}
	}
	if extended {
		// Subscribed names that are not folders: LIST (SUBSCRIBED) lists them \NonExistent
		// (RFC 5258 3.1).
		subs, err := r.c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
		if err != nil {
			return nil, nil, fmt.Errorf("list source subscriptions: %w", err)
		}
		for _, l := range subs {
			subscriptions[targetName(l.Mailbox, l.Delim)] = true
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].target == "INBOX") != (out[j].target == "INBOX") {
			return out[i].target == "INBOX"
		}
		return out[i].target < out[j].target
	})
	return out, subscriptions, nil
}

// targetName is the Strata name of a source folder: "/" as the hierarchy delimiter, INBOX
// in capitals (RFC 9051 5.1: INBOX is case-insensitive).
func targetName(name string, delim rune) string {
	if delim != 0 && delim != '/' {
		name = strings.ReplaceAll(name, string(delim), "/")
	}
	if first, rest, _ := strings.Cut(name, "/"); strings.EqualFold(first, "INBOX") {
		if rest == "" && !strings.Contains(name, "/") {
			return "INBOX"
		}
		return "INBOX/" + rest
	}
	return name
}

// folder copies one folder.
func (r *run) folder(ctx context.Context, f folder, box *metadatapb.Mailbox) error {
	if err := r.ensureConnected(); err != nil {
		return err
	}
	t := r.cfg.Target
	rep := FolderReport{Source: f.source, Target: f.target}
	defer func() { r.report.Folders = append(r.report.Folders, rep) }()
	if box == nil || box.GetNoselect() {
		var err error
		if box, err = t.EnsureMailbox(ctx, f.target, f.specialUse); err != nil {
			return err
		}
	}
	sel, err := r.c.Select(f.source, &imap.SelectOptions{ReadOnly: true, CondStore: r.condstore}).Wait()
	if err != nil {
		return fmt.Errorf("select: %w", err)
	}
	rep.SourceUIDValidity = sel.UIDValidity
	st, err := t.State(ctx, box.GetId())
	if err != nil {
		return err
	}
	if st == nil || st.UIDValidity != sel.UIDValidity {
		if st != nil {
			r.cfg.Log.Warn("source UIDVALIDITY changed: copying the folder again", "folder", f.source, "was", st.UIDValidity, "now", sel.UIDValidity)
		}
		st = &importer.State{
			Source: r.cfg.Source.String() + "/" + f.source, UIDValidity: sel.UIDValidity,
			TargetUIDNext: box.GetUidNext(), FirstTargetUID: box.GetUidNext(), SourceUIDs: true,
		}
		// Recorded before the first batch, so that a batch committed before the next
		// record is recognised from FirstTargetUID on.
		if err := t.SetState(ctx, box.GetId(), st); err != nil {
			return err
		}
	}
	copied := &copyMap{}
	if st.LastUID > 0 || len(st.Failed) > 0 || box.GetUidNext() > st.TargetUIDNext {
		if copied, err = r.copiedMessages(ctx, box, st); err != nil {
			return err
		}
	}
	// The source's UIDs, for its expunges and to drop failed messages it no longer has.
	var still []uint32
	if len(copied.bySource) > 0 && r.cfg.Expunge || len(st.Failed) > 0 {
		if still, err = r.sourceUIDs(); err != nil {
			return err
		}
	}
	if len(copied.bySource) > 0 {
		if err := r.syncOld(ctx, box, st, copied, still, &rep); err != nil {
			return err
		}
	}
	todo, err := r.toCopy(f, st, copied, still)
	if err != nil {
		return err
	}
	if err := r.copyNew(ctx, f, box, st, todo, &rep); err != nil {
		return err
	}
	st.HighestModSeq = sel.HighestModSeq
	return t.SetState(ctx, box.GetId(), st)
}

// copyMap is the source-UID -> UID map of a target mailbox: the messages copied under its
// record, known by the source UID each carries (importer.State.SourceUIDs), and under a
// record from before source UIDs were kept, the messages up to KeptThrough, whose UIDs
// are the source's. Mail delivered to the mailbox directly is not in it.
type copyMap struct {
	listing  *importer.Listing
	bySource []sourceRef // sorted by source UID
}

// sourceRef is a copied message: its source UID and its index in the listing.
type sourceRef struct {
	source uint32
	at     int32
}

// refs returns the messages copied from the source message uid: one, or more after a
// failed record let a batch be committed twice.
func (m *copyMap) refs(uid uint32) []sourceRef {
	i, _ := slices.BinarySearchFunc(m.bySource, uid, func(r sourceRef, u uint32) int { return cmp.Compare(r.source, u) })
	j := i
	for j < len(m.bySource) && m.bySource[j].source == uid {
		j++
	}
	return m.bySource[i:j]
}

func (m *copyMap) has(uid uint32) bool { return len(m.refs(uid)) > 0 }

// copiedMessages reads the copy map of box from its messages (one listing, in pages).
func (r *run) copiedMessages(ctx context.Context, box *metadatapb.Mailbox, st *importer.State) (*copyMap, error) {
	l, err := r.cfg.Target.List(ctx, box.GetId())
	if err != nil {
		return nil, err
	}
	m := &copyMap{listing: l}
	for i, uid := range l.UIDs {
		switch source := l.SourceUIDs[i]; {
		case source != 0 && uid >= st.FirstTargetUID:
			m.bySource = append(m.bySource, sourceRef{source: source, at: int32(i)})
		case source == 0 && uid <= st.KeptThrough:
			m.bySource = append(m.bySource, sourceRef{source: uid, at: int32(i)})
		}
	}
	slices.SortFunc(m.bySource, func(a, b sourceRef) int { return cmp.Compare(a.source, b.source) })
	return m, nil
}

// sourceUIDs lists the UIDs of the selected source folder, ascending (RFC 9051 6.4.4 UID
// SEARCH ALL).
func (r *run) sourceUIDs() ([]uint32, error) {
	found, err := r.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("search source UIDs: %w", err)
	}
	all := found.AllUIDs()
	out := make([]uint32, len(all))
	for i, u := range all {
		out[i] = uint32(u)
	}
	slices.Sort(out)
	return out, nil
}

// syncOld applies the source's flag changes and (Config.Expunge) expunges since the last
// run to the messages copied before, whatever their UIDs here; still are the source's
// UIDs.
func (r *run) syncOld(ctx context.Context, box *metadatapb.Mailbox, st *importer.State, copied *copyMap, still []uint32, rep *FolderReport) error {
	if still == nil || len(still) > 0 { // a source folder now empty has no flags to read
		if err := r.syncFlags(ctx, box, st, copied, rep); err != nil {
			return err
		}
	}
	if !r.cfg.Expunge {
		return nil
	}
	// Expunges: the copied messages whose source UIDs the source no longer has.
	var gone []uint32
	for _, ref := range copied.bySource {
		if _, found := slices.BinarySearch(still, ref.source); !found {
			gone = append(gone, copied.listing.UIDs[ref.at])
		}
	}
	slices.Sort(gone)
	if err := r.cfg.Target.Expunge(ctx, box.GetId(), gone); err != nil {
		return fmt.Errorf("apply expunges: %w", err)
	}
	rep.Expunged = len(gone)
	return nil
}

// syncFlags applies the source's flag changes since the last run to the copied messages.
func (r *run) syncFlags(ctx context.Context, box *metadatapb.Mailbox, st *importer.State, copied *copyMap, rep *FolderReport) error {
	t := r.cfg.Target
	opts := &imap.FetchOptions{UID: true, Flags: true}
	if r.condstore && st.HighestModSeq > 0 {
		opts.ChangedSince = st.HighestModSeq // RFC 7162 3.1.4.1
	}
	// Up to the highest source UID copied; the flags are read one message at a time, not
	// held for the whole folder.
	var set imap.UIDSet
	set.AddRange(1, imap.UID(copied.bySource[len(copied.bySource)-1].source))
	changed := map[string][]uint32{}
	flagSets := map[string][]string{}
	cmd := r.c.Fetch(set, opts)
	for data := cmd.Next(); data != nil; data = cmd.Next() {
		var uid uint32
		var flags []imap.Flag
		hasFlags := false
		for item := data.Next(); item != nil; item = data.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = uint32(it.UID)
			case imapclient.FetchItemDataFlags:
				flags, hasFlags = it.Flags, true
			}
		}
		if !hasFlags {
			continue
		}
		want := sourceFlags(flags)
		for _, ref := range copied.refs(uid) {
			if sameFlags(want, copied.listing.Flags[ref.at]) {
				continue
			}
			key := strings.Join(want, " ")
			changed[key] = append(changed[key], copied.listing.UIDs[ref.at])
			flagSets[key] = want
		}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("fetch flags: %w", err)
	}
	for key, uids := range changed {
		slices.Sort(uids)
		if err := t.SetFlags(ctx, box.GetId(), uids, flagSets[key]); err != nil {
			return fmt.Errorf("apply flag changes: %w", err)
		}
		rep.FlagsUpdated += len(uids)
	}
	return nil
}

// toCopy lists the source messages to copy, ascending and once each: those an earlier run
// failed to copy (st.Failed) and those above st.LastUID (which may include failed ones,
// when st.Failed was full), leaving out the ones copied already (by a run that stopped
// before its record). It drops from st.Failed the messages the source no longer has
// (still: its UIDs) and those found copied.
func (r *run) toCopy(f folder, st *importer.State, copied *copyMap, still []uint32) ([]uint32, error) {
	var todo []uint32
	for _, failed := range slices.Clone(st.Failed) {
		if _, found := slices.BinarySearch(still, failed.UID); !found || copied.has(failed.UID) {
			r.cfg.Log.Info("message that failed before: gone from the source or copied", "folder", f.source, "uid", failed.UID)
			st.DropFailed(failed.UID)
			continue
		}
		todo = append(todo, failed.UID)
	}
	var set imap.UIDSet
	set.AddRange(imap.UID(st.LastUID+1), 0) // N:* may match the last message, below N (RFC 9051 6.4.4)
	found, err := r.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("list new messages: %w", err)
	}
	for _, u := range found.AllUIDs() {
		if uint32(u) > st.LastUID && !copied.has(uint32(u)) {
			todo = append(todo, uint32(u))
		}
	}
	slices.Sort(todo)
	return slices.Compact(todo), nil
}

// sourceFlags are the flags of a source message as stored: without \Recent, which is
// session state (RFC 3501 2.3.2) and not a flag a client may set.
func sourceFlags(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, string(f))
	}
	slices.Sort(out)
	return out
}

// sameFlags compares flag lists without order or case (RFC 9051 2.3.2: flags are
// case-insensitive).
func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	norm := func(l []string) []string {
		out := make([]string, len(l))
		for i, f := range l {
			out[i] = strings.ToLower(f)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(norm(a), norm(b))
}

// fetched is a batch of source messages read for one import.
type fetched struct {
	msgs     []importer.Message
	last     uint32 // the highest UID of the batch, failed ones included
	bytes    int64
	failures []Failure
	err      error
}

func (b *fetched) release() { closeAll(b.msgs) }

// copyNew copies the source messages todo (ascending): one goroutine fetches batches while
// the one before is committed. After each batch the record notes what was copied: LastUID
// moves to the batch's last UID, and failures go to st.Failed, successes leave it; a
// failure that does not fit in st.Failed stops LastUID below it for the rest of the run.
func (r *run) copyNew(ctx context.Context, f folder, box *metadatapb.Mailbox, st *importer.State, todo []uint32, rep *FolderReport) error {
	t := r.cfg.Target
	current, err := t.Mailbox(ctx, box.GetName())
	if err != nil || current == nil {
		return fmt.Errorf("mailbox %q: gone or unreadable: %v", box.GetName(), err)
	}
	if len(todo) == 0 {
		if current.GetUidNext() == 1 && current.GetUidValidity() != st.UIDValidity {
			// An empty source folder: its UIDVALIDITY all the same.
			_, err := t.Import(ctx, box.GetId(), nil, false, st.UIDValidity)
			return err
		}
		return nil
	}
	// A batch committed after the last record of a version that recorded no source UIDs:
	// recognised by its bodies.
	present := map[string]bool{}
	if !st.SourceUIDs && current.GetUidNext() > st.TargetUIDNext {
		if present, err = t.BlobKeys(ctx, box.GetId(), st.TargetUIDNext); err != nil {
			return err
		}
	}
	st.SourceUIDs = true
	uidNext, validity := current.GetUidNext(), current.GetUidValidity()
	// UIDs are kept while the mailbox is the source's: it has the source's UIDVALIDITY, or
	// has never held a message and takes it.
	keep := validity == st.UIDValidity || uidNext == 1

	var batches [][]uint32
	for b := range slices.Chunk(todo, r.cfg.BatchMessages) {
		batches = append(batches, b)
	}

	ch := make(chan *fetched, 1)
	fetchCtx, cancelFetch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		for _, uids := range batches {
			got := r.fetchBatch(f.source, st.UIDValidity, uids)
			select {
			case ch <- got:
			case <-fetchCtx.Done():
				got.release()
				return
			}
			if got.err != nil {
				return
			}
		}
	}()
	defer func() {
		cancelFetch()
		for b := range ch {
			b.release()
		}
		wg.Wait()
	}()

	done := 0
	held := false // LastUID stays below a failure st.Failed had no room for
	for b := range ch {
		if b.err != nil {
			return b.err
		}
		var fresh []importer.Message
		for _, m := range b.msgs {
			if present[t.Key(m.Body)] {
				m.Body.Close()
				continue // committed by an interrupted run
			}
			fresh = append(fresh, m)
		}
		// Those below UIDNEXT (mail delivered here meanwhile, or a message an earlier run
		// failed to copy) get new UIDs, the rest keep theirs; the kept ones go first, as
		// new UIDs raise UIDNEXT.
		split := len(fresh)
		if keep {
			split = sort.Search(len(fresh), func(i int) bool { return fresh[i].UID >= uidNext })
		}
		for _, part := range []struct {
			msgs []importer.Message
			kept bool
		}{{fresh[split:], true}, {fresh[:split], false}} {
			if len(part.msgs) == 0 {
				continue
			}
			var setValidity uint32
			if part.kept && validity != st.UIDValidity {
				setValidity = st.UIDValidity
			}
			resp, err := t.Import(ctx, box.GetId(), part.msgs, part.kept, setValidity)
			if err != nil {
				for _, m := range fresh {
					m.Body.Close()
				}
				return err
			}
			validity = resp.GetUidValidity()
			if n := len(resp.GetUids()); n > 0 {
				uidNext = max(uidNext, resp.GetUids()[n-1]+1)
			}
		}
		for _, m := range fresh {
			m.Body.Close()
		}
		for _, m := range b.msgs {
			if st.Failing(m.UID) {
				rep.Retried++
				st.DropFailed(m.UID)
			}
		}
		for _, fl := range b.failures {
			fl.Retried = st.Failing(fl.UID)
			if !st.NoteFailed(fl.UID, fl.Err) {
				held = true
				r.cfg.Log.Warn("too many failed messages to record: the next run meets this one again as new", "folder", f.source, "uid", fl.UID)
			}
			r.report.Failures = append(r.report.Failures, fl)
		}
		if !held {
			st.LastUID = max(st.LastUID, b.last)
		}
		st.TargetUIDNext = uidNext
		if err := t.SetState(ctx, box.GetId(), st); err != nil {
			return err
		}
		done += len(b.msgs) + len(b.failures)
		rep.Copied += len(fresh)
		rep.Bytes += b.bytes
		if r.cfg.Progress != nil {
			r.cfg.Progress(Progress{Folder: f.target, Done: done, Total: len(todo), Bytes: rep.Bytes})
		}
	}
	return nil
}

// fetchBatch reads the messages uids of the selected folder. When the batch's FETCH fails
// (a NO, or a BYE that ends the connection, after which it logs in again), each message is
// fetched alone, and those that fail again are reported.
func (r *run) fetchBatch(folder string, uidValidity uint32, uids []uint32) *fetched {
	b := &fetched{last: uids[len(uids)-1]}
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	msgs, err := r.fetchBodies(set)
	if err == nil {
		b.add(msgs, uids, folder)
		return b
	}
	closeAll(msgs)
	for _, u := range uids {
		if err != nil && isConnectionError(err) {
			if b.err = r.reconnect(folder, uidValidity); b.err != nil {
				return b
			}
		}
		var one []importer.Message
		one, err = r.fetchBodies(imap.UIDSetNum(imap.UID(u)))
		if err != nil {
			closeAll(one)
			r.cfg.Log.Warn("message not copied", "folder", folder, "uid", u, "err", err)
			b.failures = append(b.failures, Failure{Folder: folder, UID: u, Err: err.Error()})
			continue
		}
		b.add(one, []uint32{u}, folder)
	}
	if err != nil && isConnectionError(err) {
		b.err = r.reconnect(folder, uidValidity)
	}
	return b
}

// ensureConnected logs in again if the connection was lost after the last message of a
// folder.
func (r *run) ensureConnected() error {
	select {
	case <-r.c.Closed():
	default:
		return nil
	}
	if r.reconnects >= maxReconnects {
		return errors.New("the source closed the connection")
	}
	r.reconnects++
	c, err := r.cfg.Source.dial()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.c = c
	closed := r.closed
	r.mu.Unlock()
	if closed {
		c.Close()
		return errors.New("interrupted")
	}
	return nil
}

func closeAll(msgs []importer.Message) {
	for _, m := range msgs {
		m.Body.Close()
	}
}

// add takes msgs, those asked for as uids that the source sent; the others are failures.
func (b *fetched) add(msgs []importer.Message, uids []uint32, folder string) {
	got := map[uint32]bool{}
	for _, m := range msgs {
		got[m.UID] = true
		b.msgs = append(b.msgs, m)
		b.bytes += m.Body.Size()
	}
	for _, u := range uids {
		if !got[u] {
			b.failures = append(b.failures, Failure{Folder: folder, UID: u, Err: "the source sent no body (expunged meanwhile, or unreadable)"})
		}
	}
}

func isConnectionError(err error) bool {
	var imapErr *imap.Error
	return !errors.As(err, &imapErr)
}

// fetchBodies fetches the whole messages of set (BODY.PEEK[]: \Seen unchanged, RFC 9051
// 6.4.5) with their flags and internal dates, each body into a spool.
func (r *run) fetchBodies(set imap.UIDSet) ([]importer.Message, error) {
	section := &imap.FetchItemBodySection{Peek: true}
	cmd := r.c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{section}})
	var out []importer.Message
	for {
		data := cmd.Next()
		if data == nil {
			break
		}
		var m importer.Message
		var readErr error
		for item := data.Next(); item != nil; item = data.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				m.UID = uint32(it.UID)
			case imapclient.FetchItemDataFlags:
				m.Flags = sourceFlags(it.Flags)
			case imapclient.FetchItemDataInternalDate:
				m.Date = it.Time
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				spool, err := blobstore.NewSpillingSpool(r.cfg.SpoolDir, spoolMemory, r.cfg.MaxMessageSize)
				if err != nil {
					readErr = err
					continue
				}
				if _, err := io.Copy(spool, it.Literal); err != nil {
					spool.Close()
					readErr = fmt.Errorf("read body: %w", err)
					continue
				}
				m.Body = spool
			}
		}
		if m.Body == nil || m.UID == 0 || readErr != nil {
			if m.Body != nil {
				m.Body.Close()
			}
			continue
		}
		if m.Date.IsZero() {
			m.Date = time.Now()
		}
		out = append(out, m)
	}
	if err := cmd.Close(); err != nil {
		return out, err
	}
	return out, nil
}

// verify compares each copied folder's message count with the source's.
func (r *run) verify(ctx context.Context) error {
	if err := r.ensureConnected(); err != nil {
		return err
	}
	for i := range r.report.Folders {
		f := &r.report.Folders[i]
		data, err := r.c.Status(f.Source, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return fmt.Errorf("status of %q: %w", f.Source, err)
		}
		if data.NumMessages != nil {
			f.SourceCount = *data.NumMessages
		}
		box, err := r.cfg.Target.Mailbox(ctx, f.Target)
		if err != nil {
			return err
		}
		if box != nil {
			f.TargetCount = box.GetMessages()
			f.UIDsKept = box.GetUidValidity() == f.SourceUIDValidity
		}
	}
	return nil
}
