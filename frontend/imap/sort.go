package imap

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/imap/sortthread"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdSort: SORT and UID SORT (RFC 5256 3, RFC 5957 DISPLAYFROM and DISPLAYTO) with ESORT's
// return options (RFC 5267 3, RFC 9394 PARTIAL). The messages are chosen by the SEARCH
// evaluation (searchMatches) and ordered by the keys extracted at ingest (SortKeys in the
// stored structure), so SORT reads neither headers nor bodies; a message stored before the
// keys were kept has them derived from its envelope and header (sortKeysOf).
func (c *conn) cmdSort(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.SortArgs)
	var criteria []sortthread.Criterion
	for _, k := range args.Keys {
		key, ok := sortthread.KeyByName[k.Name]
		if !ok {
			return bad("", "Unknown sort key "+k.Name) // RFC 5256 3
		}
		criteria = append(criteria, sortthread.Criterion{Key: key, Reverse: k.Reverse})
	}
	update, err := checkReturnOptions("SORT", args.Return, "MIN", "MAX", "ALL", "COUNT") // RFC 5267 3.1
	if err != nil {
		return err
	}
	if err := checkCharset(args.Charset); err != nil { // RFC 5256 3: NO [BADCHARSET]
		return err
	}
	if c.uidOnly && (!cmd.UID || criteriaUseSeqNumbers(&args.Criteria)) {
		return bad(imapresp.CodeUIDRequired, "UIDONLY does not allow message sequence numbers") // RFC 9586 3
	}
	if update {
		if err := c.checkUpdateTag(cmd.Tag); err != nil {
			return err
		}
	}
	if args.ModSeq {
		c.enableCondStore() // RFC 7162 3.1
	}
	fields := sortNeed(criteria)
	withRelevancy := slices.ContainsFunc(criteria, func(k sortthread.Criterion) bool { return k.Key == sortthread.Relevancy })
	subject := subjectIDs
	if fields.keepsText(0) {
		subject = subjectRanked
		if update {
			subject = subjectStrings // the context compares the strings (context.go)
		}
	}
	if update {
		fields |= fieldDates // the context keeps each message's keys (context.go)
	}
	set, err := c.sortInput(&args.Criteria, fields, subject, withRelevancy)
	if err != nil {
		return err
	}
	order := set.keys.columns(set.rows, fields)
	order.Relevancy = set.relevancy
	sorted := order.Order(criteria)
	s := c.sel
	byPosition := set.numbers(cmd.UID)
	nums := make([]uint32, len(sorted))
	for k, p := range sorted {
		nums[k] = byPosition[p]
	}
	var modseq uint64
	if args.ModSeq && len(set.view) > 0 {
		modseq = s.highestModSeqOf(set.view) // RFC 7162 3.1.6 (set.view is ascending)
	}
	if !args.ESearch {
		_ = imapresp.WriteSort(c.bw, nums, modseq) // an error stays in c.bw, the next flush ends the connection
		return nil
	}
	returns := args.Return
	if len(returns) == 0 {
		returns = []string{"ALL"} // RFC 5267 3.1: RETURN () means ALL
	}
	e := imapresp.ESort{Tag: cmd.Tag, UID: cmd.UID, Returns: returns, Nums: nums, ModSeq: modseq}
	if p := args.Partial; p != nil {
		e.Partial = &imapresp.Partial{First: p.First, Last: p.Last}
	}
	c.bw.Write(imapresp.AppendESort(nil, c.encoder(), e))
	if update {
		return c.openContext(contextRequest{cmd: cmd, criteria: &args.Criteria, order: criteria}, nil, set.messages(sorted))
	}
	return nil
}

