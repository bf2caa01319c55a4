package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// requestRetention is how long, in log time, a request ID's result is kept for
// retries at least.
const requestRetention = 10 * time.Minute

// retryEntries is how many log entries at least a record kept for retries (a request
// ID's result, a dedup key, a delivery mark) outlives its retention in log time.
//
// Log time is the proposing leaders' wall clock, never going back (advanceClock), so a
// leader whose clock is ahead moves it forward at once; from the log alone such a jump
// cannot be told from an idle cluster, and dropping by log time only would forget, at the
// next command, the records of commands applied an instant before, whose retries are still
// on their way. Retries come within a few entries of their command, and log index and log
// time both only grow along the log: so a record goes only once its log time is past the
// retention and also older than the retry horizon, the log time of an entry at least
// retryEntries (at most twice that) entries back (retryHorizon). Every replica computes the
// same horizon from the log.
const retryEntries = 100_000

// cmdError is a command's refusal; it becomes the CommandResult code and message.
// Any other error inside a command is a storage failure.
type cmdError struct {
	code codes.Code
	msg  string
	// reason and blobEpoch go into the result for refusals the caller acts on (blobgc.go).
	reason    string
	blobEpoch uint64
	// maxSize goes into the result of a METADATA_MAXSIZE refusal (annotations.go).
	maxSize uint64
}

func (e *cmdError) Error() string { return e.msg }

