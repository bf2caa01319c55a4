package imap

import (
	"cmp"
	"container/list"
	"errors"
	"slices"
	"sync"
	"unsafe"

	"github.com/strata-mail/strata/frontend/imap/sortthread"
)

// sortKeyCache keeps, per frontend, the sort keys SORT and THREAD read (sort.go), by
// mailbox, so that a repeated SORT of a large mailbox orders in memory instead of reading
// every message's keys from the metadata service again. A message's keys never change (its
// content is immutable and a UID names one message within a UIDVALIDITY, RFC 9051 2.3.1.1),
// so an entry is never stale; the sessions ask only for the UIDs of their views, so an
// expunged message's entry is never used and goes with its mailbox's eviction. Only the
// sessions' own mailboxes are cached (as in the record cache): another owner's is read
// under the rights in force, into a cache for that command alone. Whole mailboxes are
// evicted, least recently used first, to keep at most Limits.SortCacheMessages messages.
//
// A mailbox's keys are columns (sortColumns): a flat struct of arrays in UID order, the
// strings interned per mailbox, so a message costs no map entry and no pointer, and a view's
// UIDs are found by a merge walk. THREAD's Message-IDs and references are the numbers the
// metadata service's Message-ID dictionary gave them when every message has them, else
// interned strings (threadIDMode); likewise the base subjects are the numbers of the
// mailbox's subject dictionary (metadata/subjectnumbers.go), ranked by one ordered read of
// the dictionary (rankSubjects), when every message has one, else interned strings
// (nextSubjectMode), so the answers are the same either way. Columns only grow at their end in place (a message read
// out of UID order rebuilds them), so a reader orders from a copy of the slice headers
// (snapshot) taken under the lock, without holding it.
type sortKeyCache struct {
	mu      sync.Mutex
	max     int
	fields  sortFields // what each mailbox keeps
	entries int
	boxes   map[sortBoxKey]*list.Element // of *sortBox
	lru     list.List                    // front: most recently used
	// stringIDs: new mailboxes hold THREAD's ids as strings (newCommandSortCache).
	stringIDs bool
}

type sortBoxKey struct {
	owner       string
	mailboxID   uint64
	uidValidity uint32
}

type sortBox struct {
	key  sortBoxKey
	cols sortColumns
	// fields is what the rows hold beyond the UID: the cache's fields, fieldDates for a
	// mailbox read from the column's dates projection (a SORT by ARRIVAL, DATE or SIZE
	// only, metadata/sortdates.go), subjectField for one read from its subject projection
	// (a SORT by SUBJECT only, metadata/subjectrecords.go), or at most threadKeyFields for
	// one read from its thread-keys projection (a SORT by SUBJECT or a THREAD,
	// metadata/threadkeys.go).
	// A command that needs more drops the box and reads the whole column (dropLacking).
	fields sortFields
	// columnUpTo is the UID up to which the mailbox's sort-key column was read into cols
	// (sortcolumn.go): a later read asks only for the UIDs above it.
	columnUpTo uint32
	// subjectRank is by subject number its rank in the mailbox's subject dictionary's
	// order, the octet order of the subjects (subjectRanks), as last read; 0 for a number
	// it does not rank. Read again when a command meets a number it lacks.
	subjectRank []uint32
}

// sortFields says which keys a cache keeps beyond the UID: a cache for one command keeps
// only what the command orders by. Bit k is the string key textKeys[k] (RFC 5256 3, RFC
// 5957).
type sortFields uint16

const (
	fieldThread sortFields = 1 << len(textKeys) // base subject, Message-ID, references, reply (RFC 5256 4)
	// fieldDates: the internal and sent dates and the size (SORT ARRIVAL, DATE, SIZE and
	// THREAD's dates, RFC 5256 2.2), which every source of keys holds but the column's
	// subject projection.
	fieldDates = fieldThread << 1
	allFields  = fieldDates<<1 - 1
	// threadKeyFields are what the column's thread-keys projection holds
	// (metadata/threadkeys.go): the dates, the base subject and THREAD's keys.
	threadKeyFields = fieldDates | fieldThread | subjectField
	// subjectField is the base subject (textKeys[0]), all the column's subject projection
	// holds (metadata/subjectrecords.go).
	subjectField sortFields = 1
)

// sortNeed is what ordering by criteria reads of each message: the string keys among them,
// and the dates and size for ARRIVAL, DATE or SIZE. Equal messages stay in sequence order
// (RFC 5256 3), so a SORT by SUBJECT alone reads no date.
func sortNeed(criteria []sortthread.Criterion) sortFields {
	var f sortFields
	for _, k := range criteria {
		f |= textField(k.Key)
		switch k.Key {
		case sortthread.Arrival, sortthread.Date, sortthread.Size:
			f |= fieldDates
		}
	}
	return f
}

