package metadata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Numbering the mailboxes stored before the Message-ID dictionary (issue 17). The FSM
// numbers a message's ids when it adds the message (messagenumbers.go), and nothing
// renumbers at load or restore (the state is a function of the log), so a mailbox whose
// messages were stored before the dictionary keeps entries without numbers, and the
// frontend's THREAD interns its strings, slowly, forever. NumberMessagesCommand numbers
// them through the log, a bounded run at a time:
//
//   - MailboxRecord.numbers_complete says that every entry of the mailbox that can have
//     numbers has them. A mailbox created by this build has it from the start (newMailbox),
//     so only mailboxes stored before it are ever filled.
//   - A command looks at the column entries above the record's numbered_through_uid in UID
//     order (both layouts, sortColumnRecords), at most max_entries of them (at most
//     maxNumberEntries), and gives each entry without numbers the numbers of its Message-ID
//     and references, in that order, from the mailbox's dictionary, exactly as an APPEND
//     does. An entry that has numbers is left as it is, an entry whose ids do not take
//     apart or are too long stays without (as at add time), a message expunged meanwhile
//     has no entry. The record then holds the last UID looked at; the command that finds
//     no entry above it sets numbers_complete. Everything comes from the store and the
//     command, so every replica writes the same, and a command applied twice (a retry, a
//     new leader's pass) only resumes where the last stopped.
//   - No MODSEQ: nothing a client sees changes; the frontend reads the numbers the next
//     time it reads the column (frontend/imap sortcache.go), its answers the same.
//
// MessageNumbering runs on the leader: it lists the mailboxes without numbers_complete
// (after a read barrier, so it sees every committed command) and proposes the commands for
// each, at a low duty cycle, each only while every member of the group applies them
// (featurelevel.go): a replica of a build from before the command would refuse it, and its
// state would part from the others'.
//
// The same commands then fill the dates projection of the sort-key column (sortdates.go)
// of a mailbox stored before it: once numbers_complete, a command gives the entries above
// dated_through_uid their records, at most max_entries of them, and the one that reaches
// the column's end sets dates_complete. Once both, they write the listing column
// (listingcolumn.go) of a mailbox stored before it from its records, at most max_entries
// records a command, through listed_through_uid, and the one that finds no record above
// it sets listing_column. Once all three, they fill the thread-keys projection
// (threadkeys.go) from the column, at most max_entries entries a command, through
// thread_keyed_through_uid, and the one that reaches the column's end sets
// thread_keys_complete. Once all four, they number the subjects (subjectnumbers.go) of the
// column's entries, at most max_entries entries a command, through
// subjects_numbered_through_uid, rewriting each entry and its thread-keys entry (which then
// drops the subject string), and the one that reaches the column's end sets
// subjects_complete. Once all five, they fill the subject projection (subjectrecords.go)
// from the column, at most max_entries entries a command, through
// subject_recorded_through_uid, and the one that reaches the column's end sets
// subject_records_complete. The result is complete when all six are.

// maxNumberEntries bounds the entries one NumberMessagesCommand looks at (about 4,096 x 200
// bytes of column, a few chunks' rewrite).
const maxNumberEntries = 4096

