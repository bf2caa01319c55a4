package searchindex

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The records of appended messages ride with their bodies (RecentBodies.KeepAppended):
// the ingest path hands over what it committed (the mailbox, the UID the append assigned,
// the blob key and the structure parsed at ingest, the very structure the metadata
// stores), so the indexer builds a fresh message's doc without reading its record back
// with FetchMessages. It still lists the mailbox's UIDs above the last indexed one
// (ListMessages, no structure), so the index stays the set of stored messages: a handed
// record of a message expunged since is dropped, and a stored message with no handed
// record (COPY, MOVE, another frontend, a restart, one refused for room) is fetched as
// before (Indexer.indexNew).
//
// Bounded like the bodies: at most maxRecentRecords records and the bodies' byte budget
// of structures (a structure carries its whole top-level header and may have thousands of
// parts, so a count alone could pin GiBs while the indexer lags), a record whose structure
// is over the per-body bound never kept (the indexer fetches it), a new one refused rather
// than an older one evicted while they fill it (the indexer takes the oldest first),
// records nobody takes dropped once older than staleAfter and room is needed.
const maxRecentRecords = 16384

// recentRecord is a handed record: enough of a MessageRecord for Extract.
type recentRecord struct {
	uidValidity uint32
	blobKey     string
	structure   *metadatapb.MessageStructure
	size        int64 // proto.Size of structure, charged to recentRecords.bytes
}

// recordRef names a kept record in the order.
type recordRef struct {
	ref mailboxRef
	uid uint32
}

// recentRecords is under RecentBodies.mu.
type recentRecords struct {
	byMailbox map[mailboxRef]map[uint32]recentRecord
	order     recentOrder[recordRef]
	count     int
	bytes     int64 // sizes of the records kept
	kept      uint64
	taken     uint64
}

// KeepAppended keeps the records of the messages an append committed (msgs, in the order
// of resp's UIDs) in account's mailbox, for the indexer. The structures are kept, not
// copied: the caller must not change them afterwards.
func (r *RecentBodies) KeepAppended(account string, mailbox uint64, resp *metadatapb.AppendResponse, msgs []*metadatapb.NewMessage) {
	uids := resp.GetUids()
	if resp.GetDuplicate() || len(uids) != len(msgs) || len(uids) == 0 {
		return
	}
	sizes := make([]int64, len(msgs))
	var total int64
	for i, m := range msgs {
		sizes[i] = int64(proto.Size(m.GetStructure()))
		if sizes[i] > r.perBody {
			return
		}
		total += sizes[i]
	}
	ref := mailboxRef{account, mailbox}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := &r.records
	if !rs.makeRoom(len(uids), total, r.budget, now) {
		return
	}
	box := rs.byMailbox[ref]
	if box == nil {
		box = map[uint32]recentRecord{}
		rs.byMailbox[ref] = box
	}
	for i, uid := range uids {
		if old, have := box[uid]; have {
			rs.bytes -= old.size
		} else {
			rs.count++
		}
		rs.bytes += sizes[i]
		box[uid] = recentRecord{uidValidity: resp.GetUidValidity(), blobKey: msgs[i].GetBlobKey(), structure: msgs[i].GetStructure(), size: sizes[i]}
		rs.order.add(recordRef{ref: ref, uid: uid}, now)
		rs.kept++
	}
}

// makeRoom drops stale records until n more of size bytes fit the count and budget;
// false if they do not.
func (rs *recentRecords) makeRoom(n int, size, budget int64, now time.Time) bool {
	fits := func() bool { return rs.count+n <= maxRecentRecords && rs.bytes+size <= budget }
	rs.order.dropStale(now, fits, func(e recordRef) { rs.remove(e.ref, e.uid) })
	rs.compact()
	return fits()
}

// remove forgets the record of uid in ref, if kept.
func (rs *recentRecords) remove(ref mailboxRef, uid uint32) bool {
	box := rs.byMailbox[ref]
	rec, ok := box[uid]
	if !ok {
		return false
	}
	delete(box, uid)
	rs.count--
	rs.bytes -= rec.size
	if len(box) == 0 {
		delete(rs.byMailbox, ref)
	}
	return true
}

// compact pops the entries of records gone off the front of the order.
func (rs *recentRecords) compact() {
	rs.order.compact(func(e recordRef) bool {
		_, ok := rs.byMailbox[e.ref][e.uid]
		return ok
	}, rs.count)
}

// hasRecords reports whether records of account's mailbox are kept.
func (r *RecentBodies) hasRecords(account string, mailbox uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records.byMailbox[mailboxRef{account, mailbox}]) > 0
}

// takeRecord removes and returns the record of uid in account's mailbox of UIDVALIDITY
// uidValidity, nil if none is kept.
func (r *RecentBodies) takeRecord(account string, mailbox uint64, uidValidity, uid uint32) *metadatapb.MessageRecord {
	ref := mailboxRef{account, mailbox}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.records.byMailbox[ref][uid]
	if !ok {
		return nil
	}
	r.records.remove(ref, uid)
	r.records.compact()
	if rec.uidValidity != uidValidity {
		return nil
	}
	r.records.taken++
	return &metadatapb.MessageRecord{Uid: uid, BlobKey: rec.blobKey, Structure: rec.structure}
}

// dropRecordsThrough forgets the records of account's mailbox up to uid: messages listed
// no more (expunged before the indexer came), or indexed from a fetch.
func (r *RecentBodies) dropRecordsThrough(account string, mailbox uint64, uid uint32) {
	ref := mailboxRef{account, mailbox}
	r.mu.Lock()
	defer r.mu.Unlock()
	for u := range r.records.byMailbox[ref] {
		if u <= uid {
			r.records.remove(ref, u)
		}
	}
	r.records.compact()
}

// RecordCounts returns how many records of appended messages were kept and how many the
// indexer took.
func (r *RecentBodies) RecordCounts() (kept, taken uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.records.kept, r.records.taken
}