// keepsText reports whether the string key textKeys[k] is kept: asked for, or the base
// subject for THREAD.
func (f sortFields) keepsText(k int) bool {
	return f&(1<<k) != 0 || (k == 0 && f&fieldThread != 0)
}

// textField is the bit of the string key k in sortFields (0 for a key that is not one).
func textField(k sortthread.Key) sortFields {
	if i := slices.Index(textKeys[:], k); i >= 0 {
		return 1 << i
	}
	return 0
}

// sortEntry is a message's keys as read from its record or decoded from the column, before
// they are interned into a mailbox's columns.
type sortEntry struct {
	msg   sortthread.Message
	reply bool
	// numbered: the Message-ID and references also come as numbers of the mailbox's
	// Message-ID dictionary (metadata/messagenumbers.go), messageNumber and refNumbers (one
	// per reference).
	numbered      bool
	messageNumber uint32
	refNumbers    []uint32
	// stripped: the entry came from the column's thread-keys projection
	// (metadata/threadkeys.go) and is numbered, so it has numbers without the strings
	// they stand for: it can go only to columns that hold numbers.
	stripped bool
	// subjectNumbered: the base subject also comes as its number in the mailbox's
	// subject dictionary (metadata/subjectnumbers.go), subjectNumber (0: no subject);
	// subjectStripped: from the thread-keys projection, without the subject string.
	subjectNumbered bool
	subjectNumber   uint32
	subjectStripped bool
}

// hasSubject reports whether e has a base subject (a numbered entry has the number 0
// exactly for the empty one, metadata/subjectnumbers.go).
func (e *sortEntry) hasSubject() bool {
	if e.subjectNumbered {
		return e.subjectNumber != 0
	}
	return e.msg.Subject != ""
}

// nextSubjectMode is nextThreadMode for the base subject: the subject column holds the
// numbers of the mailbox's subject dictionary (ranked in the dictionary's order,
// subjectRanks) while every row has one, else interned strings.
func nextSubjectMode(mode threadIDMode, e *sortEntry) (next threadIDMode, ok bool) {
	if !e.hasSubject() {
		return mode, true // 0 in either mode
	}
	switch {
	case mode == threadIDsNone && e.subjectNumbered:
		return threadIDsNumbers, true
	case mode == threadIDsNumbers:
		return mode, e.subjectNumbered
	case e.subjectStripped:
		return mode, false // a number without its string, for a column of strings
	}
	return threadIDsStrings, true
}

// hasThreadIDs reports whether e names a Message-ID or a reference (THREAD links it). A
// numbered entry has a non-zero number exactly for a non-empty id ("" is 0,
// metadata/messagenumbers.go), so its numbers tell, also without its strings (stripped).
func (e *sortEntry) hasThreadIDs() bool {
	if e.numbered {
		return e.messageNumber != 0 || slices.ContainsFunc(e.refNumbers, func(n uint32) bool { return n != 0 })
	}
	if e.msg.MessageID != "" {
		return true
	}
	for _, r := range e.msg.References {
		if r != "" {
			return true
		}
	}
	return false
}

// threadIDMode says what a mailbox's columns hold as Message-ID and reference ids.
// Numbers of the Message-ID dictionary spare interning a million strings in a map, but a
// message the dictionary did not number (stored before it, or past its bound) has only
// strings, which cannot be matched with numbers: a mailbox's ids are all one or all the
// other, strings as soon as one message has only strings (nextThreadMode). A record has no
// numbers either, so a mailbox held with numbers reads the messages added since from the
// column (readColumnIfMissing), and put leaves out the records of messages above the
// column's read point rather than turn the mailbox to strings.
type threadIDMode uint8

const (
	threadIDsNone    threadIDMode = iota // no row names a Message-ID or reference yet
	threadIDsNumbers                     // the dictionary's numbers
	threadIDsStrings                     // ids of strings interned in sortColumns.ids
)

// nextThreadMode returns the mode of columns in mode once e is added; ok is false when e
// cannot be added (it has only strings and the columns hold numbers).
func nextThreadMode(mode threadIDMode, e *sortEntry) (next threadIDMode, ok bool) {
	if !e.hasThreadIDs() {
		return mode, true // zeros in either mode
	}
	switch {
	case mode == threadIDsNone && e.numbered:
		return threadIDsNumbers, true
	case mode == threadIDsNumbers:
		return mode, e.numbered
	case e.stripped:
		return mode, false // numbers without strings, for columns of strings
	}
	return threadIDsStrings, true
}

// refCount is how many references e has (a stripped entry has their numbers only).
func (e *sortEntry) refCount() int {
	if e.numbered {
		return len(e.refNumbers)
	}
	return len(e.msg.References)
}

// textKeys are the string keys, in the order of sortColumns.text.
var textKeys = [...]sortthread.Key{sortthread.Subject, sortthread.From, sortthread.To, sortthread.Cc, sortthread.DisplayFrom, sortthread.DisplayTo}

