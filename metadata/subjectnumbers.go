package metadata

import (
	"encoding/binary"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The subject dictionary of a mailbox (issue 17): the FSM numbers every distinct base
// subject (SortKeys.subject: RFC 5256 2.1, casemapped by the frontend, RFC 5051) of the
// mailbox's messages, densely from 1 per mailbox, and the column entry carries the number
// (SortColumnEntry.subject_number), as the Message-ID dictionary numbers ids
// (messagenumbers.go). The thread-keys projection (threadkeys.go) then leaves the subject
// string out, so a first SORT (SUBJECT) or THREAD of a large mailbox interns no subject on
// the frontend (docs/benchmarks.md: interning and ranking a million subjects was most of a
// first SORT (SUBJECT)).
//
// The dictionary's keys are the subjects' octets after the mailbox id ('j' keys, keys.go),
// so the store keeps them in octet order: iterating the dictionary (ReadSortColumn with
// subject_order, sendSubjectOrder) yields the numbers in the order SORT (SUBJECT) compares
// the subjects in (octets of the casemapped base subject, RFC 5256 3), and the frontend
// ranks a number by its position there with no string sort.
//
// Numbers are given in the apply, in the command that adds the message (putSortColumn),
// from the command's bytes and the store: every replica gives the same numbers. Subjects
// compare as octet strings, so two messages share a number exactly when they share the
// subject; "" (no subject) is 0 and takes no number. MailboxRecord.last_subject_number is
// the last number given.
//
// An expunge leaves the dictionary as it is, for the Message-ID dictionary's reason: a
// session not yet told of the expunge (RFC 9051 7.5.1) still orders the expunged messages
// with their numbers beside messages appended since, so a number must keep standing for
// its subject as long as the mailbox lives; numbers are dense over the subjects the
// mailbox ever had. The dictionary goes with the mailbox (destroySortColumn); a rename
// keeps the mailbox id, and so its dictionary.
//
// Which commands write numbers (featurelevel.go, FeatureSubjectNumbers): those of a
// mailbox with subjects_complete (created by a command of level 5, or filled), or of a UID
// at or below subjects_numbered_through_uid (filled that far). A mailbox stored before
// is filled by the NumberMessagesCommands (numberfill.go), a stage after the thread keys.
//
// Entries without a subject number: those of a mailbox not yet filled, those whose keys do
// not take apart or have a subject longer than maxNumberedSubject bytes, those naming a
// subject without a number once the dictionary gave maxSubjectNumber numbers, and the
// messages the column lacks. The frontend orders those by their strings (frontend/imap
// sortcache.go), so the answers are the same either way.

// maxNumberedSubject bounds the subjects the dictionary holds: an entry with a longer one
// is not numbered. The frontend's subjects are at most 256 bytes (frontend/message.SortKeys).
const maxNumberedSubject = 1024

// maxSubjectNumber is the last number a mailbox's subject dictionary gives (as
// maxMessageNumber for the Message-ID dictionary): it bounds the dictionary's keys and
// keeps last_subject_number from wrapping to 0. A variable only so that tests reach it.
var maxSubjectNumber uint32 = 1 << 30

// subjectOrderChunk is how many numbers one SortColumnChunk of a subject order holds.
const subjectOrderChunk = 64 << 10

var sortColumnSubjectNumberField = fieldNumber(&metadatapb.SortColumnEntry{}, "subject_number")

// subjectNumberKey is the dictionary's key of subject in mailbox.
func subjectNumberKey(k []byte, mailbox uint64, subject []byte) []byte {
	k = append(k, prefixSubjectNumber)
	k = binary.BigEndian.AppendUint64(k, mailbox)
	return append(k, subject...)
}

// keysSubject returns the base subject of encoded SortKeys, as a subslice of keys; ok false
// if keys does not take apart or the subject is longer than maxNumberedSubject.
func keysSubject(keys []byte) (subject []byte, ok bool) {
	for off := 0; off < len(keys); {
		num, typ, n := protowire.ConsumeTag(keys[off:])
		if n < 0 {
			return nil, false
		}
		off += n
		m := protowire.ConsumeFieldValue(num, typ, keys[off:])
		if m < 0 {
			return nil, false
		}
		if num == sortKeysSubjectField && typ == protowire.BytesType {
			subject, _ = protowire.ConsumeBytes(keys[off:]) // the last one, as a decoder takes it
		}
		off += m
	}
	return subject, len(subject) <= maxNumberedSubject
}

// subjectNumber returns the number of subject in ms's dictionary, giving it the next
// number if it has none; 0 for "". ok is false when subject has none and the dictionary
// gave maxSubjectNumber numbers.
func (c *cmdCtx) subjectNumber(ms *mailboxState, subject []byte) (n uint32, ok bool, _ error) {
	if len(subject) == 0 {
		return 0, true, nil
	}
	return c.dictionaryNumber(ms, subjectNumberKey(c.tx.alloc(9+len(subject)), ms.box().GetId(), subject), &ms.rec.LastSubjectNumber, maxSubjectNumber)
}

// appendSubjectNumber appends to entry the number of the base subject of keys
// (SortColumnEntry.subject_number) from ms's dictionary; entry is returned as it was if
// keys does not take apart, or names a subject too long or past maxSubjectNumber.
func (c *cmdCtx) appendSubjectNumber(ms *mailboxState, entry, keys []byte) ([]byte, error) {
	subject, ok := keysSubject(keys)
	if !ok {
		return entry, nil
	}
	n, ok, err := c.subjectNumber(ms, subject)
	if err != nil || !ok {
		return entry, err
	}
	entry = protowire.AppendTag(entry, sortColumnSubjectNumberField, protowire.VarintType)
	return protowire.AppendVarint(entry, uint64(n)), nil
}

// numberSubject gives the column record rec of uid the number of its subject if its entry
// has none, writing it back where it is stored (its own key in the 'C' layout, else its
// chunk) with its thread-keys entry (NumberMessagesCommand, numberfill.go).
func (c *cmdCtx) numberSubject(ms *mailboxState, uid uint32, rec []byte) (bool, error) {
	return c.growEntry(ms, uid, rec, 8, func(_, subjectNumbered bool) bool { return !subjectNumbered }, c.appendSubjectNumber)
}

// fillSubjects gives the column entries of ms above subjects_numbered_through_uid their
// subject numbers, at most limit entries (NumberMessagesCommand, numberfill.go), and sets
// subjects_complete when it reaches the column's end; it returns whether it did and how
// many entries it numbered.
func (c *cmdCtx) fillSubjects(ms *mailboxState, limit int) (done bool, numbered uint32, _ error) {
	done, err := c.fillStage(ms, c.walkColumn, &ms.rec.SubjectsNumberedThroughUid, &ms.rec.SubjectsComplete, limit, func(uid uint32, rec []byte) error {
		ok, err := c.numberSubject(ms, uid, rec)
		if ok {
			numbered++
		}
		return err
	})
	return done, numbered, err
}

// subjectOrder reads mailbox's subject dictionary in key order, that is in the octet order
// of the subjects: the numbers, each once.
func (v *view) subjectOrder(mailbox uint64) ([]uint32, error) {
	var order []uint32
	err := scan(v.r, mailboxPrefix(prefixSubjectNumber, mailbox), mailboxPrefixEnd(prefixSubjectNumber, mailbox), func(_, val []byte) (bool, error) {
		if len(val) == 4 {
			order = append(order, binary.BigEndian.Uint32(val))
		}
		return true, nil
	})
	return order, err
}

// sendSubjectOrder streams the subject order of mailbox (ReadSortColumn with
// subject_order), read from one consistent view (released before the first send), so that
// the order holds every number given up to that view, and chunked.
func (s *Service) sendSubjectOrder(mailbox uint64, stream grpc.ServerStreamingServer[metadatapb.SortColumnChunk]) error {
	v := s.fsm.view()
	order, err := v.subjectOrder(mailbox)
	v.close()
	if err != nil {
		return storageStatus(err)
	}
	for start := 0; start < len(order); start += subjectOrderChunk {
		if err := stream.Send(&metadatapb.SortColumnChunk{SubjectOrder: order[start:min(start+subjectOrderChunk, len(order))]}); err != nil {
			return err
		}
	}
	return nil
}
