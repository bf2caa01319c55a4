// Package importer writes mail brought from elsewhere (`strata migrate` from another IMAP
// server, `strata import` from mbox and Maildir) into one Strata account, through the
// ingest path the frontends use (frontend/ingest: the body stored first, the metadata
// second) and the ImportMessages call, which may keep the source's UIDs and UIDVALIDITY.
//
// Invariants:
//
//   - A message is committed only after its body is durable in the blob store
//     (ingest.Committer); a batch is one ImportMessages command, all or nothing.
//   - What a copy has done is recorded in the target mailbox itself, in the shared
//     annotation StateEntry (RFC 5464), written after each committed batch: a run that is
//     interrupted starts again from it, and a message committed after the last record was
//     written is recognised by its source UID (or, under a record from before source UIDs
//     were kept, by its body's blob key: Target.BlobKeys) and not stored twice.
//   - A message's source UID is committed in the same ImportMessages command as the
//     message, into the message's own record: the source-UID -> UID map of a mailbox
//     (Target.List) is exactly its copied messages, whatever their UIDs, for any mailbox
//     size, and mail that was not imported has none. The State annotation stays small
//     (at most MaxFailed failures, no per-message data).
//   - Nothing here talks to a client or to a source server: the callers read the source.
package importer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// StateEntry is the annotation of a target mailbox that records a copy's progress.
const StateEntry = "/shared/vendor/strata/migration"

// State is what StateEntry holds.
type State struct {
	// Source names where the mailbox was copied from (URL and folder), for the operator.
	Source string `json:"source"`
	// UIDValidity is the source mailbox's UIDVALIDITY when the copy was made; another one
	// means the source mailbox was recreated and is copied again in full.
	UIDValidity uint32 `json:"uidvalidity"`
	// LastUID is the highest source UID copied, or found failing and listed in Failed;
	// every source UID up to it is copied or in Failed.
	LastUID uint32 `json:"last_uid"`
	// FirstTargetUID: the messages copied under this record (this source UIDVALIDITY)
	// have UIDs from it on in this mailbox; a source UID on a message below it is from an
	// earlier copy of a source mailbox recreated since.
	FirstTargetUID uint32 `json:"first_target_uid,omitempty"`
	// SourceUIDs: the record was written by a version that commits every message with
	// its source UID in the message's own record (Message.UID, MessageIndex.source_uid,
	// ListMessages source_uids), so the mailbox's source-UID -> UID map is read from the
	// mailbox itself, and a batch committed after the record is recognised by it. False
	// in a record of an earlier version: its messages copied with their UIDs are those up
	// to KeptThrough, and a batch committed after it is recognised by blob keys.
	SourceUIDs bool `json:"source_uids,omitempty"`
	// KeptThrough, of a record written before source UIDs were kept: every source message
	// with a UID up to it that was copied has the same UID here. It no longer grows.
	KeptThrough uint32 `json:"kept_through"`
	// Failed lists the source messages at or below LastUID that could not be copied, with
	// why; each run tries them again (at most MaxFailed of them: a failure that does not
	// fit keeps LastUID below it instead, so it is met again as a new message).
	Failed []FailedMessage `json:"failed,omitempty"`
	// HighestModSeq is the source's HIGHESTMODSEQ (RFC 7162) when its flags were last read.
	HighestModSeq uint64 `json:"highestmodseq,omitempty"`
	// TargetUIDNext is this mailbox's UIDNEXT after the last recorded batch: messages at or
	// above it may be a batch committed after the record was written.
	TargetUIDNext uint32 `json:"target_uidnext"`
}

// MaxFailed bounds State.Failed, and maxFailedReason the bytes of each reason, so that
// the record stays well under the annotation limit of 16 KiB (metadata/annotations.go).
const (
	MaxFailed       = 64
	maxFailedReason = 120
)

// FailedMessage is a source message that could not be copied.
type FailedMessage struct {
	UID    uint32 `json:"uid"`
	Reason string `json:"reason"`
}