func textOf(m *sortthread.Message, k int) string {
	switch k {
	case 0:
		return m.Subject
	case 1:
		return m.From
	case 2:
		return m.To
	case 3:
		return m.Cc
	case 4:
		return m.DisplayFrom
	}
	return m.DisplayTo
}

// sortColumns are the keys of a mailbox's messages, one row per message in ascending UID
// order; the columns of fields a cache does not keep stay empty.
type sortColumns struct {
	uids          []uint32
	arrival, date []int64
	size          []uint64
	text          [len(textKeys)][]uint32 // ids in texts[k]
	messageID     []uint32                // ids in *ids
	refStart      []uint32                // row r's references are refs[refStart[r]:refStart[r+1]]
	refs          []uint32
	reply         []bool
	// The interning tables, shared by a mailbox's snapshots (only appended to).
	texts [len(textKeys)]*internTable
	ids   *internTable
	// idMode is what messageID and refs hold; maxNumber the largest number in them
	// (threadIDsNumbers); expect how many rows reserve made room for.
	idMode    threadIDMode
	maxNumber uint32
	expect    int
	// subjMode is what text[0] (the base subject) holds: ids in texts[0], or the numbers
	// of the subject dictionary (nextSubjectMode), the largest maxSubject.
	subjMode   threadIDMode
	maxSubject uint32
}

func newSortColumns() sortColumns {
	c := sortColumns{refStart: []uint32{0}, ids: newInternTable()}
	for k := range c.texts {
		c.texts[k] = newInternTable()
	}
	return c
}

// internTable interns strings as ids, "" as 0, their bytes copied into blocks of its own so
// that they hold neither the column chunk they came from nor an allocation each.
type internTable struct {
	index  map[string]uint32
	values []string // by id
	block  []byte
	rank   []uint32 // by id, in octet order; stale when shorter than values
}

func newInternTable() *internTable {
	return &internTable{index: map[string]uint32{"": 0}, values: []string{""}}
}

const internBlock = 64 << 10

func (t *internTable) id(s string) uint32 {
	if id, ok := t.index[s]; ok {
		return id
	}
	if len(s) > internBlock/8 {
		s = string([]byte(s))
	} else {
		if cap(t.block)-len(t.block) < len(s) {
			t.block = make([]byte, 0, internBlock)
		}
		off := len(t.block)
		t.block = append(t.block, s...)
		// The block's bytes up to its length are never written again (a full block is
		// replaced, not grown), so the string stays immutable.
		s = unsafe.String(&t.block[off], len(s))
	}
	id := uint32(len(t.values))
	t.values = append(t.values, s)
	t.index[s] = id
	return id
}

// ranks returns the rank of every id, computed again only when ids were added since.
func (t *internTable) ranks() []uint32 {
	if len(t.rank) != len(t.values) {
		t.rank = sortthread.Ranks(t.values)
	}
	return t.rank
}

func (c *sortColumns) last() uint32 {
	if len(c.uids) == 0 {
		return 0
	}
	return c.uids[len(c.uids)-1]
}

// nextModes returns the modes of columns in idMode and subjMode once e is added with
// fields; ok is false when e cannot be added (nextThreadMode, nextSubjectMode).
func nextModes(idMode, subjMode threadIDMode, e *sortEntry, fields sortFields) (threadIDMode, threadIDMode, bool) {
	ok := true
	if fields&fieldThread != 0 {
		idMode, ok = nextThreadMode(idMode, e)
	}
	if ok && fields.keepsText(0) {
		subjMode, ok = nextSubjectMode(subjMode, e)
	}
	return idMode, subjMode, ok
}

// acceptsAll reports whether every one of entries can be added (nextModes).
func (c *sortColumns) acceptsAll(entries []sortEntry, fields sortFields) bool {
	idMode, subjMode, ok := c.idMode, c.subjMode, true
	for k := range entries {
		if idMode, subjMode, ok = nextModes(idMode, subjMode, &entries[k], fields); !ok {
			return false
		}
	}
	return true
}

// refuses reports whether e cannot be added to c as it is (nextModes).
func (c *sortColumns) refuses(e *sortEntry, fields sortFields) bool {
	_, _, ok := nextModes(c.idMode, c.subjMode, e, fields)
	return !ok
}

