package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The read side: each function reads one consistent view (a Pebble snapshot), so it
// sees a whole number of applied batches and is safe alongside ApplyBatch.

func (v *view) tenants() ([]*metadatapb.Tenant, error) {
	var out []*metadatapb.Tenant
	err := scan(v.r, []byte{prefixTenant}, []byte{prefixTenant + 1}, func(k, val []byte) (bool, error) {
		t := &metadatapb.Tenant{}
		if err := proto.Unmarshal(val, t); err != nil {
			return false, fmt.Errorf("decode tenant %q: %w", k[1:], err)
		}
		out = append(out, t)
		return true, nil
	})
	return out, err
}

func (v *view) account(email string) (*metadatapb.AccountRecord, bool, error) {
	rec := &metadatapb.AccountRecord{}
	found, err := getProto(v.r, accountKey(email), rec)
	return rec, found, err
}

// accounts lists the accounts of a tenant, or all when tenant is empty.
func (v *view) accounts(tenant string) ([]*metadatapb.Account, error) {
	var emails []string
	if tenant == "" {
		err := scan(v.r, []byte{prefixAccount}, []byte{prefixAccount + 1}, func(k, _ []byte) (bool, error) {
			emails = append(emails, string(k[1:]))
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		prefix := tenantAccountsPrefix(tenant)
		err := scan(v.r, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
			emails = append(emails, string(k[len(prefix):]))
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]*metadatapb.Account, 0, len(emails))
	for _, e := range emails {
		rec, found, err := v.account(e)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, rec.GetAccount())
		}
	}
	return out, nil
}

// mailbox returns the mailbox with id if account owns it, its subscribed field taken from
// the account's subscription list.
func (v *view) mailbox(account string, id uint64) (*metadatapb.Mailbox, bool, error) {
	rec := &metadatapb.MailboxRecord{}
	found, err := getProto(v.r, mailboxKey(id), rec)
	if err != nil || !found || rec.GetAccount() != account {
		return nil, false, err
	}
	box := rec.GetMailbox()
	_, box.Subscribed, err = getRaw(v.r, subscriptionKey(account, box.GetName()))
	if err != nil {
		return nil, false, err
	}
	return box, true, nil
}

// subscriptions returns the account's subscription list, sorted.
func (v *view) subscriptions(account string) ([]string, error) {
	return subscriptions(v.r, account)
}

func (v *view) mailboxByName(account, name string) (*metadatapb.Mailbox, bool, error) {
	id, err := lookupName(v.r, account, name)
	if err != nil || id == 0 {
		return nil, false, err
	}
	return v.mailbox(account, id)
}

func (v *view) mailboxes(account string) ([]*metadatapb.Mailbox, error) {
	names, err := listMailboxNames(v.r, account, mailboxNamesPrefix(account))
	if err != nil {
		return nil, err
	}
	out := make([]*metadatapb.Mailbox, 0, len(names))
	for _, n := range names {
		m, found, err := v.mailbox(account, n.id)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, m)
		}
	}
	return out, nil
}

// messageRecords returns up to limit records in ranges, in UID order; with parts, a record's
// structure holds only those fields of MessageStructure. privateUser, when set, is the user
// whose private \Seen the flags carry (privateseen.go).
func (v *view) messageRecords(mailbox uint64, privateUser string, ranges [][2]uint32, withStructure bool, parts []protowire.Number, limit int) ([]*metadatapb.MessageRecord, error) {
	var out []*metadatapb.MessageRecord
	err := scanMessages(v.r, mailbox, ranges, func(uid uint32, idx *metadatapb.MessageIndex) (bool, error) {
		rec := &metadatapb.MessageRecord{
			Uid:              uid,
			Modseq:           idx.GetModseq(),
			Flags:            idx.GetFlags(),
			InternalDateUnix: idx.GetInternalDateUnix(),
			Size:             idx.GetSize(),
			BlobKey:          idx.GetBlobKey(),
			SavedUnix:        idx.GetSavedUnix(),
			EmailId:          emailObjectID(idx.GetBlobKey()),
			ThreadId:         threadObjectID(messageThread(idx)),
		}
		if withStructure && len(parts) > 0 {
			s, err := structureParts(v.r, structureKey(mailbox, uid), parts)
			if err != nil {
				return false, err
			}
			rec.Structure = s
		} else if withStructure {
			s := &metadatapb.MessageStructure{}
			found, err := getProto(v.r, structureKey(mailbox, uid), s)
			if err != nil {
				return false, err
			}
			if found {
				rec.Structure = s
			}
		}
		out = append(out, rec)
		return len(out) < limit, nil
	})
	if err != nil || privateUser == "" {
		return out, err
	}
	return out, applyPrivateSeen(v.r, mailbox, privateUser, out)
}

