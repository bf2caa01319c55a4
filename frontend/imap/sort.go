package imap

import (
	"math"
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
	msgs, _, err := c.sortInput(&args.Criteria)
	if err != nil {
		return err
	}
	sortthread.Sort(msgs, criteria)
	s := c.sel
	nums := make([]uint32, len(msgs))
	for k, m := range msgs {
		nums[k] = m.Seq
		if cmd.UID {
			nums[k] = s.msgs.uids[m.Seq-1]
		}
	}
	var modseq uint64
	if args.ModSeq && len(msgs) > 0 {
		idx := make([]int, len(msgs))
		for k, m := range msgs {
			idx[k] = int(m.Seq - 1)
		}
		slices.Sort(idx)
		modseq = s.highestModSeqOf(idx) // RFC 7162 3.1.6
	}
	if !args.ESearch {
		c.bw.Write(imapresp.AppendSort(nil, nums, modseq))
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
		return c.openContext(contextRequest{cmd: cmd, criteria: &args.Criteria, order: criteria}, nil, msgs)
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
	msgs, replies, err := c.sortInput(&args.Criteria)
	if err != nil {
		return err
	}
	roots := sortthread.Thread(alg, msgs, func(i int) bool { return replies[i] })
	uids := c.sel.msgs.uids
	num := func(m *sortthread.Message) uint32 {
		if cmd.UID {
			return uids[m.Seq-1]
		}
		return m.Seq
	}
	b := append([]byte(nil), "* THREAD"...)
	if len(roots) > 0 {
		b = append(b, ' ')
	}
	c.bw.Write(append(sortthread.AppendThreads(b, roots, num), '\r', '\n'))
	return nil
}

// sortInput returns the messages of the view that match criteria, in sequence order, with
// their sort keys, and by the same index which had a reply or forward subject. It answers NO [LIMIT] when more messages match than Limits.MaxSortMessages, or
// when reading the keys takes longer than Limits.SortTimeout (RFC 5530 3).
func (c *conn) sortInput(criteria *imap.SearchCriteria) ([]*sortthread.Message, []bool, error) {
	limits := c.srv.limits
	deadline := time.Now().Add(limits.SortTimeout)
	matched, relevancy, err := c.searchMatches(criteria)
	if err != nil {
		return nil, nil, err
	}
	if len(matched) > limits.MaxSortMessages {
		return nil, nil, no(imapresp.CodeLimit, "More than "+strconv.Itoa(limits.MaxSortMessages)+" messages to order")
	}
	s := c.sel
	cache, box := c.sortCache()
	if err := c.readColumnIfMissing(&cache, box, matched, deadline); err != nil {
		return nil, nil, err
	}
	msgs := make([]*sortthread.Message, 0, len(matched))
	var replies []bool
	for start := 0; start < len(matched); start += fetchBatch {
		if time.Now().After(deadline) {
			return nil, nil, no(imapresp.CodeLimit, "Ordering took longer than "+limits.SortTimeout.String())
		}
		batch := matched[start:min(start+fetchBatch, len(matched))]
		entries, cached, err := c.sortEntriesOf(cache, box, s.uidsAt(batch))
		if err != nil {
			return nil, nil, err
		}
		for k, i := range batch {
			if !cached[k] {
				continue // expunged meanwhile: as SEARCH, it matches nothing
			}
			m := entries[k].msg
			m.Seq = uint32(i + 1)
			m.Relevancy = relevancy(i) // RFC 6203 4 (fuzzy.go)
			msgs = append(msgs, &m)
			replies = append(replies, entries[k].reply)
		}
	}
	return msgs, replies, nil
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

// sortEntriesOf returns the sort keys of uids of box, from cache (nil: none) where it holds
// them and else from the stored records (put in the cache then); found is false for a UID
// expunged meanwhile.
func (c *conn) sortEntriesOf(cache *sortKeyCache, box sortBoxKey, uids []uint32) (entries []sortEntry, found []bool, err error) {
	entries, found = make([]sortEntry, len(uids)), make([]bool, len(uids))
	if cache != nil {
		cache.get(box, uids, entries, found)
	}
	var missing []uint32
	for k, uid := range uids {
		if !found[k] {
			missing = append(missing, uid)
		}
	}
	if len(missing) == 0 {
		return entries, found, nil
	}
	fetched, err := c.sortEntries(missing)
	if err != nil {
		return nil, nil, err
	}
	var got []uint32
	var gotEntries []sortEntry
	for k, uid := range uids {
		if e, ok := fetched[uid]; ok && !found[k] {
			entries[k], found[k] = e, true
			got, gotEntries = append(got, uid), append(gotEntries, e)
		}
	}
	if cache != nil {
		cache.put(box, got, gotEntries)
	}
	return entries, found, nil
}

// readColumnIfMissing reads the mailbox's sort-key column into *cache when at least
// columnMinMissing of the matched messages have no entry there; without a shared cache
// (another owner's mailbox, or the cache turned off) *cache becomes one for this command
// alone.
func (c *conn) readColumnIfMissing(cache **sortKeyCache, box sortBoxKey, matched []int, deadline time.Time) error {
	least := int(columnMinMissing.Load())
	if len(matched) < least {
		return nil
	}
	if *cache == nil || (*cache).max <= 0 {
		*cache = newSortKeyCache(math.MaxInt)
	}
	uids := make([]uint32, len(matched))
	for k, i := range matched {
		uids[k] = c.sel.msgs.uids[i]
	}
	// Of the missing, those the column may hold: it was read up to columnRead.
	if (*cache).missingAbove(box, uids, (*cache).columnRead(box)) < least {
		return nil
	}
	return c.fillFromColumn(*cache, box, deadline)
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