// appendEntry appends the row of uid (above every row's) with e's keys, those of fields;
// false, and nothing appended, when e has only strings for THREAD or the subject and the
// columns hold numbers (nextModes).
func (c *sortColumns) appendEntry(uid uint32, e *sortEntry, fields sortFields) bool {
	idMode, subjMode, ok := nextModes(c.idMode, c.subjMode, e, fields)
	if !ok {
		return false
	}
	if fields&fieldThread != 0 {
		if idMode == threadIDsStrings && c.idMode != threadIDsStrings && len(c.ids.values) == 1 {
			c.ids.index = make(map[string]uint32, c.expect)
			c.ids.index[""] = 0
		}
		c.idMode = idMode
	}
	c.subjMode = subjMode
	c.uids = append(c.uids, uid)
	c.arrival = append(c.arrival, e.msg.Arrival)
	c.date = append(c.date, e.msg.Date)
	c.size = append(c.size, e.msg.Size)
	for k := range c.text {
		switch {
		case !fields.keepsText(k):
		case k == 0 && c.subjMode == threadIDsNumbers:
			n := uint32(0) // no subject: 0 in either mode
			if e.subjectNumbered {
				n = e.subjectNumber
			}
			c.text[k] = append(c.text[k], n)
			c.maxSubject = max(c.maxSubject, n)
		default:
			c.text[k] = append(c.text[k], c.texts[k].id(textOf(&e.msg, k)))
		}
	}
	if fields&fieldThread != 0 {
		switch {
		case !e.hasThreadIDs(): // no ids: zeros in either mode
			c.messageID = append(c.messageID, 0)
			for range e.refCount() {
				c.refs = append(c.refs, 0)
			}
		case c.idMode == threadIDsNumbers:
			c.messageID = append(c.messageID, e.messageNumber)
			c.refs = append(c.refs, e.refNumbers...)
			c.maxNumber = max(c.maxNumber, e.messageNumber)
			for _, n := range e.refNumbers {
				c.maxNumber = max(c.maxNumber, n)
			}
		default: // threadIDsStrings
			c.messageID = append(c.messageID, c.ids.id(e.msg.MessageID))
			for _, r := range e.msg.References {
				c.refs = append(c.refs, c.ids.id(r))
			}
		}
		c.refStart = append(c.refStart, uint32(len(c.refs)))
		c.reply = append(c.reply, e.reply)
	}
	return true
}

// threadIDs is the bound of the ids in messageID and refs (sortthread.Columns.IDs).
func (c *sortColumns) threadIDs() int {
	if c.idMode == threadIDsNumbers {
		return int(c.maxNumber) + 1
	}
	return len(c.ids.values)
}

// reserve makes room in empty columns for n messages' keys of fields, so that filling
// them copies nothing as they grow.
func (c *sortColumns) reserve(n int, fields sortFields) {
	c.uids, c.arrival, c.date, c.size = make([]uint32, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]uint64, 0, n)
	for k := range c.text {
		if fields.keepsText(k) {
			c.text[k] = make([]uint32, 0, n)
		}
	}
	if fields&fieldThread != 0 {
		c.messageID, c.reply = make([]uint32, 0, n), make([]bool, 0, n)
		c.refStart = append(make([]uint32, 0, n+1), 0)
		c.expect = n
		if c.idMode == threadIDsStrings {
			// Else sized when the first string comes (appendEntry): numbers need no map.
			c.ids.index = make(map[string]uint32, n)
			c.ids.index[""] = 0
		}
	}
}

// appendRow appends row r of src, whose ids are in the same tables.
func (c *sortColumns) appendRow(src *sortColumns, r int) {
	c.uids = append(c.uids, src.uids[r])
	c.arrival = append(c.arrival, src.arrival[r])
	c.date = append(c.date, src.date[r])
	c.size = append(c.size, src.size[r])
	for k := range c.text {
		if len(src.text[k]) > 0 {
			c.text[k] = append(c.text[k], src.text[k][r])
		}
	}
	if len(src.messageID) > 0 {
		c.messageID = append(c.messageID, src.messageID[r])
		c.refs = append(c.refs, src.refs[src.refStart[r]:src.refStart[r+1]]...)
		c.refStart = append(c.refStart, uint32(len(c.refs)))
		c.reply = append(c.reply, src.reply[r])
	}
}

// insert adds the entries of uids that c lacks, and returns how many it added. Ascending
// above c's last UID they are appended in place; else c is rebuilt by a merge, into new
// arrays, so that snapshots taken before keep theirs. It adds nothing and returns
// errThreadStrings when an entry has only strings for THREAD or the subject and c holds
// numbers.
func (c *sortColumns) insert(uids []uint32, entries []sortEntry, fields sortFields) (int, error) {
	if len(uids) == 0 {
		return 0, nil
	}
	if !c.acceptsAll(entries, fields) {
		return 0, errThreadStrings
	}
	if !slices.IsSorted(uids) {
		order := make([]int, len(uids))
		for k := range order {
			order[k] = k
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(uids[a], uids[b]) })
		sortedUIDs, sortedEntries := make([]uint32, len(uids)), make([]sortEntry, len(uids))
		for k, o := range order {
			sortedUIDs[k], sortedEntries[k] = uids[o], entries[o]
		}
		uids, entries = sortedUIDs, sortedEntries
	}
	if uids[0] > c.last() && !hasDuplicates(uids) {
		for k, uid := range uids {
			c.appendEntry(uid, &entries[k], fields)
		}
		return len(uids), nil
	}
	add := newSortColumns()
	add.texts, add.ids, add.idMode, add.expect, add.subjMode = c.texts, c.ids, c.idMode, c.expect, c.subjMode
	for k, uid := range uids {
		if _, found := slices.BinarySearch(c.uids, uid); !found && uid != add.last() {
			add.appendEntry(uid, &entries[k], fields)
		}
	}
	merged := newSortColumns()
	merged.texts, merged.ids, merged.idMode, merged.expect = c.texts, c.ids, add.idMode, c.expect
	merged.maxNumber = max(c.maxNumber, add.maxNumber)
	merged.subjMode, merged.maxSubject = add.subjMode, max(c.maxSubject, add.maxSubject)
	i, j := 0, 0
	for i < len(c.uids) || j < len(add.uids) {
		if j == len(add.uids) || (i < len(c.uids) && c.uids[i] < add.uids[j]) {
			merged.appendRow(c, i)
			i++
		} else {
			merged.appendRow(&add, j)
			j++
		}
	}
	*c = merged
	return len(add.uids), nil
}

