package imap

import (
	"container/list"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The record cache (issue 14): the stored parts of messages that never change, kept by the
// frontend so that FETCH ENVELOPE, BODYSTRUCTURE, RFC822.SIZE or a body section, and SEARCH
// on header fields, make no FetchMessages call for the messages a session read before, as
// Dovecot answers them from its cache file.
//
// Invariants:
//
//   - Only what a message keeps for life is cached: its structure parts, size, internal
//     date, blob key, SAVEDATE, EMAILID and THREADID. Flags and MODSEQs change and are
//     never taken from it (a session has them in its view, sync.go): a cached record's
//     flags and modseq are cleared.
//   - A record is keyed by owner, mailbox id, UIDVALIDITY, UID and the parts it carries:
//     mailbox ids are never reused and a UID names one message for a UIDVALIDITY (RFC 9051
//     2.3.1.1), so a key never names two messages.
//   - Only sessions of the mailbox's owner read and fill the cache: the owner's rights on
//     a personal mailbox are fixed (RFC 4314 2.1), so no ACL change can make a hit wrong.
//     A session in another owner's mailbox reads every record from the metadata service,
//     which checks its rights at that point of the log (metadata/acl.go). The owner in the
//     key keeps tenants and accounts apart.
//   - The cache holds at most its budget of bytes (proto.Size of the records), the least
//     recently used dropped first; a record over an eighth of the budget is not kept.
//   - Cached records are shared by the sessions that read them and are never changed.
type recordCache struct {
	budget int

	mu      sync.Mutex
	used    int
	entries map[recordKey]*list.Element // of *cachedRecord
	lru     list.List                   // front: most recently used

	hits, misses uint64 // lookups, for the metrics
}

// recordKey names a cached record: a message and the parts of it the record carries.
type recordKey struct {
	owner       string
	mailboxID   uint64
	uidValidity uint32
	uid         uint32
	parts       recordParts
}

// recordParts are the parts a record carries: with a structure or not, which parts of it
// (structureParts), and for a header trimmed to some fields (FetchMessagesRequest
// header_fields), their names, lower-case, sorted and joined by NULs.
type recordParts struct {
	withStructure bool
	structure     structureParts
	headerFields  string
}

// headerFieldsKey is the headerFields of recordParts for a request of names.
func headerFieldsKey(names []string) string {
	if len(names) == 0 {
		return ""
	}
	lower := make([]string, len(names))
	for i, n := range names {
		lower[i] = strings.ToLower(n)
	}
	slices.Sort(lower)
	return strings.Join(slices.Compact(lower), "\x00")
}

type cachedRecord struct {
	key  recordKey
	rec  *metadatapb.MessageRecord
	size int
}

// defaultRecordCacheBytes is the record cache's budget unless Config.RecordCacheBytes sets
// another: some 20,000 messages of typical mail with their whole structure.
const defaultRecordCacheBytes = 64 << 20

// newRecordCache returns a cache of budget bytes, or nil (no cache) for a budget of 0 or
// less. A nil *recordCache caches nothing.
func newRecordCache(budget int) *recordCache {
	if budget <= 0 {
		return nil
	}
	return &recordCache{budget: budget, entries: map[recordKey]*list.Element{}}
}

// get returns the cached record of key, or nil.
func (rc *recordCache) get(key recordKey) *metadatapb.MessageRecord {
	if rc == nil {
		return nil
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e := rc.entries[key]
	if e == nil {
		rc.misses++
		return nil
	}
	rc.hits++
	rc.lru.MoveToFront(e)
	return e.Value.(*cachedRecord).rec
}

// stats returns the lookups that found a record and those that did not, and the bytes held.
func (rc *recordCache) stats() (hits, misses uint64, held int) {
	if rc == nil {
		return 0, 0, 0
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.hits, rc.misses, rc.used
}

// put keeps rec under key, with its flags and modseq cleared (rec is the caller's, as the
// metadata service sent it, and is shared from now on).
func (rc *recordCache) put(key recordKey, rec *metadatapb.MessageRecord) {
	if rc == nil {
		return
	}
	rec.Flags, rec.Modseq = nil, 0
	size := proto.Size(rec) + 64 // the key and the entry
	if size > rc.budget/8 {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if e := rc.entries[key]; e != nil {
		// Another session fetched it at the same time: the same record.
		rc.lru.MoveToFront(e)
		return
	}
	rc.entries[key] = rc.lru.PushFront(&cachedRecord{key: key, rec: rec, size: size})
	rc.used += size
	for rc.used > rc.budget {
		oldest := rc.lru.Back()
		cr := oldest.Value.(*cachedRecord)
		rc.lru.Remove(oldest)
		delete(rc.entries, cr.key)
		rc.used -= cr.size
	}
}