func newCmdError(code codes.Code, format string, args ...any) error {
	return &cmdError{code: code, msg: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) error {
	return newCmdError(codes.NotFound, format, args...)
}

func errExists(format string, args ...any) error {
	return newCmdError(codes.AlreadyExists, format, args...)
}

func errInvalid(format string, args ...any) error {
	return newCmdError(codes.InvalidArgument, format, args...)
}

func errPrecondition(format string, args ...any) error {
	return newCmdError(codes.FailedPrecondition, format, args...)
}

func errorResult(err error) *metadatapb.CommandResult {
	var ce *cmdError
	if !errors.As(err, &ce) {
		panic(fmt.Sprintf("metadata fsm: %v", err))
	}
	return &metadatapb.CommandResult{Code: uint32(ce.code), Message: ce.msg, Reason: ce.reason, BlobEpoch: ce.blobEpoch, MetadataMaxSize: ce.maxSize}
}

// cmdCtx is the state of one command being applied.
type cmdCtx struct {
	tx  *txn
	now int64 // log time, unix nanoseconds
	// horizon is the retry horizon (retryHorizon): the log time of an entry at least
	// retryEntries entries before this one, 0 when there is none.
	horizon int64
	// mailboxes loaded or created by the command, written back by finish.
	mailboxes map[uint64]*mailboxState
	// annotationUsed is the annotation usage of the owners the command charged, written
	// back by finish (annotations.go).
	annotationUsed map[string]*metadatapb.AnnotationUsage
	// subscriptionsChanged are the accounts whose subscription list the command changed, so
	// that their WatchAccount streams hear of it (events).
	subscriptionsChanged []string
	// idsBuf holds touchedIDs of a command that touches few mailboxes.
	idsBuf [4]uint64
	// columnEdits are the command's changes to the sort-key and listing columns, by chunk
	// key, handed to the batch once the command succeeded (writeColumns; sortcolumn.go,
	// listingcolumn.go, columnbatch.go).
	columnEdits []*columnEdit
	// editIndex finds the edits by key once there are more than linearEdits of them (an
	// EXPUNGE of many messages); editsBuf holds the first edits, so that an APPEND's few
	// cost no allocation of their own.
	editIndex map[string]*columnEdit
	editsBuf  [4]columnEdit
	editsUsed int // of editsBuf
	editPtrs  [4]*columnEdit
	// refsBuf and numbersBuf are reused by appendThreadNumbers (messagenumbers.go).
	refsBuf    [][]byte
	numbersBuf []byte
	// structures are an Append's message structures as encoded in its log entry, one per
	// message, when ApplyBatch took them off it (rawstructure.go).
	structures [][]byte
	// build is the feature level of the build applying the command, level the command's
	// own (featurelevel.go: which layouts it adopts).
	build, level uint32
}

// mailboxState is a mailbox as the command changes it.
type mailboxState struct {
	rec *metadatapb.MailboxRecord
	key []byte // mailboxKey of a loaded mailbox
	// modseq is the command's new MODSEQ in this mailbox, 0 until the first change.
	modseq  uint64
	changes []*metadatapb.Change
	dirty   bool
	deleted bool
	// aclChanged publishes a change event without a new MODSEQ, so that Watch streams
	// re-check their user's rights (acl.go).
	aclChanged bool
	// created publishes a change event for a new mailbox, or a \Noselect placeholder that
	// became a mailbox again, which allocate no MODSEQ (WatchAccount).
	created bool
	// newUIDValidity marks the event of a mailbox an import gave a new UIDVALIDITY
	// (import.go): its messages are others (RFC 9051 2.3.1.1).
	newUIDValidity bool
	// The mailbox's name and ACL identifiers in the store before the command (none for a
	// new one), and the tenant of its owner once looked up: finish brings the ACL index
	// from the one to the final state (acl.go).
	storedName  string
	storedACL   []string
	stored      bool
	tenant      string
	tenantKnown bool
	// readers are the users with private \Seen records in the mailbox, once loaded
	// (privateseen.go).
	readers       []string
	readersLoaded bool
	// firstNewUID is the first UID the command gave a message it added (addMessage), 0
	// before any: every UID from it on is new in the mailbox (UIDNEXT only grows), so the
	// column records of those UIDs come after every record its chunks hold
	// (writeColumns).
	firstNewUID uint32
}

func (m *mailboxState) box() *metadatapb.Mailbox { return m.rec.Mailbox }

// applyCommand applies one command, the log entry at index, with request ID
// deduplication. It returns the result and the change events to publish once the batch is
// committed.
//
// structures are the encodings of an Append's message structures, taken off its log
// entry (takeStructures); nil if the command carries its structures decoded.
func (f *FSM) applyCommand(tx *txn, index uint64, cmd *metadatapb.Command, structures [][]byte) (*metadatapb.CommandResult, []ChangeEvent) {
	c := &cmdCtx{tx: tx, mailboxes: map[uint64]*mailboxState{}, structures: structures}
	c.build, c.level = f.levelsOf(cmd)
	var err error
	if c.now, err = advanceClock(tx, cmd.GetTimestampUnixNano()); err != nil {
		panic(fmt.Sprintf("metadata fsm: %v", err))
	}
	if c.horizon, err = retryHorizon(tx, index, c.now); err != nil {
		panic(fmt.Sprintf("metadata fsm: %v", err))
	}
	if err := pruneRequests(tx, min(c.now-int64(requestRetention), c.horizon)); err != nil {
		panic(fmt.Sprintf("metadata fsm: %v", err))
	}
	if err := pruneDedup(tx, c.horizon); err != nil {
		panic(fmt.Sprintf("metadata fsm: %v", err))
	}
	if err := pruneMarks(tx, c.horizon); err != nil {
		panic(fmt.Sprintf("metadata fsm: %v", err))
	}
	scope := commandScope(cmd)
	var reqKey []byte
	if id := cmd.GetRequestId(); id != "" {
		reqKey = appendStrKey(tx.alloc(1+len(id)), prefixRequest, id)
		var prev metadatapb.RequestRecord
		found, err := getProto(tx, reqKey, &prev)
		if err != nil {
			panic(fmt.Sprintf("metadata fsm: %v", err))
		}
		if found {
			if prev.GetScope() != scope {
				return errorResult(errPrecondition("request_id %q was used for a different command", id)), nil
			}
			return prev.GetResult(), nil
		}
	}
	tx.savepoint()
	res, err := c.dispatch(cmd)
	if err == nil {
		err = c.finish()
	}
	var events []ChangeEvent
	if err != nil {
		tx.rollback()
		res = errorResult(err)
	} else {
		tx.releaseSavepoint()
		if err := c.writeColumns(); err != nil {
			panic(fmt.Sprintf("metadata fsm: %v", err))
		}
		events = c.events()
	}
	if id := cmd.GetRequestId(); id != "" {
		tx.setProto(reqKey, &metadatapb.RequestRecord{TimestampUnixNano: c.now, Scope: scope, Result: res})
		tx.insert(appendRequestAgeKey(tx.alloc(9+len(id)), c.now, id), nil)
	}
	return res, events
}

// advanceClock returns the log time after a command stamped ts: time never goes
// backwards even when a new leader's clock is behind the old one's.
func advanceClock(tx *txn, ts int64) (int64, error) {
	v, ok, err := tx.get(keyClock)
	if err != nil {
		return 0, err
	}
	now := ts
	if prev := int64(decodeUint64(v)); ok && prev > now {
		now = prev
	}
	if !ok || now != int64(decodeUint64(v)) {
		tx.mustSet(keyClock, tx.encodeUint64(uint64(now)))
	}
	return now, nil
}

// retryHorizon returns the retry horizon of the entry at index, whose log time is now: the
// log time of an entry at least retryEntries and less than 2*retryEntries entries back, or 0
// while the store has not applied that many since it first kept one. A record stamped
// before the horizon was stamped more than retryEntries entries ago, since log time never
// goes back along the log.
//
// keyRetryHorizon holds two marks of the log, each an index and the log time there: the
// current one, and the horizon, the log time of the mark before it. Every retryEntries
// entries the current mark becomes the previous one and this entry the current one, so the
// horizon lags between retryEntries and 2*retryEntries entries behind; the key is written
// once per retryEntries entries.
func retryHorizon(tx *txn, index uint64, now int64) (int64, error) {
	v, ok, err := tx.get(keyRetryHorizon)
	if err != nil {
		return 0, err
	}
	if ok && len(v) != 24 {
		return 0, fmt.Errorf("retry horizon of %d bytes", len(v))
	}
	var markIndex uint64
	var markTime, horizon int64
	if ok {
		markIndex = binary.BigEndian.Uint64(v[0:8])
		markTime = int64(binary.BigEndian.Uint64(v[8:16]))
		horizon = int64(binary.BigEndian.Uint64(v[16:24]))
	}
	switch {
	case !ok:
		// A new store, or one from before the horizon: nothing is known to be old yet.
		markIndex, markTime = index, now
	case index >= markIndex+retryEntries:
		horizon = markTime
		markIndex, markTime = index, now
	default:
		return horizon, nil
	}
	out := binary.BigEndian.AppendUint64(nil, markIndex)
	out = binary.BigEndian.AppendUint64(out, uint64(markTime))
	tx.mustSet(keyRetryHorizon, binary.BigEndian.AppendUint64(out, uint64(horizon)))
	return horizon, nil
}

// requestPruneInterval is how much log time passes between two prunes of the
// request ID table; an ID is kept until both requestRetention and the retry horizon have
// passed it, and at most this much log time longer.
const requestPruneInterval = time.Second

// pruneRequests forgets request IDs recorded before cutoff (log time: the earlier of the
// retention and the retry horizon), at most once per requestPruneInterval. It scans from the floor of the last prune, so deletion
// tombstones below it are never iterated again.
func pruneRequests(tx *txn, cutoff int64) error {
	v, _, err := tx.get(keyRequestFloor)
	if err != nil {
		return err
	}
	floor := int64(decodeUint64(v))
	if cutoff-floor < int64(requestPruneInterval) {
		return nil
	}
	var expired [][]byte
	err = scan(tx, requestAgeKey(floor, ""), requestAgeKey(cutoff, ""), func(k, _ []byte) (bool, error) {
		expired = append(expired, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("prune request ids: %w", err)
	}
	for _, k := range expired {
		tx.mustDelete(k)
		tx.mustDelete(requestKey(string(k[9:])))
	}
	tx.mustSet(keyRequestFloor, encodeUint64(uint64(cutoff)))
	return nil
}

// commandScope names the command kind and the account or tenant it addresses.
func commandScope(cmd *metadatapb.Command) string {
	switch op := cmd.GetOp().(type) {
	case *metadatapb.Command_CreateTenant:
		return "create-tenant:" + op.CreateTenant.GetName()
	case *metadatapb.Command_CreateAccount:
		return "create-account:" + op.CreateAccount.GetEmail()
	case *metadatapb.Command_SetPassword:
		return "set-password:" + op.SetPassword.GetEmail()
	case *metadatapb.Command_DeleteAccount:
		return "delete-account:" + op.DeleteAccount.GetEmail()
	case *metadatapb.Command_CreateMailbox:
		return "create-mailbox:" + op.CreateMailbox.GetAccount()
	case *metadatapb.Command_DeleteMailbox:
		return "delete-mailbox:" + op.DeleteMailbox.GetAccount()
	case *metadatapb.Command_RenameMailbox:
		return "rename-mailbox:" + op.RenameMailbox.GetAccount()
	case *metadatapb.Command_SetSubscribed:
		return "set-subscribed:" + op.SetSubscribed.GetAccount()
	case *metadatapb.Command_Append:
		return "append:" + op.Append.GetAccount()
	case *metadatapb.Command_ImportMessages:
		return "import-messages:" + op.ImportMessages.GetAccount()
	case *metadatapb.Command_StoreFlags:
		return "store-flags:" + op.StoreFlags.GetAccount()
	case *metadatapb.Command_Copy:
		return "copy:" + op.Copy.GetAccount()
	case *metadatapb.Command_Expunge:
		return "expunge:" + op.Expunge.GetAccount()
	case *metadatapb.Command_MarkBlobsDeleting:
		return "mark-blobs-deleting"
	case *metadatapb.Command_ForgetBlobs:
		return "forget-blobs"
	case *metadatapb.Command_HoldBlobs:
		return "hold-blobs:" + op.HoldBlobs.GetHoldId()
	case *metadatapb.Command_DeleteTenant:
		return "delete-tenant:" + op.DeleteTenant.GetName()
	case *metadatapb.Command_AddDomain:
		return "add-domain:" + op.AddDomain.GetTenant()
	case *metadatapb.Command_RemoveDomain:
		return "remove-domain:" + op.RemoveDomain.GetTenant()
	case *metadatapb.Command_SetAccountDisabled:
		return "set-account-disabled:" + op.SetAccountDisabled.GetEmail()
	case *metadatapb.Command_SetAccountTenantAdmin:
		return "set-account-tenant-admin:" + op.SetAccountTenantAdmin.GetEmail()
	case *metadatapb.Command_SetQuota:
		return "set-quota:" + op.SetQuota.GetAccount() + "/" + op.SetQuota.GetTenant()
	case *metadatapb.Command_SetAcl:
		return "set-acl:" + op.SetAcl.GetAccount()
	case *metadatapb.Command_DeleteAcl:
		return "delete-acl:" + op.DeleteAcl.GetAccount()
	case *metadatapb.Command_ClaimRecent:
		return "claim-recent:" + op.ClaimRecent.GetAccount()
	case *metadatapb.Command_SetMetadata:
		return "set-metadata:" + op.SetMetadata.GetAccount()
	case *metadatapb.Command_SetDeliverySettings:
		return "set-delivery-settings:" + op.SetDeliverySettings.GetTenant()
	case *metadatapb.Command_SetOauthSettings:
		return "set-oauth-settings:" + op.SetOauthSettings.GetTenant()
	case *metadatapb.Command_SetLdapSettings:
		return "set-ldap-settings:" + op.SetLdapSettings.GetTenant()
	case *metadatapb.Command_ProvisionLdapAccount:
		return "provision-ldap-account:" + op.ProvisionLdapAccount.GetEmail()
	case *metadatapb.Command_AddAlias:
		return "add-alias:" + op.AddAlias.GetAddress()
	case *metadatapb.Command_DeleteAlias:
		return "delete-alias:" + op.DeleteAlias.GetAddress()
	case *metadatapb.Command_PutSieveScript:
		return "put-sieve-script:" + op.PutSieveScript.GetAccount() + "/" + op.PutSieveScript.GetTenant()
	case *metadatapb.Command_DeleteSieveScript:
		return "delete-sieve-script:" + op.DeleteSieveScript.GetAccount() + "/" + op.DeleteSieveScript.GetTenant()
	case *metadatapb.Command_RenameSieveScript:
		return "rename-sieve-script:" + op.RenameSieveScript.GetAccount() + "/" + op.RenameSieveScript.GetTenant()
	case *metadatapb.Command_SetActiveSieveScript:
		return "set-active-sieve-script:" + op.SetActiveSieveScript.GetAccount()
	case *metadatapb.Command_SetMarks:
		return "set-marks:" + op.SetMarks.GetAccount()
	case *metadatapb.Command_AddAppPassword:
		return "add-app-password:" + op.AddAppPassword.GetEmail()
	case *metadatapb.Command_RevokeAppPassword:
		return "revoke-app-password:" + op.RevokeAppPassword.GetEmail()
	case *metadatapb.Command_TouchAppPassword:
		return "touch-app-password:" + op.TouchAppPassword.GetEmail()
	case *metadatapb.Command_NumberMessages:
		return "number-messages:" + op.NumberMessages.GetAccount()
	}
	return "unknown"
}

func (c *cmdCtx) dispatch(cmd *metadatapb.Command) (*metadatapb.CommandResult, error) {
	switch op := cmd.GetOp().(type) {
	case *metadatapb.Command_CreateTenant:
		return c.createTenant(op.CreateTenant)
	case *metadatapb.Command_CreateAccount:
		return c.createAccount(op.CreateAccount)
	case *metadatapb.Command_SetPassword:
		return c.setPassword(op.SetPassword)
	case *metadatapb.Command_DeleteAccount:
		return c.deleteAccount(op.DeleteAccount)
	case *metadatapb.Command_CreateMailbox:
		return c.createMailboxCmd(op.CreateMailbox)
	case *metadatapb.Command_DeleteMailbox:
		return c.deleteMailbox(op.DeleteMailbox)
	case *metadatapb.Command_RenameMailbox:
		return c.renameMailbox(op.RenameMailbox)
	case *metadatapb.Command_SetSubscribed:
		return c.setSubscribed(op.SetSubscribed)
	case *metadatapb.Command_Append:
		return c.appendMessages(op.Append)
	case *metadatapb.Command_ImportMessages:
		return c.importMessages(op.ImportMessages)
	case *metadatapb.Command_StoreFlags:
		return c.storeFlags(op.StoreFlags)
	case *metadatapb.Command_Copy:
		return c.copyMessages(op.Copy)
	case *metadatapb.Command_Expunge:
		return c.expunge(op.Expunge)
	case *metadatapb.Command_MarkBlobsDeleting:
		return c.markBlobsDeleting(op.MarkBlobsDeleting)
	case *metadatapb.Command_ForgetBlobs:
		return c.forgetBlobs(op.ForgetBlobs)
	case *metadatapb.Command_HoldBlobs:
		return c.holdBlobs(op.HoldBlobs)
	case *metadatapb.Command_DeleteTenant:
		return c.deleteTenant(op.DeleteTenant)
	case *metadatapb.Command_AddDomain:
		return c.addDomain(op.AddDomain)
	case *metadatapb.Command_RemoveDomain:
		return c.removeDomain(op.RemoveDomain)
	case *metadatapb.Command_SetAccountDisabled:
		return c.setAccountDisabled(op.SetAccountDisabled)
	case *metadatapb.Command_SetAccountTenantAdmin:
		return c.setAccountTenantAdmin(op.SetAccountTenantAdmin)
	case *metadatapb.Command_SetQuota:
		return c.setQuota(op.SetQuota)
	case *metadatapb.Command_SetAcl:
		return c.setACL(op.SetAcl)
	case *metadatapb.Command_DeleteAcl:
		return c.deleteACL(op.DeleteAcl)
	case *metadatapb.Command_ClaimRecent:
		return c.claimRecent(op.ClaimRecent)
	case *metadatapb.Command_SetMetadata:
		return c.setMetadata(op.SetMetadata)
	case *metadatapb.Command_SetDeliverySettings:
		return c.setDeliverySettings(op.SetDeliverySettings)
	case *metadatapb.Command_SetOauthSettings:
		return c.setOAuthSettings(op.SetOauthSettings)
	case *metadatapb.Command_SetLdapSettings:
		return c.setLdapSettings(op.SetLdapSettings)
	case *metadatapb.Command_ProvisionLdapAccount:
		return c.provisionLdapAccount(op.ProvisionLdapAccount)
	case *metadatapb.Command_AddAlias:
		return c.addAlias(op.AddAlias)
	case *metadatapb.Command_DeleteAlias:
		return c.deleteAlias(op.DeleteAlias)
	case *metadatapb.Command_PutSieveScript:
		return c.putSieveScript(op.PutSieveScript)
	case *metadatapb.Command_DeleteSieveScript:
		return c.deleteSieveScript(op.DeleteSieveScript)
	case *metadatapb.Command_RenameSieveScript:
		return c.renameSieveScript(op.RenameSieveScript)
	case *metadatapb.Command_SetActiveSieveScript:
		return c.setActiveSieveScript(op.SetActiveSieveScript)
	case *metadatapb.Command_SetMarks:
		return c.setMarks(op.SetMarks)
	case *metadatapb.Command_AddAppPassword:
		return c.addAppPassword(op.AddAppPassword)
	case *metadatapb.Command_RevokeAppPassword:
		return c.revokeAppPassword(op.RevokeAppPassword)
	case *metadatapb.Command_TouchAppPassword:
		return c.touchAppPassword(op.TouchAppPassword)
	case *metadatapb.Command_NumberMessages:
		return c.numberMessages(op.NumberMessages)
	}
	return nil, errInvalid("command has no operation")
}

func okResult() *metadatapb.CommandResult { return &metadatapb.CommandResult{} }

func newMailboxRecord() *metadatapb.MailboxRecord { return &metadatapb.MailboxRecord{} }

// loadMailbox returns the mailbox with id owned by account.
func (c *cmdCtx) loadMailbox(account string, id uint64) (*mailboxState, error) {
	if ms, found := c.mailboxes[id]; found {
		if ms.deleted || ms.rec.GetAccount() != account {
			return nil, errNoMailbox()
		}
		return ms, nil
	}
	key := appendMailboxKey(c.tx.alloc(9), id)
	rec, found, err := takeProto(c.tx, key, newMailboxRecord)
	if err != nil {
		return nil, err
	}
	if !found || rec.GetAccount() != account {
		return nil, errNoMailbox()
	}
	pinRecentMark(rec.GetMailbox())
	ms := &mailboxState{rec: rec, key: key, stored: true, storedName: rec.GetMailbox().GetName(), storedACL: aclIdentifiers(rec.GetMailbox().GetAcl())}
	if len(ms.storedACL) > 0 {
		// Looked up now: a command that deletes the owner's tenant removes its domains
		// before finish unindexes the ACL.
		if err := c.ensureTenant(ms); err != nil {
			return nil, err
		}
	}
	c.mailboxes[id] = ms
	return ms, nil
}

// selectable returns the mailbox id of owner if it can hold messages and user has need
// on it (RFC 4314 4), with user's rights.
func (c *cmdCtx) selectable(user, owner string, id uint64, need rights) (*mailboxState, rights, error) {
	ms, granted, err := c.access(user, owner, id, need)
	if err != nil {
		return nil, 0, err
	}
	if ms.box().GetNoselect() {
		// RFC 9051 6.3.5: a \Noselect name left by DELETE holds no messages.
		return nil, 0, errNoMailbox()
	}
	return ms, granted, nil
}

// bump returns the command's MODSEQ in the mailbox, allocating it on first use: one
// new MODSEQ per mailbox per command (RFC 7162 3.1.1).
func (c *cmdCtx) bump(ms *mailboxState) uint64 {
	if ms.modseq == 0 {
		ms.modseq = ms.box().GetHighestModseq() + 1
		ms.box().HighestModseq = ms.modseq
		ms.dirty = true
	}
	return ms.modseq
}

func (c *cmdCtx) record(ms *mailboxState, ch *metadatapb.Change) {
	ch.Modseq = c.bump(ms)
	ms.changes = append(ms.changes, ch)
}

// finish writes back the mailboxes the command changed, their journal entries, their ACL
// index entries and the annotation usage the command charged. The command's column edits
// go to the batch once it has succeeded (writeColumns).
func (c *cmdCtx) finish() error {
	if err := c.reindexACLs(); err != nil {
		return err
	}
	c.writeAnnotationUsage()
	for _, id := range c.touchedIDs() {
		ms := c.mailboxes[id]
		if ms.deleted {
			c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED})
			c.tx.mustDelete(mailboxKey(id))
		} else if len(ms.changes) > 0 {
			if err := c.pruneHistory(ms); err != nil {
				return err
			}
		}
		if !ms.deleted && ms.dirty {
			key := ms.key
			if key == nil {
				key = mailboxKey(id)
			}
			// The next command of the batch to load the mailbox takes this record as it is
			// (takeProto): no command's result holds a part of a mailbox record (those that
			// answer one answer a copy), and events only reads it.
			c.tx.keepProto(key, ms.rec)
		}
		if len(ms.changes) > 0 {
			// The MODSEQ is new in this mailbox, so is its journal key.
			c.tx.insert(appendJournalKey(c.tx.alloc(17), id, ms.modseq), c.tx.marshal(&metadatapb.ChangeBatch{Changes: ms.changes, HighestModseq: ms.modseq, TimestampUnixNano: c.now}))
		}
	}
	return nil
}

func (c *cmdCtx) touchedIDs() []uint64 {
	ids := c.idsBuf[:0]
	for id := range c.mailboxes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *cmdCtx) events() []ChangeEvent {
	var evs []ChangeEvent
	for _, id := range c.touchedIDs() {
		ms := c.mailboxes[id]
		if ms.modseq != 0 || ms.aclChanged || ms.created || ms.newUIDValidity {
			kinds := kindsOf(ms.changes)
			if ms.created {
				kinds |= ChangedCreated
			}
			if ms.aclChanged {
				kinds |= ChangedOther
			}
			if ms.newUIDValidity {
				kinds |= ChangedUIDValidity
			}
			evs = append(evs, ChangeEvent{Account: ms.rec.GetAccount(), MailboxID: id, HighestModSeq: ms.box().GetHighestModseq(), Kinds: kinds})
		}
	}
	for _, account := range c.subscriptionsChanged {
		evs = append(evs, ChangeEvent{Account: account, Subscriptions: true})
	}
	return evs
}

// subscriptionsOf records that the command changed account's subscription list.
func (c *cmdCtx) subscriptionsOf(account string) {
	if !slices.Contains(c.subscriptionsChanged, account) {
		c.subscriptionsChanged = append(c.subscriptionsChanged, account)
	}
}

func (c *cmdCtx) nextCounter(key []byte) (uint64, error) {
	v, _, err := c.tx.get(key)
	if err != nil {
		return 0, err
	}
	n := decodeUint64(v) + 1
	c.tx.mustSet(key, encodeUint64(n))
	return n, nil
}