func hasDuplicates(ascending []uint32) bool {
	for k := 1; k < len(ascending); k++ {
		if ascending[k] == ascending[k-1] {
			return true
		}
	}
	return false
}

// rowsOf returns the row of each of uids, -1 for those c lacks: a merge walk when uids
// ascend, or binary searches when they do not or are few against c's rows.
func (c *sortColumns) rowsOf(uids []uint32) []int32 {
	rows := make([]int32, len(uids))
	if len(uids)*16 < len(c.uids) || !slices.IsSorted(uids) {
		for k, uid := range uids {
			r, found := slices.BinarySearch(c.uids, uid)
			rows[k] = int32(r)
			if !found {
				rows[k] = -1
			}
		}
		return rows
	}
	r := 0
	for k, uid := range uids {
		for r < len(c.uids) && c.uids[r] < uid {
			r++
		}
		rows[k] = -1
		if r < len(c.uids) && c.uids[r] == uid {
			rows[k] = int32(r)
		}
	}
	return rows
}

// sortSnapshot is a mailbox's columns as they were at one moment, with what of the interning
// tables a command reads, so that it orders without the cache's lock.
type sortSnapshot struct {
	sortColumns
	fields sortFields              // what the rows hold (sortBox.fields)
	values [len(textKeys)][]string // by id
	// tables are the interned values' tables, whose ranks (octet order) rank computes
	// when a command orders by the key: a THREAD REFERENCES needs none (0.3 to 0.4 s of a
	// first THREAD at a million messages, 300,000 distinct subjects). mu is the cache's
	// lock, which guards the tables.
	tables [len(textKeys)]*internTable
	mu     *sync.Mutex
	ids    int // the Message-IDs interned
	// subjectRank is the box's subject ranks when text[0] holds the subject dictionary's
	// numbers (subjMode), as they were at the snapshot or as a command read them since.
	subjectRank []uint32
}

// subjectNumbers reports whether the snapshot's base subjects are the subject dictionary's
// numbers (nextSubjectMode).
func (s *sortSnapshot) subjectNumbers() bool {
	return s.subjMode == threadIDsNumbers && len(s.text[0]) > 0
}

// subjectRanked reports whether the snapshot's subject ranks rank every subject number of
// its rows (a number given after the ranks were read has none), in O(1): subjectRanks
// ranks every number below its length (the dictionary's numbers are dense, and it ranks
// none of an order that does not hold them all), and maxSubject bounds the rows' numbers.
func (s *sortSnapshot) subjectRanked() bool {
	return s.maxSubject == 0 || int(s.maxSubject) < len(s.subjectRank)
}

// subjectRanks returns by number the rank of each number of order, the subject
// dictionary's numbers in the octet order of their subjects (metadata/subjectnumbers.go):
// its position there from 1, the empty subject (0) ranking first. The numbers are dense
// from 1 (the dictionary never drops one), so a larger number means an order that does
// not hold them all: nil then, which ranks nothing.
func subjectRanks(order []uint32) []uint32 {
	rank := make([]uint32, len(order)+1)
	for i, n := range order {
		if n == 0 || int(n) > len(order) || rank[n] != 0 {
			return nil
		}
		rank[n] = uint32(i + 1)
	}
	return rank
}

// setSubjectRank keeps rank as box's subject ranks, if box is held.
func (c *sortKeyCache) setSubjectRank(box sortBoxKey, rank []uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.boxes[box]; e != nil {
		e.Value.(*sortBox).subjectRank = rank
	}
}

// rank returns the rank in octet order of every id of the string key textKeys[k], for the
// snapshot's ids and any the table gained since (ranks of more values order the
// snapshot's the same; id 0, the empty string, stays rank 0).
func (s *sortSnapshot) rank(k int) []uint32 {
	if k == 0 && s.subjectNumbers() {
		return s.subjectRank
	}
	if s.tables[k] == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tables[k].ranks()
}