// cmdThread: THREAD and UID THREAD (RFC 5256 4): ORDEREDSUBJECT, REFERENCES and REFS.
func (c *conn) cmdThread(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.ThreadArgs)
	alg, ok := sortthread.AlgorithmByName[args.Algorithm]
	if !ok {
		return bad("", "Unknown thread algorithm "+args.Algorithm) // RFC 5256 4
	}
	if err := checkCharset(args.Charset); err != nil { // RFC 5256 4: NO [BADCHARSET]
		return err
	}
	if c.uidOnly && (!cmd.UID || criteriaUseSeqNumbers(&args.Criteria)) {
		return bad(imapresp.CodeUIDRequired, "UIDONLY does not allow message sequence numbers") // RFC 9586 3
	}
	var ranked sortFields
	subject := subjectIDs // REFERENCES and REFS group by the subject's id or number
	if alg == sortthread.OrderedSubject {
		ranked = textField(sortthread.Subject) // sorted by base subject (RFC 5256 4)
		subject = subjectRanked
	}
	set, err := c.sortInput(&args.Criteria, fieldThread|fieldDates, subject, false)
	if err != nil {
		return err
	}
	roots := set.keys.columns(set.rows, ranked).Thread(alg)
	nums := set.numbers(cmd.UID)
	num := func(p int32) uint32 { return nums[p] }
	// Room for the answer at once: a number and its separator a message, and the
	// parentheses, about 10 bytes for a million (7 digits), not grown by doubling.
	b := append(make([]byte, 0, 16+len(nums)*(len(strconv.Itoa(len(nums)))+3)), "* THREAD"...)
	if len(roots) > 0 {
		b = append(b, ' ')
	}
	c.bw.Write(append(sortthread.AppendThreads(b, roots, num), '\r', '\n'))
	return nil
}

// sortSet is what a SORT or THREAD orders: the keys of the selected mailbox's messages
// (as they were when read), and by position the rows of the matching messages there, their
// indexes in the view (ascending), their UIDs and, when asked for, their RELEVANCY.
type sortSet struct {
	keys      *sortSnapshot
	rows      []int32
	view      []int
	uids      []uint32
	relevancy []uint32
}

// numbers returns the message number of each position (its UID with uid), in position
// order (the view ascends), so that the answer looks them up by position rather than at
// random in the view. The UIDs are the set's own: not to be written.
func (set *sortSet) numbers(uid bool) []uint32 {
	if uid {
		return set.uids
	}
	nums := make([]uint32, len(set.view))
	for p, i := range set.view {
		nums[p] = uint32(i + 1)
	}
	return nums
}

// messages returns the messages at positions (of set), in that order, with their keys and
// message numbers (a SORT context keeps them, context.go).
func (set *sortSet) messages(positions []int32) []*sortthread.Message {
	msgs := make([]*sortthread.Message, len(positions))
	for k, p := range positions {
		m := set.keys.entry(set.rows[p])
		m.Seq = uint32(set.view[p] + 1)
		msgs[k] = &m
	}
	return msgs
}

// sortInput returns the messages of the view that match criteria, in sequence order, with
// their sort keys, those of fields (the subject as subject says, and RELEVANCY with
// withRelevancy). It answers NO [LIMIT] when more messages match than
// Limits.MaxSortMessages, or when reading the keys takes longer than Limits.SortTimeout
// (RFC 5530 3).
func (c *conn) sortInput(criteria *imap.SearchCriteria, fields sortFields, subject subjectUse, withRelevancy bool) (*sortSet, error) {
	limits := c.srv.limits
	deadline := time.Now().Add(limits.SortTimeout)
	matched, relevancy, err := c.searchMatches(criteria)
	if err != nil {
		return nil, err
	}
	if len(matched) > limits.MaxSortMessages {
		return nil, no(imapresp.CodeLimit, "More than "+strconv.Itoa(limits.MaxSortMessages)+" messages to order")
	}
	uids := c.sel.uidsAt(matched)
	keys, rows, err := c.sortKeysOf(uids, fields, subject, deadline)
	if err != nil {
		return nil, err
	}
	// Filtered in place (matched, uids and rows are this command's own; each write is at
	// or before its read): a million matches cost no second copy of each.
	set := &sortSet{keys: keys, rows: rows[:0], view: matched[:0], uids: uids[:0]}
	for k, r := range rows {
		if r < 0 {
			continue // expunged meanwhile: as SEARCH, it matches nothing
		}
		i := matched[k]
		set.rows, set.view, set.uids = append(set.rows, r), append(set.view, i), append(set.uids, uids[k])
		if withRelevancy {
			set.relevancy = append(set.relevancy, relevancy(i)) // RFC 6203 4 (fuzzy.go)
		}
	}
	return set, nil
}

// subjectUse is what a command does with the base subjects of the keys it reads.
type subjectUse uint8