// numberMessages applies a NumberMessagesCommand.
func (c *cmdCtx) numberMessages(req *metadatapb.NumberMessagesCommand) (*metadatapb.CommandResult, error) {
	ms, err := c.loadMailbox(normalizeOwner(req.GetAccount()), req.GetMailboxId())
	if err != nil {
		return nil, err
	}
	out := &metadatapb.NumberMessagesResult{Complete: true}
	result := &metadatapb.CommandResult{Result: &metadatapb.CommandResult_NumberMessages{NumberMessages: out}}
	if filledAt(ms.rec, c.level) {
		return result, nil
	}
	limit := int(min(max(req.GetMaxEntries(), 1), maxNumberEntries))
	switch {
	case ms.rec.GetNumbersComplete() && ms.rec.GetDatesComplete() && ms.rec.GetListingColumn() && ms.rec.GetThreadKeysComplete() && ms.rec.GetSubjectsComplete():
		recorded, err := c.fillSubjectRecords(ms, limit)
		out.Complete = recorded && filledAt(ms.rec, c.level)
		out.SubjectRecordsThroughUid = ms.rec.GetSubjectRecordedThroughUid()
		return result, err
	case ms.rec.GetNumbersComplete() && ms.rec.GetDatesComplete() && ms.rec.GetListingColumn() && ms.rec.GetThreadKeysComplete():
		subjects, numbered, err := c.fillSubjects(ms, limit)
		out.Complete, out.SubjectsNumbered = subjects && filledAt(ms.rec, c.level), numbered // else the subject records follow
		out.SubjectsNumberedThroughUid = ms.rec.GetSubjectsNumberedThroughUid()
		return result, err
	case ms.rec.GetNumbersComplete() && ms.rec.GetDatesComplete() && ms.rec.GetListingColumn():
		thread, err := c.fillThreadKeys(ms, limit)
		out.Complete = thread && filledAt(ms.rec, c.level) // else the subject numbers follow
		return result, err
	case ms.rec.GetNumbersComplete() && ms.rec.GetDatesComplete():
		listed, err := c.fillListing(ms, limit)
		out.Complete = listed && filledAt(ms.rec, c.level) // else the thread keys follow
		return result, err
	case ms.rec.GetNumbersComplete():
		dated, err := c.fillDates(ms, limit)
		out.Complete = dated && filledAt(ms.rec, c.level) // else the listing and thread keys follow
		return result, err
	}
	done, err := c.fillStage(ms, c.walkColumn, &ms.rec.NumberedThroughUid, &ms.rec.NumbersComplete, limit, func(uid uint32, rec []byte) error {
		numbered, err := c.numberEntry(ms, uid, rec)
		if numbered {
			out.Numbered++
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !done {
		out.Complete, out.NumberedThroughUid = false, ms.rec.NumberedThroughUid
		return result, nil
	}
	// Else the dates follow (sortdates.go), then the listing (listingcolumn.go), then the
	// thread keys (threadkeys.go).
	out.Complete = filledAt(ms.rec, c.level)
	return result, nil
}

// filledAt is filled as a build of level has it: only the fills of that level. A
// command's result is stored with its request (the 'Q' record, in the digest), so a
// command stamped with a lower level answers exactly what a build of that level answers
// (review of textkeys22: a level-3 fill of the listing answered complete=false here and
// true on a level-3 build).
func filledAt(rec *metadatapb.MailboxRecord, level uint32) bool {
	return rec.GetNumbersComplete() &&
		(level < FeatureSortDates || rec.GetDatesComplete()) &&
		(level < FeatureListingColumn || rec.GetListingColumn()) &&
		(level < FeatureThreadKeys || rec.GetThreadKeysComplete()) &&
		(level < FeatureSubjectNumbers || rec.GetSubjectsComplete()) &&
		(level < FeatureSubjectRecords || rec.GetSubjectRecordsComplete())
}

// filled reports whether every fill of a NumberMessagesCommand is complete for a mailbox:
// numbers, dates, listing column, thread keys, subject numbers and subject records.
func filled(rec *metadatapb.MailboxRecord) bool {
	return filledAt(rec, FeatureLevel)
}

// fillStage is one stage of a NumberMessagesCommand on ms: walk gives fn the entries of
// the mailbox above *through, at most limit of them; then *through holds the last UID it
// went through or, where walk reached the end, *complete is set and *through is 0. It
// returns whether the stage is complete. Everything comes from the store and the command,
// so every replica writes the same.
func (c *cmdCtx) fillStage(ms *mailboxState, walk entryWalk, through *uint32, complete *bool, limit int, fn func(uid uint32, rec []byte) error) (bool, error) {
	after, done, err := walk(ms.box().GetId(), *through, limit, fn)
	if err != nil {
		return false, err
	}
	ms.dirty = true
	if done {
		*complete, *through = true, 0
		return true, nil
	}
	*through = after
	return false, nil
}

// entryWalk gives fn a mailbox's entries above after, in UID order, at most limit of
// them; it returns the last UID it went through and whether it reached the end.
type entryWalk func(mailbox uint64, after uint32, limit int, fn func(uid uint32, rec []byte) error) (through uint32, done bool, err error)

// walkColumn is an entryWalk over the column records (both layouts, sortColumnRecords).
func (c *cmdCtx) walkColumn(mailbox uint64, after uint32, limit int, fn func(uid uint32, rec []byte) error) (through uint32, done bool, err error) {
	looked := 0
	v := &view{r: c.tx}
	for looked < limit {
		recs, last, more, err := v.sortColumnRecords(mailbox, after, sortColumnChunkBytes, false)
		if err != nil {
			return 0, false, err
		}
		for len(recs) > 0 && looked < limit {
			uid, rec, rest, ok := nextColumnRecord(recs)
			if !ok {
				break
			}
			recs = rest
			after = uid
			looked++
			if err := fn(uid, rec); err != nil {
				return 0, false, err
			}
		}
		if looked < limit && !more {
			return after, true, nil
		}
		if looked < limit {
			after = last
		}
	}
	return after, false, nil
}

// walkRecords is an entryWalk over the message records; it reaches the end when it
// finds fewer than limit above after.
func (c *cmdCtx) walkRecords(mailbox uint64, after uint32, limit int, fn func(uid uint32, val []byte) error) (through uint32, done bool, err error) {
	looked := 0
	err = scan(c.tx, messageKey(mailbox, after+1), mailboxPrefixEnd(prefixMessage, mailbox), func(k, val []byte) (bool, error) {
		if looked == limit {
			return false, nil
		}
		uid := uidFromKey(k)
		if err := fn(uid, val); err != nil {
			return false, err
		}
		after = uid
		looked++
		return true, nil
	})
	if err != nil {
		return 0, false, err
	}
	return after, looked < limit, nil
}

// numberEntry gives the column record rec of uid the numbers of its ids if its entry has
// none, writing it back where it is stored: its own key (the 'C' layout) or its chunk.
func (c *cmdCtx) numberEntry(ms *mailboxState, uid uint32, rec []byte) (bool, error) {
	return c.growEntry(ms, uid, rec, 32, func(numbered, _ bool) bool { return !numbered }, c.appendThreadNumbers)
}

// growEntry gives the column record rec of uid what grow appends to its entry (room
// bytes at most, to size the copy), if lacks says the entry lacks it, and writes the grown
// entry back (rewriteEntry); false when the record does not take apart, lacks nothing, or
// grow appended nothing. The fill's stages that number entries (numberEntry,
// numberSubject) share it.
func (c *cmdCtx) growEntry(ms *mailboxState, uid uint32, rec []byte, room int, lacks func(numbered, subjectNumbered bool) bool, grow func(ms *mailboxState, entry, keys []byte) ([]byte, error)) (bool, error) {
	_, n := protowire.ConsumeVarint(rec)
	entry, m := protowire.ConsumeBytes(rec[n:])
	if m < 0 {
		return false, nil
	}
	keys, numbered, subjectNumbered, ok := columnEntryParts(entry)
	if !ok || !lacks(numbered, subjectNumbered) {
		return false, nil
	}
	grown, err := grow(ms, append(make([]byte, 0, len(entry)+room), entry...), keys)
	if err != nil || len(grown) == len(entry) {
		return false, err
	}
	return true, c.rewriteEntry(ms, uid, grown)
}

// rewriteEntry writes entry, grown by numbers, back as the column entry of ms's uid where
// it is stored: its own key (the 'C' layout) or its chunk; and its thread-keys entry and
// subject record, which follow the column entry (threadkeys.go, subjectrecords.go).
func (c *cmdCtx) rewriteEntry(ms *mailboxState, uid uint32, entry []byte) error {
	mailbox := ms.box().GetId()
	if c.writesThreadKeys(ms, uid) {
		c.putThreadKeys(mailbox, uid, entry)
	}
	if c.writesSubjectRecords(ms, uid) {
		c.putSubjectRecord(mailbox, uid, entry)
	}
	key := sortColumnKey(mailbox, uid)
	if _, found, err := c.tx.get(key); err != nil {
		return err
	} else if found {
		c.tx.mustSet(key, entry)
		return nil
	}
	c.sortColumnEdit(mailbox, uid).add(uid, entry)
	return nil
}

// entryKeys returns the keys field of an encoded SortColumnEntry and whether it has a
// message_number; ok false if it has no keys or does not take apart.
func entryKeys(entry []byte) (keys []byte, numbered, ok bool) {
	keys, numbered, _, ok = columnEntryParts(entry)
	return keys, numbered, ok
}

// columnEntryParts is entryKeys that also reports whether the entry has a subject number
// (subject_number, subjectnumbers.go), in the same pass.
func columnEntryParts(entry []byte) (keys []byte, numbered, subjectNumbered, ok bool) {
	for off := 0; off < len(entry); {
		num, typ, n := protowire.ConsumeTag(entry[off:])
		if n < 0 {
			return nil, false, false, false
		}
		off += n
		m := protowire.ConsumeFieldValue(num, typ, entry[off:])
		if m < 0 {
			return nil, false, false, false
		}
		switch {
		case num == sortColumnNumberField:
			numbered = true
		case num == sortColumnSubjectNumberField && typ == protowire.VarintType:
			subjectNumbered = true
		case num == sortColumnKeysField && typ == protowire.BytesType:
			keys, _ = protowire.ConsumeBytes(entry[off:])
			ok = true
		}
		off += m
	}
	return keys, numbered, subjectNumbered, ok
}

// unnumberedMailboxes returns up to limit mailboxes without numbers_complete,
// dates_complete, listing_column or thread_keys_complete as the commands that fill them, in id order above
// afterID: all of them, or account's (by its mailbox names) if account is not empty.
func (v *view) unnumberedMailboxes(account string, afterID uint64, limit int) ([]*metadatapb.NumberMessagesCommand, error) {
	var out []*metadatapb.NumberMessagesCommand
	rec := &metadatapb.MailboxRecord{}
	pending := func(val []byte) error {
		rec.Reset()
		if err := proto.Unmarshal(val, rec); err != nil {
			return err
		}
		if !filled(rec) {
			out = append(out, &metadatapb.NumberMessagesCommand{Account: rec.GetAccount(), MailboxId: rec.GetMailbox().GetId(), MaxEntries: maxNumberEntries})
		}
		return nil
	}
	if account == "" {
		err := scan(v.r, mailboxKey(afterID+1), prefixEnd([]byte{prefixMailbox}), func(_, val []byte) (bool, error) {
			return len(out) < limit, pending(val)
		})
		return out, err
	}
	var ids []uint64
	names := mailboxNamesPrefix(account)
	err := scan(v.r, names, prefixEnd(names), func(_, val []byte) (bool, error) {
		if id := decodeUint64(val); id > afterID {
			ids = append(ids, id)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	for _, id := range ids {
		val, found, err := getRaw(v.r, mailboxKey(id))
		if err != nil {
			return nil, err
		}
		if found {
			if err := pending(val); err != nil {
				return nil, err
			}
		}
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// MessageNumbering is the leader's background numbering of the mailboxes stored before
// the Message-ID dictionary (numberfill.go).
type MessageNumbering struct {
	// Idle is the wait before a pass over the mailboxes, and between two passes while
	// this node does not lead or a pass fails.
	Idle time.Duration
	// Duty is the share of time the numbering keeps the group busy: after a command that
	// took d, it waits d*(1-Duty)/Duty.
	Duty float64
}

// DefaultMessageNumbering is what strata serve and strata metadata run: a pass a minute
// after start, a tenth of the leader's time while numbering.
var DefaultMessageNumbering = MessageNumbering{Idle: time.Minute, Duty: 0.1}

// RunMessageNumbering numbers mailboxes while this node leads, until ctx ends or no
// mailbox can need it any more: each pass lists the mailboxes without numbers_complete,
// dates_complete or listing_column and fills each to its end, a command at a time. While
// a member of the group runs a build that cannot apply the commands, a pass fails at once
// and the next is tried after cfg.Idle. The loop ends after a pass that found nothing to
// fill and began with every member at FeatureLevel: the leader stamped its commands with
// that level since the pass before (featurelevel.go), so every mailbox created since is
// complete from the start and stays so. Mailboxes created while a member ran an older
// build are not; the passes go on until then and fill them. A node that stops leading
// fails its next command (NOT_LEADER) and waits; the new leader's pass resumes from the
// records.
func (s *Service) RunMessageNumbering(ctx context.Context, cfg MessageNumbering) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(cfg.Idle):
		}
		if !s.node.IsLeader() {
			continue
		}
		levelErr := s.requireFeature(ctx, FeatureLevel) // first: it also sets the stamp
		proposed := 0
		n, _, err := s.NumberMailboxes(ctx, "", cfg.Duty, func(*metadatapb.NumberMessagesCommand, *metadatapb.NumberMessagesResult) bool {
			proposed++
			return true
		})
		switch {
		case err == nil && proposed == 0 && levelErr == nil:
			return
		case err == nil:
			if n > 0 {
				s.logger.Info("message numbering pass complete", "entries", n)
			}
		case ctx.Err() != nil:
		case status.Code(err) == codes.FailedPrecondition:
			s.logger.Info("message numbering waits for the group's upgrade", "numbered", n, "err", err)
		default:
			s.logger.Warn("message numbering", "numbered", n, "err", err)
		}
	}
}

// NumberMailboxes numbers the mailboxes without numbers_complete (only account's if not
// empty) to their ends, waiting between commands for the duty cycle (1: none). After each
// command it calls progress, if not nil, and stops if that returns false. It returns the
// entries numbered, and whether every mailbox was then complete. It lists the mailboxes
// after a read barrier, and proposes each command only if every member of the group
// applies it (requireFeature: FailedPrecondition otherwise).
func (s *Service) NumberMailboxes(ctx context.Context, account string, duty float64, progress func(*metadatapb.NumberMessagesCommand, *metadatapb.NumberMessagesResult) bool) (numbered uint64, done bool, _ error) {
	var after uint64
	for {
		if err := s.node.ReadBarrier(ctx); err != nil {
			return numbered, false, replicationStatus("list the mailboxes to number", err)
		}
		v := s.fsm.view()
		pending, err := v.unnumberedMailboxes(account, after, 1024)
		v.close()
		if err != nil || len(pending) == 0 {
			return numbered, err == nil, err
		}
		after = pending[len(pending)-1].GetMailboxId()
		for _, cmd := range pending {
			for {
				if err := s.requireFeature(ctx, FeatureSubjectRecords); err != nil { // the command writes numbers, dates, listing, thread keys, subject numbers and records
					return numbered, false, err
				}
				start := time.Now()
				res, err := s.propose(ctx, numberingRequestID(), &metadatapb.Command{Op: &metadatapb.Command_NumberMessages{NumberMessages: cmd}})
				if status.Code(err) == codes.NotFound {
					break // deleted meanwhile
				}
				if err != nil {
					return numbered, false, err
				}
				out := res.GetNumberMessages()
				numbered += uint64(out.GetNumbered())
				if progress != nil && !progress(cmd, out) {
					return numbered, false, nil
				}
				if out.GetComplete() {
					break
				}
				if duty > 0 && duty < 1 {
					select {
					case <-ctx.Done():
						return numbered, false, ctx.Err()
					case <-time.After(time.Duration(float64(time.Since(start)) * (1 - duty) / duty)):
					}
				}
			}
		}
	}
}

// numberingCallBudget is how long one NumberAccountMessages call goes on proposing
// commands; the caller calls again until done.
const numberingCallBudget = 2 * time.Second

// NumberAccountMessages numbers the mailboxes of an account stored before the Message-ID
// dictionary now, for about numberingCallBudget, at full speed (an administrator's call,
// internal/authz); done once every mailbox of the account is complete.
func (s *Service) NumberAccountMessages(ctx context.Context, req *metadatapb.NumberAccountMessagesRequest) (*metadatapb.NumberAccountMessagesResponse, error) {
	account := normalizeOwner(req.GetAccount())
	if account == "" {
		return nil, status.Error(codes.InvalidArgument, "account is required")
	}
	resp := &metadatapb.NumberAccountMessagesResponse{}
	start := time.Now()
	n, done, err := s.NumberMailboxes(ctx, account, 1, func(*metadatapb.NumberMessagesCommand, *metadatapb.NumberMessagesResult) bool {
		resp.Commands++
		return time.Since(start) < numberingCallBudget
	})
	if err != nil {
		return nil, err
	}
	resp.Numbered, resp.Done = n, done
	return resp, nil
}

// numberingRequestID is a new request ID for a NumberMessagesCommand.
func numberingRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "number-messages-" + hex.EncodeToString(b[:])
}