// entry returns row r's keys as a Message (its Seq unset), for a SORT context.
func (s *sortSnapshot) entry(r int32) sortthread.Message {
	m := sortthread.Message{Arrival: s.arrival[r], Date: s.date[r], Size: s.size[r]}
	text := func(k int) string {
		if len(s.text[k]) == 0 || (k == 0 && s.subjectNumbers()) {
			return "" // a SORT context that orders by subject holds strings (subjectStrings)
		}
		return s.values[k][s.text[k][r]]
	}
	m.Subject, m.From, m.To, m.Cc, m.DisplayFrom, m.DisplayTo = text(0), text(1), text(2), text(3), text(4), text(5)
	return m
}

// columns returns the sortthread view of the messages at rows, with the ranks of the
// string keys in ranked (those a SORT orders by, ORDEREDSUBJECT's subject); the others'
// TextColumn.Rank is nil.
func (s *sortSnapshot) columns(rows []int32, ranked sortFields) *sortthread.Columns {
	c := &sortthread.Columns{Rows: rows, Arrival: s.arrival, Date: s.date, Size: s.size,
		MessageID: s.messageID, RefStart: s.refStart, Refs: s.refs, IDs: s.ids, Reply: s.reply}
	for k, key := range textKeys {
		c.Text[key] = sortthread.TextColumn{IDs: s.text[k]}
		if ranked&(1<<k) != 0 {
			c.Text[key].Rank = s.rank(k)
		}
	}
	return c
}

func newSortKeyCache(maxMessages int) *sortKeyCache {
	return &sortKeyCache{max: maxMessages, fields: allFields, boxes: make(map[sortBoxKey]*list.Element)}
}

// newCommandSortCache is a cache for one command (another owner's mailbox), keeping only
// fields; with strings, its mailboxes hold THREAD's ids as strings from the start
// (threadIDMode), so that no entry is refused.
func newCommandSortCache(fields sortFields, strings bool) *sortKeyCache {
	c := newSortKeyCache(int(^uint(0) >> 1))
	c.fields, c.stringIDs = fields, strings
	return c
}

// snapshot returns box's columns as they are, and the row of each of uids (ascending; -1
// for those it lacks), and marks box most recently used.
func (c *sortKeyCache) snapshot(box sortBoxKey, uids []uint32) (*sortSnapshot, []int32) {
	s, rows := c.takeSnapshot(box, uids)
	// Outside the lock: the snapshot's arrays are never written up to their length.
	s.denseNumbers()
	return s, rows
}

// denseThreadSlack is how far the largest Message-ID number of a snapshot may exceed twice
// the ids its rows hold before THREAD's ids are made dense (denseNumbers).
const denseThreadSlack = 1024

// denseNumbers renumbers the snapshot's Message-ID numbers densely, in their order, when the
// largest is far above the count of ids its rows hold: the dictionary numbers every id the
// mailbox ever had (metadata/messagenumbers.go), and THREAD allocates by the bound of the
// ids (sortthread.Columns.IDs), so a small mailbox with a long history would cost by its
// history. The new arrays are the snapshot's own; 0 (no id) stays 0.
func (s *sortSnapshot) denseNumbers() {
	present := len(s.messageID) + len(s.refs)
	if s.idMode != threadIDsNumbers || s.ids <= 2*present+denseThreadSlack {
		return
	}
	distinct := make([]uint32, 0, present+1)
	distinct = append(append(append(distinct, 0), s.messageID...), s.refs...)
	slices.Sort(distinct)
	distinct = slices.Compact(distinct)
	dense := func(from []uint32) []uint32 {
		to := make([]uint32, len(from))
		for k, n := range from {
			i, _ := slices.BinarySearch(distinct, n)
			to[k] = uint32(i)
		}
		return to
	}
	s.messageID, s.refs = dense(s.messageID), dense(s.refs)
	s.maxNumber, s.ids = uint32(len(distinct)-1), len(distinct)
}

// takeSnapshot is snapshot under the lock.
func (c *sortKeyCache) takeSnapshot(box sortBoxKey, uids []uint32) (*sortSnapshot, []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.boxes[box]
	if e == nil {
		rows := make([]int32, len(uids))
		for k := range rows {
			rows[k] = -1
		}
		return &sortSnapshot{fields: allFields}, rows // no row lacks a field
	}
	c.lru.MoveToFront(e)
	b := e.Value.(*sortBox)
	s := &sortSnapshot{sortColumns: b.cols, fields: b.fields, mu: &c.mu, subjectRank: b.subjectRank}
	for k, t := range s.texts {
		if len(s.text[k]) > 0 && (k != 0 || s.subjMode != threadIDsNumbers) {
			s.values[k], s.tables[k] = t.values, t
		}
	}
	s.ids = s.threadIDs()
	return s, s.rowsOf(uids)
}