const (
	// subjectIDs: tells them apart (THREAD REFERENCES and REFS, RFC 5256 4 step 5), or
	// does not read them: the subject dictionary's numbers serve as they are.
	subjectIDs subjectUse = iota
	// subjectRanked: orders by them (SORT SUBJECT, THREAD ORDEREDSUBJECT): numbers need
	// the dictionary's order (rankSubjects).
	subjectRanked
	// subjectStrings: keeps them (a SORT context compares strings, context.go): numbers
	// do not serve.
	subjectStrings
)

// sortKeysOf returns the keys of the selected mailbox and the row there of each of uids
// (ascending), -1 for those expunged meanwhile: from the frontend's cache for the session's
// own mailbox, else from a cache for this command alone that keeps only fields; filled from
// the sort-key column when many are missing (readColumnIfMissing), and from the records for
// the rest. Subjects held as the subject dictionary's numbers are ranked as subject asks
// (rankSubjects).
func (c *conn) sortKeysOf(uids []uint32, fields sortFields, subject subjectUse, deadline time.Time) (*sortSnapshot, []int32, error) {
	cache, box := c.sortCache()
	if cache == nil || cache.max <= 0 {
		cache = newCommandSortCache(fields, false)
	}
	keys, rows, complete, err := c.fillSortKeys(cache, box, uids, fields, deadline)
	if err == nil && complete && subject != subjectIDs && keys.subjectNumbers() {
		complete = false // subjectStrings: the strings are read below
		if subject == subjectRanked {
			complete, err = c.rankSubjects(cache, box, keys, deadline)
		}
	}
	if err == nil && !complete {
		// Another session's mailbox evicted this one while it was filled, or a message
		// without Message-ID or subject numbers emptied it (threadIDMode), or another
		// command made it anew from the dates projection (sortBox.fields), or its subject
		// numbers cannot be ranked or do not serve: this command reads its keys again,
		// into a cache of its own that holds strings, so that it refuses none.
		keys, rows, _, err = c.fillSortKeys(newCommandSortCache(fields, true), box, uids, fields, deadline)
	}
	return keys, rows, err
}

// rankSubjects gives keys, whose subjects are the subject dictionary's numbers, the ranks
// of every number of rows: those the box holds, else the dictionary's order read again
// (metadata/subjectnumbers.go), kept in the box for the next command. So SORT (SUBJECT)
// ranks a million subjects by one ordered read instead of interning and sorting the
// strings (RFC 5256 3: octets of the casemapped base subject, the dictionary's key order).
// ranked is false when they cannot be ranked (a service that sends no order): the caller
// reads the strings.
func (c *conn) rankSubjects(cache *sortKeyCache, box sortBoxKey, keys *sortSnapshot, deadline time.Time) (ranked bool, _ error) {
	if keys.subjectRanked() {
		return true, nil
	}
	order, err := c.readSubjectOrder(deadline)
	if errors.Is(err, errNoSubjectOrder) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	keys.subjectRank = subjectRanks(order)
	cache.setSubjectRank(box, keys.subjectRank)
	return keys.subjectRanked(), nil
}

// fillSortKeys is sortKeysOf with cache, for a command that orders by need; complete is
// false when keys read from the records are not in the snapshot, or its rows lack some
// of need.
func (c *conn) fillSortKeys(cache *sortKeyCache, box sortBoxKey, uids []uint32, need sortFields, deadline time.Time) (keys *sortSnapshot, rows []int32, complete bool, err error) {
	// A box dropped for lacking need held what an earlier command needed: the one read
	// anew holds both, so that commands alternating their keys (SORT by SUBJECT, then by
	// DATE) do not each read a projection of the whole mailbox again (the thread-keys
	// projection holds the subjects and the dates).
	need |= cache.dropLacking(box, need)
	if err := c.readColumnIfMissing(cache, box, uids, need, deadline); err != nil {
		return nil, nil, false, err
	}
	keys, rows = cache.snapshot(box, uids)
	if keys.fields&need != need {
		return keys, rows, false, nil
	}
	var missing []uint32
	for k, r := range rows {
		if r < 0 {
			missing = append(missing, uids[k])
		}
	}
	if len(missing) == 0 {
		return keys, rows, true, nil
	}
	var read []uint32
	for start := 0; start < len(missing); start += fetchBatch {
		if time.Now().After(deadline) {
			return nil, nil, false, no(imapresp.CodeLimit, "Ordering took longer than "+c.srv.limits.SortTimeout.String())
		}
		batch := missing[start:min(start+fetchBatch, len(missing))]
		fetched, err := c.sortEntries(batch)
		if err != nil {
			return nil, nil, false, err
		}
		var got []uint32
		var entries []sortEntry
		for _, uid := range batch {
			if e, ok := fetched[uid]; ok {
				got, entries = append(got, uid), append(entries, e)
			}
		}
		cache.put(box, got, entries)
		read = append(read, got...)
	}
	before := rows
	keys, rows = cache.snapshot(box, uids)
	return keys, rows, keys.fields&need == need && stillComplete(before, rows, keys.rowsOf(read)), nil
}