// NoteFailed records in st.Failed that the source message uid failed for reason, and
// reports whether it is listed (a listed UID's reason is replaced; a new one needs room).
func (st *State) NoteFailed(uid uint32, reason string) bool {
	if len(reason) > maxFailedReason {
		cut := maxFailedReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut] + "..."
	}
	for i := range st.Failed {
		if st.Failed[i].UID == uid {
			st.Failed[i].Reason = reason
			return true
		}
	}
	if len(st.Failed) >= MaxFailed {
		return false
	}
	st.Failed = append(st.Failed, FailedMessage{UID: uid, Reason: reason})
	slices.SortFunc(st.Failed, func(a, b FailedMessage) int { return cmp.Compare(a.UID, b.UID) })
	return true
}

// Failing reports whether uid is in st.Failed.
func (st *State) Failing(uid uint32) bool {
	return slices.ContainsFunc(st.Failed, func(f FailedMessage) bool { return f.UID == uid })
}

// DropFailed removes uid from st.Failed.
func (st *State) DropFailed(uid uint32) {
	st.Failed = slices.DeleteFunc(st.Failed, func(f FailedMessage) bool { return f.UID == uid })
}

// Message is one message to import.
type Message struct {
	// UID is the source's UID, kept when the batch keeps UIDs and recorded with the
	// message in every case (MessageIndex.source_uid); 0 for sources without.
	UID   uint32
	Date  time.Time
	Flags []string
	Body  *blobstore.Spool
}

// Target is one Strata account being written to.
type Target struct {
	Metadata  metadatapb.MetadataClient
	Committer *ingest.Committer
	Account   string
	Tenant    string
	Retry     ingest.RetryFunc
	Log       *slog.Logger
}

// DefaultRetry retries a metadata call that failed in a way a retry may cure.
var DefaultRetry = ingest.RetryPolicy{
	Retryable:   []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Aborted},
	Attempts:    8,
	CallTimeout: time.Minute,
}

// ErrNotPermitted is the error of Open for an account the caller's identity may not
// write into (a tenant administrator's, for another tenant's account).
var ErrNotPermitted = errors.New("an administrator writes only into the accounts it administers: a tenant administrator into its own tenant's")

// Open looks up account and returns its Target.
func Open(ctx context.Context, md metadatapb.MetadataClient, committer *ingest.Committer, account string, log *slog.Logger) (*Target, error) {
	acct, err := md.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: account})
	if status.Code(err) == codes.PermissionDenied {
		// A tenant administrator writes only into its own tenant's accounts
		// (internal/authz).
		return nil, fmt.Errorf("%s: refused to this identity: %s: %w", account, status.Convert(err).Message(), ErrNotPermitted)
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", account, err)
	}
	return &Target{
		Metadata: md, Committer: committer, Account: acct.GetEmail(), Tenant: acct.GetTenant(),
		Retry: func(call func(ctx context.Context) error) error { return DefaultRetry.Do(ctx, call) },
		Log:   log,
	}, nil
}

// Mailboxes lists the account's mailboxes by name, and its subscriptions.
func (t *Target) Mailboxes(ctx context.Context) (map[string]*metadatapb.Mailbox, map[string]bool, error) {
	resp, err := t.Metadata.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: t.Account})
	if err != nil {
		return nil, nil, fmt.Errorf("list mailboxes of %s: %w", t.Account, err)
	}
	boxes := map[string]*metadatapb.Mailbox{}
	for _, b := range resp.GetMailboxes() {
		boxes[b.GetName()] = b
	}
	subs := map[string]bool{}
	for _, s := range resp.GetSubscriptions() {
		subs[s] = true
	}
	return boxes, subs, nil
}

// Mailbox returns the mailbox name, nil if there is none.
func (t *Target) Mailbox(ctx context.Context, name string) (*metadatapb.Mailbox, error) {
	box, err := t.Metadata.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: t.Account, Name: name})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get mailbox %q: %w", name, err)
	}
	return box, nil
}