// columnRead returns the UID up to which box's sort-key column was read (0: none), and
// whether box holds THREAD's ids or the subjects as numbers (threadIDMode).
func (c *sortKeyCache) columnRead(box sortBoxKey) (upTo uint32, numbers bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.boxes[box]; e != nil {
		b := e.Value.(*sortBox)
		return b.columnUpTo, (b.cols.idMode == threadIDsNumbers && b.fields&fieldThread != 0) ||
			(b.cols.subjMode == threadIDsNumbers && b.fields.keepsText(0))
	}
	return 0, false
}

// dropLacking drops box if its rows lack some of need (a mailbox read from the dates
// projection, asked for subjects or Message-IDs), so that the command reads the column
// into a new one; it returns the fields the dropped box held (0 if none was dropped).
func (c *sortKeyCache) dropLacking(box sortBoxKey, need sortFields) sortFields {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.boxes[box]
	if e == nil {
		return 0
	}
	b := e.Value.(*sortBox)
	if b.fields&need == need {
		return 0
	}
	c.entries -= len(b.cols.uids)
	delete(c.boxes, box)
	c.lru.Remove(e)
	return b.fields
}

// current returns box's entry, nil if it has none.
func (c *sortKeyCache) current(box sortBoxKey) *sortBox {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.boxes[box]; e != nil {
		return e.Value.(*sortBox)
	}
	return nil
}

// missingAbove counts the uids above UID floor that box has no entry for.
func (c *sortKeyCache) missingAbove(box sortBoxKey, uids []uint32, floor uint32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cols sortColumns
	if e := c.boxes[box]; e != nil {
		cols = e.Value.(*sortBox).cols
	}
	n := 0
	for k, r := range cols.rowsOf(uids) {
		if r < 0 && uids[k] > floor {
			n++
		}
	}
	return n
}

// columnUpTo notes that box's sort-key column was read up to UID upTo.
func (c *sortKeyCache) columnUpTo(box sortBoxKey, read *sortBox, upTo uint32) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.boxes[box]; e != nil && e.Value.(*sortBox) == read {
		read.columnUpTo = max(read.columnUpTo, upTo)
	}
}

// errColumnEvicted is appendColumn's answer when the box a column read began filling was
// evicted since: the rows of the earlier chunks went with it, so the read must not go on
// (and claim the column read up to its end) into the box made anew.
var errColumnEvicted = errors.New("sort cache: the mailbox was evicted while its column was read")

// appendColumn adds the entries decoded from box's sort-key column, UIDs ascending, then
// notes it read up to upTo (appendDecoded with every field).
func (c *sortKeyCache) appendColumn(box sortBoxKey, filling *sortBox, upTo uint32, expect int, decode func(add func(uid uint32, e *sortEntry) error) error) (*sortBox, error) {
	return c.appendDecoded(box, filling, upTo, expect, allFields, decode)
}

// errColumnFields is appendDecoded's answer when the entries decoded hold fewer fields
// than the box they would go to (the column's dates projection, read for a SORT by date,
// while another command made the box anew for every field): the read stops, and what is
// missing is read from the records, as for errColumnEvicted.
var errColumnFields = errors.New("sort cache: the column read holds fewer fields than the mailbox")