// stillComplete reports whether a fill's second snapshot (rows after) holds every message
// its first one did (before) and every key read meanwhile (readRows): another mailbox's
// fill may have evicted the box between the two, and the box put back holds only what was
// put after that; the messages it lacks would otherwise be taken for expunged and left out
// of the answer (found in review: a SORT answered with only the new messages).
func stillComplete(before, after, readRows []int32) bool {
	for k, r := range after {
		if r < 0 && before[k] >= 0 {
			return false
		}
	}
	for _, r := range readRows {
		if r < 0 {
			return false
		}
	}
	return true
}

// sortCache returns the frontend's cache of sort keys where the selected mailbox is the
// session's own (nil for another owner's: RFC 4314, it is read under the rights in force),
// and the selected mailbox's key in it.
func (c *conn) sortCache() (*sortKeyCache, sortBoxKey) {
	s := c.sel
	var cache *sortKeyCache
	if s.owner == c.accountName() {
		cache = c.srv.sortKeys
	}
	return cache, sortBoxKey{owner: s.owner, mailboxID: s.mailboxID, uidValidity: s.uidValidity}
}

// readColumnIfMissing reads the mailbox's sort-key column (its dates projection when need
// is none and the box holds no more) into cache when at least
// columnMinMissing of uids (ascending) have no entry there, or any one above the UID the
// column was read up to when the mailbox holds THREAD's ids as numbers: a message's record
// has no numbers (threadIDMode), the column has them, and reading it after that UID costs
// the chunks past it (the few messages added since), not a mailbox scan.
func (c *conn) readColumnIfMissing(cache *sortKeyCache, box sortBoxKey, uids []uint32, need sortFields, deadline time.Time) error {
	upTo, numbers := cache.columnRead(box)
	least := int(columnMinMissing.Load())
	if numbers {
		least = 1
	}
	if len(uids) < least {
		return nil
	}
	// Of the missing, those the column may hold: it was read up to upTo.
	if cache.missingAbove(box, uids, upTo) < least {
		return nil
	}
	return c.fillFromColumn(cache, box, need, deadline)
}

// sortEntries reads the sort keys of uids from the stored records, derived from the
// envelope and header for those stored before the keys were kept; a UID without a record
// (expunged) is left out.
func (c *conn) sortEntries(uids []uint32) (map[uint32]sortEntry, error) {
	records, err := c.fetchRecords(uids, true, structureSortKeys, nil)
	if err != nil {
		return nil, err
	}
	var old []uint32 // stored before the keys were kept
	for _, uid := range uids {
		if rec := records[uid]; rec != nil && rec.GetStructure().GetSortKeys() == nil {
			old = append(old, uid)
		}
	}
	var derived map[uint32]*metadatapb.MessageRecord
	if len(old) > 0 {
		if derived, err = c.fetchRecords(old, true, structureEnvelope|structureHeader, []string{"References"}); err != nil {
			return nil, err
		}
	}
	out := make(map[uint32]sortEntry, len(records))
	for uid, rec := range records {
		out[uid] = sortEntryOf(rec.GetInternalDateUnix(), rec.GetSize(), sortKeysOf(rec, derived[uid]))
	}
	return out, nil
}

// sortKeysOf returns a record's sort keys, derived from old (its envelope and header) when
// it was stored without them.
func sortKeysOf(rec, old *metadatapb.MessageRecord) *metadatapb.SortKeys {
	keys := rec.GetStructure().GetSortKeys()
	if keys == nil && old != nil {
		keys = message.SortKeys(old.GetStructure())
	}
	return keys
}