// journal returns the change batches of a mailbox after modseq, oldest first, up
// to about maxChanges changes (always at least one batch when there is one).
func (v *view) journal(mailbox, after uint64, maxChanges int) ([]*metadatapb.ChangeBatch, error) {
	var out []*metadatapb.ChangeBatch
	n := 0
	lower := journalKey(mailbox, after+1)
	upper := mailboxPrefixEnd(prefixJournal, mailbox)
	err := scan(v.r, lower, upper, func(k, val []byte) (bool, error) {
		b := &metadatapb.ChangeBatch{}
		if err := proto.Unmarshal(val, b); err != nil {
			return false, fmt.Errorf("decode journal entry %d of mailbox %d: %w", modseqFromJournalKey(k), mailbox, err)
		}
		out = append(out, b)
		n += len(b.GetChanges())
		return n < maxChanges, nil
	})
	return out, err
}

// Field numbers of MessageStructure, for FetchMessages' header_only and envelope_only.
var (
	structureHeaderField   = structureField("header")
	structureEnvelopeField = structureField("envelope")
	structurePreviewField  = structureField("preview")
	structureSortKeysField = structureField("sort_keys")
)

func structureField(name protoreflect.Name) protowire.Number {
	return (&metadatapb.MessageStructure{}).ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// structureParts returns the fields parts of the MessageStructure stored under key (nil if
// there is none). It picks them off the wire encoding and decodes only them: decoding the
// whole structure (every body part, the header) costs several times more, and FETCH
// ENVELOPE or a header SEARCH needs nothing else.
func structureParts(r reader, key []byte, parts []protowire.Number) (*metadatapb.MessageStructure, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	defer closer.Close()
	var picked []byte
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return nil, fmt.Errorf("decode %q: %w", key, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, v[n:])
		if m < 0 {
			return nil, fmt.Errorf("decode %q: %w", key, protowire.ParseError(m))
		}
		if slices.Contains(parts, num) {
			picked = append(picked, v[:n+m]...)
		}
		v = v[n+m:]
	}
	s := &metadatapb.MessageStructure{}
	if err := proto.Unmarshal(picked, s); err != nil {
		return nil, fmt.Errorf("decode %q: %w", key, err)
	}
	return s, nil
}

// headerFields returns the fields of header named in names (compared without case), each
// with its continuation lines, in their order. It reads a header as the frontend's
// message.Fields does: a field name is the text before the colon without trailing blanks
// (RFC 5322 2.2, 3.6.8), a line starting with a blank continues the field before it
// (RFC 5322 2.2.3), and the header ends at the first empty line.
func headerFields(header []byte, names []string) []byte {
	var out []byte
	keep := false
	for len(header) > 0 {
		n := bytes.IndexByte(header, '\n') + 1
		if n == 0 {
			n = len(header)
		}
		line := header[:n]
		header = header[n:]
		if string(line) == "\n" || string(line) == "\r\n" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if keep {
				out = append(out, line...)
			}
			continue
		}
		keep = false
		if colon := bytes.IndexByte(line, ':'); colon > 0 {
			name := bytes.TrimRight(line[:colon], " \t")
			for _, want := range names {
				if len(name) == len(want) && bytes.EqualFold(name, []byte(want)) {
					keep = true
					break
				}
			}
		}
		if keep {
			out = append(out, line...)
		}
	}
	return out
}

// inRanges reports whether uid is in the normalized ranges.
func inRanges(ranges [][2]uint32, uid uint32) bool {
	i, _ := slices.BinarySearchFunc(ranges, uid, func(r [2]uint32, uid uint32) int {
		switch {
		case r[1] < uid:
			return -1
		case r[0] > uid:
			return 1
		}
		return 0
	})
	return i < len(ranges) && ranges[i][0] <= uid && uid <= ranges[i][1]
}

// uidRangesOf merges ascending UIDs into ranges.
func uidRangesOf(uids []uint32) []*metadatapb.UidRange {
	var out []*metadatapb.UidRange
	for _, uid := range uids {
		if n := len(out); n > 0 && out[n-1].Last+1 == uid {
			out[n-1].Last = uid
			continue
		}
		out = append(out, &metadatapb.UidRange{First: uid, Last: uid})
	}
	return out
}