// appendDecoded adds the entries decoded from box's sort-key column, UIDs ascending, then
// notes it read up to upTo; the entries hold the fields holds (allFields: the whole
// column; none: its dates projection), and a box it makes keeps those of the cache's. decode yields them one at a time into a reused entry, which
// is interned at once: a message costs no allocation of its own. An empty box is first
// given room for about expect messages.
// filling is the box the read's earlier chunks went to (nil for the first chunk); the box
// this chunk went to is returned, or errColumnEvicted if filling is no longer box's.
func (c *sortKeyCache) appendDecoded(box sortBoxKey, filling *sortBox, upTo uint32, expect int, holds sortFields, decode func(add func(uid uint32, e *sortEntry) error) error) (*sortBox, error) {
	if c.max <= 0 {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.boxes[box]; filling != nil && (e == nil || e.Value.(*sortBox) != filling) {
		return nil, errColumnEvicted
	}
	b := c.boxWith(box, holds&c.fields)
	if b.fields&holds != b.fields {
		return nil, errColumnFields
	}
	if len(b.cols.uids) == 0 {
		b.cols.reserve(expect, b.fields)
	}
	var added []uint32
	var entries []sortEntry
	err := decode(func(uid uint32, e *sortEntry) error {
		switch {
		case uid > b.cols.last():
			if !b.cols.appendEntry(uid, e, b.fields) {
				return errThreadStrings
			}
			c.entries++
		case len(added) == 0 || uid > added[len(added)-1]:
			// Below rows read from the records (out of UID order): merged after.
			e := *e
			e.msg.References = slices.Clone(e.msg.References)
			e.refNumbers = slices.Clone(e.refNumbers)
			added, entries = append(added, uid), append(entries, e)
		}
		return nil
	})
	if err == nil {
		var n int
		n, err = b.cols.insert(added, entries, b.fields)
		c.entries += n
	}
	if errors.Is(err, errThreadStrings) {
		c.restartWithStrings(b)
		return nil, errColumnRestart
	}
	if err == nil {
		b.columnUpTo = max(b.columnUpTo, upTo)
	}
	c.evict()
	return b, err
}

// errThreadStrings is the answer of columns holding THREAD's ids as numbers to an entry
// that has only strings (threadIDMode).
var errThreadStrings = errors.New("sort cache: a message without Message-ID numbers in a mailbox held with numbers")

// errColumnRestart is appendColumn's answer when it met errThreadStrings: the mailbox was
// emptied to hold strings (restartWithStrings), and its column is to be read again from
// the start.
var errColumnRestart = errors.New("sort cache: the mailbox's column is read again with Message-ID strings")

// restartWithStrings replaces b, which met errThreadStrings, by an empty mailbox that holds
// THREAD's ids as strings, and returns it; under c.mu. The rows b had go: their strings
// were not kept, so they are read again.
func (c *sortKeyCache) restartWithStrings(b *sortBox) *sortBox {
	if e := c.boxes[b.key]; e != nil && e.Value.(*sortBox) == b {
		c.entries -= len(b.cols.uids)
		delete(c.boxes, b.key)
		c.lru.Remove(e)
	}
	fresh := c.boxWith(b.key, b.fields)
	fresh.cols.idMode, fresh.cols.subjMode = threadIDsStrings, threadIDsStrings
	return fresh
}

// put adds the entries of uids (ascending) in box, then evicts mailboxes beyond the bound
// (never box).
func (c *sortKeyCache) put(box sortBoxKey, uids []uint32, entries []sortEntry) {
	if c.max <= 0 || len(uids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.boxOf(box)
	n, err := b.cols.insert(uids, entries, b.fields)
	if err != nil && (b.cols.idMode == threadIDsNumbers || b.cols.subjMode == threadIDsNumbers) && b.cols.refusedAbove(uids, entries, b.fields, b.columnUpTo) {
		// errThreadStrings for messages the column was not read up to: the column has
		// their numbers (readColumnIfMissing reads it after columnUpTo), their records
		// have none. They are left out (the caller's second snapshot sees them missing,
		// stillComplete, and reads this command's keys as strings), and the box keeps its
		// numbers and its rows, so that a column read under way goes on (appendColumn).
		uids, entries = b.cols.accepted(uids, entries, b.fields)
		n, err = b.cols.insert(uids, entries, b.fields)
	}
	if err != nil {
		// errThreadStrings: the box's earlier rows go (the caller's second snapshot sees
		// them missing, stillComplete), the box holds strings from now on.
		b = c.restartWithStrings(b)
		n, _ = b.cols.insert(uids, entries, b.fields)
	}
	c.entries += n
	c.evict()
}

// refusedAbove reports whether every one of entries that c refuses (a THREAD id or a
// subject without numbers, for columns of numbers) is of a UID above upTo.
func (c *sortColumns) refusedAbove(uids []uint32, entries []sortEntry, fields sortFields, upTo uint32) bool {
	for k := range entries {
		if c.refuses(&entries[k], fields) && uids[k] <= upTo {
			return false
		}
	}
	return true
}

// accepted returns uids and entries without the entries c refuses.
func (c *sortColumns) accepted(uids []uint32, entries []sortEntry, fields sortFields) ([]uint32, []sortEntry) {
	var keptUIDs []uint32
	var kept []sortEntry
	for k := range entries {
		if !c.refuses(&entries[k], fields) {
			keptUIDs, kept = append(keptUIDs, uids[k]), append(kept, entries[k])
		}
	}
	return keptUIDs, kept
}

// boxOf returns box's entry, made if needed with the cache's fields, as the most
// recently used; under c.mu.
func (c *sortKeyCache) boxOf(box sortBoxKey) *sortBox { return c.boxWith(box, c.fields) }

// boxWith is boxOf making a box with fields.
func (c *sortKeyCache) boxWith(box sortBoxKey, fields sortFields) *sortBox {
	e := c.boxes[box]
	if e == nil {
		b := &sortBox{key: box, cols: newSortColumns(), fields: fields}
		if c.stringIDs {
			b.cols.idMode, b.cols.subjMode = threadIDsStrings, threadIDsStrings
		}
		e = c.lru.PushFront(b)
		c.boxes[box] = e
	}
	c.lru.MoveToFront(e)
	return e.Value.(*sortBox)
}

// evict drops the least recently used mailboxes while the cache holds more than its bound,
// never the most recent one; under c.mu.
func (c *sortKeyCache) evict() {
	for c.entries > c.max && c.lru.Len() > 1 {
		last := c.lru.Back()
		b := last.Value.(*sortBox)
		c.entries -= len(b.cols.uids)
		delete(c.boxes, b.key)
		c.lru.Remove(last)
	}
}