// EnsureMailbox returns the mailbox name, created with specialUse (RFC 6154) if missing; a
// mailbox that exists keeps its special use.
func (t *Target) EnsureMailbox(ctx context.Context, name, specialUse string) (*metadatapb.Mailbox, error) {
	if box, err := t.Mailbox(ctx, name); err != nil || box != nil && !box.GetNoselect() {
		return box, err
	}
	var box *metadatapb.Mailbox
	err := t.Retry(func(ctx context.Context) error {
		var err error
		box, err = t.Metadata.CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{
			RequestId: t.Committer.NewRequestID(), Account: t.Account, Name: name, SpecialUse: specialUse,
		})
		return err
	})
	if status.Code(err) == codes.AlreadyExists {
		return t.Mailbox(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("create mailbox %q: %w", name, err)
	}
	return box, nil
}

// SetSubscribed subscribes or unsubscribes name (RFC 9051 6.3.7).
func (t *Target) SetSubscribed(ctx context.Context, name string, subscribed bool) error {
	err := t.Retry(func(ctx context.Context) error {
		_, err := t.Metadata.SetSubscribed(ctx, &metadatapb.SetSubscribedRequest{
			RequestId: t.Committer.NewRequestID(), Account: t.Account, Name: name, Subscribed: subscribed,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", name, err)
	}
	return nil
}

// State reads the copy state of mailbox; nil when it has none.
func (t *Target) State(ctx context.Context, mailbox uint64) (*State, error) {
	resp, err := t.Metadata.GetMetadata(ctx, &metadatapb.GetMetadataRequest{Account: t.Account, MailboxId: mailbox, Entries: []string{StateEntry}})
	if err != nil {
		return nil, fmt.Errorf("read the copy state: %w", err)
	}
	for _, e := range resp.GetEntries() {
		if e.GetName() != StateEntry || e.Value == nil {
			continue
		}
		var st State
		if err := json.Unmarshal(e.GetValue(), &st); err != nil {
			return nil, fmt.Errorf("copy state %s of mailbox %d: %w", StateEntry, mailbox, err)
		}
		return &st, nil
	}
	return nil, nil
}

// SetState records the copy state of mailbox.
func (t *Target) SetState(ctx context.Context, mailbox uint64, st *State) error {
	value, err := json.Marshal(st)
	if err != nil {
		return err
	}
	err = t.Retry(func(ctx context.Context) error {
		_, err := t.Metadata.SetMetadata(ctx, &metadatapb.SetMetadataRequest{
			RequestId: t.Committer.NewRequestID(), Account: t.Account, MailboxId: mailbox,
			Entries: []*metadatapb.MetadataEntry{{Name: StateEntry, Value: value}},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("record the copy state: %w", err)
	}
	return nil
}

// Listing is a mailbox's messages: UIDs ascending, their flags and their source UIDs
// (0: none).
type Listing struct {
	Mailbox    *metadatapb.Mailbox
	UIDs       []uint32
	Flags      [][]string
	SourceUIDs []uint32
}

// List reads the UIDs, flags and source UIDs of mailbox, in pages.
func (t *Target) List(ctx context.Context, mailbox uint64) (*Listing, error) {
	out := &Listing{}
	var after uint32
	for {
		resp, err := t.Metadata.ListMessages(ctx, &metadatapb.ListMessagesRequest{
			Account: t.Account, MailboxId: mailbox, AfterUid: after, Limit: 16384, FlagSetDictionary: true, SourceUids: true,
		})
		if err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		if out.Mailbox == nil {
			out.Mailbox = resp.GetMailbox()
		}
		for i, uid := range resp.GetUids() {
			var flags []string
			switch {
			case len(resp.GetFlagSetIndexes()) > i:
				flags = resp.GetFlagSets()[resp.GetFlagSetIndexes()[i]].GetFlags()
			case len(resp.GetFlags()) > i:
				flags = resp.GetFlags()[i].GetFlags()
			}
			var source uint32
			if len(resp.GetSourceUids()) > i {
				source = resp.GetSourceUids()[i]
			}
			out.UIDs = append(out.UIDs, uid)
			out.Flags = append(out.Flags, flags)
			out.SourceUIDs = append(out.SourceUIDs, source)
		}
		if !resp.GetMore() || len(resp.GetUids()) == 0 {
			return out, nil
		}
		after = resp.GetUids()[len(resp.GetUids())-1]
	}
}

// BlobKeys returns the blob keys of mailbox's messages with UIDs from first on.
func (t *Target) BlobKeys(ctx context.Context, mailbox uint64, first uint32) (map[string]bool, error) {
	stream, err := t.Metadata.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{
		Account: t.Account, MailboxId: mailbox, Uids: []*metadatapb.UidRange{{First: first}},
	})
	if err != nil {
		return nil, fmt.Errorf("fetch message records: %w", err)
	}
	keys := map[string]bool{}
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("fetch message records: %w", err)
		}
		keys[rec.GetBlobKey()] = true
	}
}

// Key is the blob key a body is stored under in the account's tenant.
func (t *Target) Key(body *blobstore.Spool) string { return blobstore.Key(t.Tenant, body.Sum()) }

// Import stores msgs' bodies and commits them to mailbox in one command, with their UIDs
// when keepUIDs (each at or above the mailbox's UIDNEXT, strictly increasing) and the
// mailbox's UIDVALIDITY set to uidValidity when not 0. Messages with a source UID have it
// recorded in the same command. It returns the new UIDs.
func (t *Target) Import(ctx context.Context, mailbox uint64, msgs []Message, keepUIDs bool, uidValidity uint32) (*metadatapb.AppendResponse, error) {
	req := &metadatapb.ImportMessagesRequest{RequestId: t.Committer.NewRequestID(), Account: t.Account, MailboxId: mailbox, UidValidity: uidValidity}
	bodies := make([]ingest.Body, 0, len(msgs))
	for _, m := range msgs {
		nm, err := ingest.NewMessage(t.Tenant, m.Body, m.Date, m.Flags)
		if err != nil {
			return nil, err
		}
		req.Messages = append(req.Messages, nm)
		bodies = append(bodies, ingest.Body{Key: nm.GetBlobKey(), Spool: m.Body})
		if keepUIDs {
			req.Uids = append(req.Uids, m.UID)
		}
		req.SourceUids = append(req.SourceUids, m.UID)
	}
	if !slices.ContainsFunc(msgs, func(m Message) bool { return m.UID != 0 }) {
		req.SourceUids = nil
	}
	stored, err := t.Committer.Store(ctx, bodies, t.Log)
	if err != nil {
		return nil, err
	}
	resp, err := stored.Import(ctx, req, t.Retry)
	if err != nil {
		return nil, fmt.Errorf("import %d messages: %w", len(msgs), err)
	}
	return resp, nil
}

// SetFlags replaces the flags of the messages uids of mailbox with flags.
func (t *Target) SetFlags(ctx context.Context, mailbox uint64, uids []uint32, flags []string) error {
	requestID := t.Committer.NewRequestID()
	return t.Retry(func(ctx context.Context) error {
		_, err := t.Metadata.StoreFlags(ctx, &metadatapb.StoreFlagsRequest{
			RequestId: requestID, Account: t.Account, MailboxId: mailbox, Uids: metadatapb.RangesOf(uids),
			Op: metadatapb.FlagOp_FLAG_OP_REPLACE, Flags: flags,
		})
		return err
	})
}

// Expunge removes the messages uids of mailbox: marked \Deleted, then expunged (RFC 9051
// 6.4.9 UID EXPUNGE removes only marked messages among those named).
func (t *Target) Expunge(ctx context.Context, mailbox uint64, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	ranges := metadatapb.RangesOf(uids)
	storeID, expungeID := t.Committer.NewRequestID(), t.Committer.NewRequestID()
	err := t.Retry(func(ctx context.Context) error {
		_, err := t.Metadata.StoreFlags(ctx, &metadatapb.StoreFlagsRequest{
			RequestId: storeID, Account: t.Account, MailboxId: mailbox, Uids: ranges,
			Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Deleted`},
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("mark expunged messages: %w", err)
	}
	return t.Retry(func(ctx context.Context) error {
		_, err := t.Metadata.Expunge(ctx, &metadatapb.ExpungeRequest{RequestId: expungeID, Account: t.Account, MailboxId: mailbox, Uids: ranges})
		return err
	})
}
