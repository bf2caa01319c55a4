package imap

import (
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/imap/sortthread"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Updating contexts (RFC 5267 4, CONTEXT=SEARCH and CONTEXT=SORT): SEARCH, UID SEARCH,
// SORT and UID SORT with RETURN (UPDATE) leave a context in the selected session, whose
// result the session keeps current as its view of the mailbox changes, and tells the client
// of each change with an ESEARCH response carrying ADDTO and REMOVEFROM (RFC 5267 4.3.3,
// 4.3.4).
//
// Invariants:
//
//   - A context lives in the session's selected (sync.go): it ends with the selection
//     (SELECT, EXAMINE, CLOSE, UNSELECT, a deleted mailbox; RFC 5267 4.3: "Updates will cease
//     when the mailbox is no longer selected") or with CANCELUPDATE (4.3.5).
//   - A context changes exactly where the session's view changes, and its responses go out
//     where the view's do: ADDTO after the EXISTS of new messages (4.3.3), REMOVEFROM before
//     the EXPUNGE or VANISHED of expunged ones (4.3.4), and for changed flags after their
//     FETCH and before the view's next EXISTS or EXPUNGE, so every message number sent is
//     valid when it is sent. Flag changes are gathered (selected.contextFlags) and evaluated
//     together at those points.
//   - The cost of a change is O(changes), never a search again. The criteria are split once
//     (splitCriteria): the keys the view answers (flags, MODSEQ, UIDs) are evaluated for the
//     changed messages from the view; the keys only the stored record answers (dates, sizes,
//     headers, body text) never change for a message, so their answer is kept as a set of
//     UIDs (content) and only new messages are read for them, their bodies included; NOT and
//     OR keys that mix both read the records of the changed messages (and their bodies when
//     such a key holds BODY or TEXT).
//   - Message sequence numbers and "$" in the criteria are evaluated once, when the command
//     runs (RFC 5267 4.3), and kept as the UIDs they named.
//   - A SORT context keeps its members' UIDs in sort order (sortthread.Compare, with the UID
//     in Seq: UIDs are in sequence order) in a slice searched by bisection: a change costs
//     O(log n) comparisons and one move of the slice's tail (docs/benchmarks.md, context17).
//   - OLDER and YOUNGER (their answer moves with the clock, not with a change), FUZZY keys and
//     SORT by RELEVANCY (scores of the search index) are not kept current: such a command is
//     answered and its UPDATE refused with NOUPDATE (4.3.1), as past Limits.MaxSearchContexts.

// searchContext is one updating context (RFC 5267 4.3).
type searchContext struct {
	tag    string
	uid    bool                   // UID SEARCH or UID SORT: updates carry UIDs (4.3.2)
	sorted bool                   // SORT: updates carry context positions
	order  []sortthread.Criterion // SORT's criteria
	// The criteria, folded (foldCriteria) and split by what answers them; nil: none.
	view, record, mixed *imap.SearchCriteria
	// content are the UIDs whose record matches record, ascending (with record only).
	content []uint32
	// members are the UIDs of the result, ascending (SEARCH).
	members []uint32
	// sortedMembers are the UIDs of the result in sort order, and byUID their sort keys,
	// with the UID in Seq (SORT). UIDs rather than pointers: moving the slice's tail then
	// copies 4 bytes a message, without the garbage collector's write barriers.
	sortedMembers []uint32
	byUID         map[uint32]*sortthread.Message
}

// defaultMaxSearchContexts is Limits.MaxSearchContexts's default (RFC 5267 4.3.1: at least
// one, and more SHOULD be provided).
const defaultMaxSearchContexts = 10

// contextRequest is what a SEARCH or SORT with RETURN (UPDATE) asks to keep current.
type contextRequest struct {
	cmd      *imapwire.Command
	criteria *imap.SearchCriteria
	order    []sortthread.Criterion // SORT
}

// checkUpdateTag answers a searching command with RETURN (UPDATE) whose tag names a context
// already with BAD (RFC 5267 4.3).
func (c *conn) checkUpdateTag(tag string) error {
	if c.sel.context(tag) != nil {
		return bad("", "Tag "+strconv.Quote(tag)+" already names an updating context (RFC 5267 4.3)")
	}
	return nil
}

// context returns the context of tag, or nil.
func (s *selected) context(tag string) *searchContext {
	for _, x := range s.contexts {
		if x.tag == tag {
			return x
		}
	}
	return nil
}

// openContext keeps the result of a searching command current: matched are the indexes in
// the view of its result, ascending (SEARCH), or sorted its messages in sort order, with
// their message numbers in Seq (SORT).
// When the context cannot be kept, the command's answer stands and the client is told with
// an untagged NO [NOUPDATE] (RFC 5267 4.3.1).
func (c *conn) openContext(req contextRequest, matched []int, sorted []*sortthread.Message) error {
	s := c.sel
	refuse := func(why string) error {
		c.bw.Write(imapresp.AppendStatusResponse(nil, "*", "NO", imapresp.NoUpdateCode(req.cmd.Tag), why))
		return nil
	}
	if len(s.contexts) >= c.srv.limits.MaxSearchContexts {
		return refuse("Too many updating contexts; at most " + strconv.Itoa(c.srv.limits.MaxSearchContexts) + " (CANCELUPDATE ends one)")
	}
	if criteriaHas(req.criteria, isWithinOrFuzzy) {
		return refuse("OLDER, YOUNGER and FUZZY results are not kept up to date")
	}
	if slices.ContainsFunc(req.order, func(k sortthread.Criterion) bool { return k.Key == sortthread.Relevancy }) {
		return refuse("An order by RELEVANCY is not kept up to date")
	}
	if sorted != nil {
		matched = make([]int, len(sorted))
		for k, m := range sorted {
			matched[k] = int(m.Seq - 1)
		}
		slices.Sort(matched)
	}
	crit := c.criteriaByUID(req.criteria) // RFC 5267 4.3: evaluated once, at the command
	view, record, mixed := splitCriteria(crit)
	x := &searchContext{tag: req.cmd.Tag, uid: req.cmd.UID, sorted: req.order != nil, order: req.order}
	if record != nil {
		if view == nil && mixed == nil {
			x.content = s.uidsAt(matched)
		} else {
			positions, _, err := c.searchMatches(record)
			if err != nil {
				return err
			}
			x.content = s.uidsAt(positions)
		}
	}
	x.view, x.record, x.mixed = foldedOrNil(view), foldedOrNil(record), foldedOrNil(mixed)
	if x.sorted {
		x.byUID = make(map[uint32]*sortthread.Message, len(sorted))
		x.sortedMembers = make([]uint32, len(sorted))
		for k, m := range sorted {
			cp := *m
			cp.Seq = s.msgs.uid(int(m.Seq) - 1)
			x.sortedMembers[k], x.byUID[cp.Seq] = cp.Seq, &cp
		}
	} else {
		x.members = s.uidsAt(matched)
	}
	s.contexts = append(s.contexts, x)
	return nil
}

// cmdCancelUpdate: CANCELUPDATE (RFC 5267 4.3.5) ends the contexts of the tags given; a tag
// that names none fails the command and ends nothing.
func (c *conn) cmdCancelUpdate(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.CancelUpdateArgs)
	s := c.sel
	for _, tag := range args.Tags {
		if s.context(tag) == nil {
			return no("", "No updating context has the tag "+strconv.Quote(tag))
		}
	}
	s.contexts = slices.DeleteFunc(s.contexts, func(x *searchContext) bool { return slices.Contains(args.Tags, x.tag) })
	return nil
}

// uidsAt returns the UIDs of the messages at indexes idx of the view.
func (s *selected) uidsAt(idx []int) []uint32 {
	uids := make([]uint32, len(idx))
	for k, i := range idx {
		uids[k] = s.msgs.uid(i)
	}
	return uids
}

// criteriaByUID returns crit with its message sequence numbers and "$" turned into the UIDs
// they name in the view now (RFC 5267 4.3, RFC 5182 2).
func (c *conn) criteriaByUID(crit *imap.SearchCriteria) *imap.SearchCriteria {
	s := c.sel
	out := *crit
	out.SeqNum = nil
	out.UID = nil
	n := uint32(s.msgs.len())
	for _, set := range crit.SeqNum {
		var uids imap.UIDSet
		for i, uid := range s.msgs.uids(0) {
			if numSetContains(set, uint32(i+1), n) {
				uids.AddNum(imap.UID(uid))
			}
		}
		out.UID = append(out.UID, nonEmptyUIDSet(uids))
	}
	for _, set := range crit.UID {
		if imap.IsSearchRes(set) {
			var uids imap.UIDSet
			for _, uid := range s.searchRes {
				uids.AddNum(imap.UID(uid))
			}
			set = nonEmptyUIDSet(uids)
		}
		out.UID = append(out.UID, set)
	}
	out.Not = make([]imap.SearchCriteria, len(crit.Not))
	for k := range crit.Not {
		out.Not[k] = *c.criteriaByUID(&crit.Not[k])
	}
	out.Or = make([][2]imap.SearchCriteria, len(crit.Or))
	for k := range crit.Or {
		out.Or[k] = [2]imap.SearchCriteria{*c.criteriaByUID(&crit.Or[k][0]), *c.criteriaByUID(&crit.Or[k][1])}
	}
	return &out
}

// nonEmptyUIDSet returns uids, or for no UID a set no message has (UID 0 is never used,
// RFC 9051 2.3.1.1), since an empty set would match every message.
func nonEmptyUIDSet(uids imap.UIDSet) imap.UIDSet {
	if len(uids) == 0 {
		return imap.UIDSet{{Start: 0, Stop: 0}}
	}
	return uids
}

// isWithinOrFuzzy reports whether a Header criterion is OLDER, YOUNGER (RFC 5032) or a FUZZY
// key (RFC 6203).
func isWithinOrFuzzy(h imap.SearchCriteriaHeaderField) bool {
	return h.Key == imapwire.SearchOlder || h.Key == imapwire.SearchYounger || isFuzzyKey(h)
}

// criteriaHas reports whether a Header criterion of crit, or of its NOT and OR keys,
// satisfies pred.
func criteriaHas(crit *imap.SearchCriteria, pred func(imap.SearchCriteriaHeaderField) bool) bool {
	return criteriaAny(crit, func(c *imap.SearchCriteria) bool { return slices.ContainsFunc(c.Header, pred) })
}

// criteriaUsesView reports whether crit has a key the session's view answers: a flag,
// MODSEQ, UIDs or message numbers.
func criteriaUsesView(crit *imap.SearchCriteria) bool {
	return criteriaAny(crit, func(c *imap.SearchCriteria) bool {
		return len(c.SeqNum) > 0 || len(c.UID) > 0 || len(c.Flag) > 0 || len(c.NotFlag) > 0 || c.ModSeq != nil
	})
}

// criteriaAny reports whether pred holds for crit or for a criteria of its NOT and OR keys,
// at any depth.
func criteriaAny(crit *imap.SearchCriteria, pred func(*imap.SearchCriteria) bool) bool {
	if pred(crit) {
		return true
	}
	for k := range crit.Not {
		if criteriaAny(&crit.Not[k], pred) {
			return true
		}
	}
	for k := range crit.Or {
		if criteriaAny(&crit.Or[k][0], pred) || criteriaAny(&crit.Or[k][1], pred) {
			return true
		}
	}
	return false
}

// splitCriteria splits crit, whose keys are ANDed, into the keys the view answers, those
// only the stored record answers, and the NOT and OR keys that need both; nil for a part
// with no key. A message matches crit exactly when it matches every part.
func splitCriteria(crit *imap.SearchCriteria) (view, record, mixed *imap.SearchCriteria) {
	var v, r, m imap.SearchCriteria
	v.SeqNum, v.UID, v.Flag, v.NotFlag, v.ModSeq = crit.SeqNum, crit.UID, crit.Flag, crit.NotFlag, crit.ModSeq
	r.Since, r.Before, r.SentSince, r.SentBefore = crit.Since, crit.Before, crit.SentSince, crit.SentBefore
	r.Header, r.Body, r.Text, r.Larger, r.Smaller = crit.Header, crit.Body, crit.Text, crit.Larger, crit.Smaller
	part := func(sub *imap.SearchCriteria) *imap.SearchCriteria {
		needRecord, _ := criteriaNeeds(sub)
		switch {
		case !needRecord:
			return &v
		case !criteriaUsesView(sub):
			return &r
		}
		return &m
	}
	for _, not := range crit.Not {
		p := part(&not)
		p.Not = append(p.Not, not)
	}
	for _, or := range crit.Or {
		needRecord, _ := criteriaNeeds(&imap.SearchCriteria{Or: [][2]imap.SearchCriteria{or}})
		p := &m
		switch {
		case !needRecord:
			p = &v
		case !criteriaUsesView(&or[0]) && !criteriaUsesView(&or[1]):
			p = &r
		}
		p.Or = append(p.Or, or)
	}
	nonEmpty := func(c *imap.SearchCriteria) *imap.SearchCriteria {
		if criteriaUsesView(c) || len(c.Not) > 0 || len(c.Or) > 0 {
			return c
		}
		if needRecord, _ := criteriaNeeds(c); needRecord {
			return c
		}
		return nil
	}
	return nonEmpty(&v), nonEmpty(&r), nonEmpty(&m)
}

// foldedOrNil returns crit folded for matchCriteria, or nil.
func foldedOrNil(crit *imap.SearchCriteria) *imap.SearchCriteria {
	if crit == nil {
		return nil
	}
	return foldCriteria(crit)
}

// noteContextFlags records that the flags of message uid changed in the view, for the
// contexts to evaluate at the next flush (flushContextFlags).
func (s *selected) noteContextFlags(uid uint32) {
	if len(s.contexts) > 0 {
		s.contextFlags = append(s.contextFlags, uid)
	}
}

// flushContextFlags evaluates the contexts for the messages whose flags changed since the
// last flush and sends their updates: to be called before the view's sequence numbers change
// and when a command's updates end.
func (c *conn) flushContextFlags() {
	s := c.sel
	if s == nil || len(s.contextFlags) == 0 {
		return
	}
	uids := s.contextFlags
	s.contextFlags = nil
	slices.Sort(uids)
	uids = slices.Compact(uids)
	positions := make([]int, 0, len(uids))
	for _, uid := range uids {
		if i, found := s.msgs.search(uid); found {
			positions = append(positions, i)
		}
	}
	c.updateContexts(positions, false)
}

// contextsAppended evaluates the contexts for the messages the view gained from index from
// on, after their EXISTS (RFC 5267 4.3.3).
func (c *conn) contextsAppended(from int) {
	s := c.sel
	if len(s.contexts) == 0 || from >= s.msgs.len() {
		return
	}
	positions := make([]int, 0, s.msgs.len()-from)
	for i := from; i < s.msgs.len(); i++ {
		positions = append(positions, i)
	}
	c.updateContexts(positions, true)
}

// contextsExpunged removes the messages at indexes idx (ascending) of the view, about to be
// expunged, from the contexts and sends the REMOVEFROM responses, before the EXPUNGE or
// VANISHED responses (RFC 5267 4.3.4).
func (c *conn) contextsExpunged(idx []int) {
	s := c.sel
	c.flushContextFlags()
	for _, x := range s.contexts {
		var updates []imapresp.ContextUpdate
		for _, i := range idx {
			uid := s.msgs.uid(i)
			x.content = removeUID(x.content, uid)
			if pos, ok := x.remove(uid); ok {
				updates = appendRemoval(updates, pos, c.contextNum(x, i))
			}
		}
		c.writeContextUpdate(x, updates)
	}
}

// updateContexts evaluates every context for the messages at positions of the view
// (ascending): new ones (fresh, whose record keys are evaluated too) or ones whose flags
// changed, and sends the updates of each.
func (c *conn) updateContexts(positions []int, fresh bool) {
	s := c.sel
	if len(positions) == 0 || len(s.contexts) == 0 {
		return
	}
	records, ok := c.contextRecords(positions, fresh)
	if !ok {
		return
	}
	var sortKeys map[uint32]*sortthread.Message
	for _, x := range slices.Clone(s.contexts) {
		var updates []imapresp.ContextUpdate
		var added []int
		for _, i := range positions {
			uid := s.msgs.uid(i)
			if fresh && x.record != nil {
				if rec := records[uid]; rec != nil {
					if m, _ := c.matchCriteria(x.record, i, rec, nil); m {
						x.content = insertUID(x.content, uid)
					}
				}
			}
			match, err := c.contextMatch(x, i, records[uid])
			if err != nil {
				c.endContext(x, "Reading a message failed; the result is no longer kept up to date")
				updates, added = nil, nil
				break
			}
			switch had := x.has(uid); {
			case match && !had:
				added = append(added, i)
			case !match && had:
				pos, _ := x.remove(uid)
				updates = appendRemoval(updates, pos, c.contextNum(x, i))
			}
		}
		if !x.sorted {
			var nums []uint32
			for _, i := range added {
				x.members = insertUID(x.members, s.msgs.uid(i))
				nums = append(nums, c.contextNum(x, i))
			}
			if len(nums) > 0 {
				updates = append(updates, imapresp.ContextUpdate{Nums: nums}) // RFC 5267 4.3.3: position 0
			}
		} else if len(added) > 0 {
			if sortKeys == nil {
				var err error
				if sortKeys, err = c.contextSortKeys(positions); err != nil {
					c.endContext(x, "Reading sort keys failed; the result is no longer kept up to date")
					continue
				}
			}
			for _, i := range added {
				m := sortKeys[s.msgs.uid(i)]
				if m == nil {
					continue // expunged meanwhile
				}
				pos := x.insert(m)
				updates = appendAddition(updates, pos, c.contextNum(x, i))
			}
		}
		c.writeContextUpdate(x, updates)
	}
}

// contextRecords reads the records that evaluating the contexts for the messages at
// positions needs: for fresh messages those of the contexts' record keys, and those of
// their mixed keys. ok is false when the read failed: every context that needed the records
// has ended.
func (c *conn) contextRecords(positions []int, fresh bool) (map[uint32]*metadatapb.MessageRecord, bool) {
	s := c.sel
	var need imap.SearchCriteria
	for _, x := range s.contexts {
		if fresh && x.record != nil {
			need.Not = append(need.Not, *x.record)
		}
		if x.mixed != nil {
			need.Not = append(need.Not, *x.mixed)
		}
	}
	if len(need.Not) == 0 {
		return nil, true
	}
	withStructure, parts, fields := recordScanOf(&need)
	records := make(map[uint32]*metadatapb.MessageRecord, len(positions))
	err := c.scanRecords(positions, withStructure, parts, fields, func(i int, rec *metadatapb.MessageRecord) error {
		records[s.msgs.uid(i)] = rec
		return nil
	})
	if err != nil {
		c.log.Warn("updating contexts: reading records failed", "err", err)
		for _, x := range slices.Clone(s.contexts) {
			if fresh && x.record != nil || x.mixed != nil {
				c.endContext(x, "Reading messages failed; the result is no longer kept up to date")
			}
		}
		return records, false
	}
	return records, true
}

// contextSortKeys returns the sort keys of the messages at positions, by UID, with the UID
// in Seq; a message expunged meanwhile has none.
func (c *conn) contextSortKeys(positions []int) (map[uint32]*sortthread.Message, error) {
	uids := c.sel.uidsAt(positions)
	keys, rows, err := c.sortKeysOf(uids, allFields, subjectStrings, time.Now().Add(c.srv.limits.SortTimeout))
	if err != nil {
		return nil, err
	}
	out := make(map[uint32]*sortthread.Message, len(uids))
	for k, uid := range uids {
		if rows[k] >= 0 {
			m := keys.entry(rows[k])
			m.Seq = uid
			out[uid] = &m
		}
	}
	return out, nil
}

// contextMatch reports whether message i of the view is in x's result now: its record
// matched x's record keys when it arrived, and it matches the view keys and, with its
// record rec, the mixed keys.
func (c *conn) contextMatch(x *searchContext, i int, rec *metadatapb.MessageRecord) (bool, error) {
	uid := c.sel.msgs.uid(i)
	if x.record != nil {
		if _, found := slices.BinarySearch(x.content, uid); !found {
			return false, nil
		}
	}
	if x.view != nil {
		if m, _ := c.matchCriteria(x.view, i, nil, nil); !m {
			return false, nil
		}
	}
	if x.mixed != nil {
		if rec == nil {
			return false, nil // expunged meanwhile (fetchRecords)
		}
		return c.matchCriteria(x.mixed, i, rec, nil)
	}
	return true, nil
}

// endContext ends a context that can no longer be kept current, telling the client with an
// untagged NO [NOUPDATE] (RFC 5267 4.3.1).
func (c *conn) endContext(x *searchContext, why string) {
	s := c.sel
	s.contexts = slices.DeleteFunc(s.contexts, func(y *searchContext) bool { return y == x })
	c.bw.Write(imapresp.AppendStatusResponse(nil, "*", "NO", imapresp.NoUpdateCode(x.tag), why))
}

// contextNum returns how message i of the view goes out in x's updates: its UID or its
// message number (RFC 5267 4.3.2).
func (c *conn) contextNum(x *searchContext, i int) uint32 {
	if x.uid {
		return c.sel.msgs.uid(i)
	}
	return uint32(i + 1)
}

// writeContextUpdate sends x's updates, if any, in one ESEARCH response.
func (c *conn) writeContextUpdate(x *searchContext, updates []imapresp.ContextUpdate) {
	if len(updates) > 0 {
		c.bw.Write(imapresp.AppendContextUpdate(nil, c.encoder(), x.tag, x.uid, updates))
	}
}

// has reports whether uid is in x's result.
func (x *searchContext) has(uid uint32) bool {
	if x.sorted {
		return x.byUID[uid] != nil
	}
	_, found := slices.BinarySearch(x.members, uid)
	return found
}

// remove takes uid out of x's result and returns its context position (1-based in a SORT
// context, 0 in a SEARCH context, RFC 5267 4.3.4); ok is false when it was not in it.
func (x *searchContext) remove(uid uint32) (pos uint32, ok bool) {
	if !x.sorted {
		k, found := slices.BinarySearch(x.members, uid)
		if found {
			x.members = slices.Delete(x.members, k, k+1)
		}
		return 0, found
	}
	m := x.byUID[uid]
	if m == nil {
		return 0, false
	}
	k, _ := slices.BinarySearchFunc(x.sortedMembers, m, x.compare)
	x.sortedMembers = slices.Delete(x.sortedMembers, k, k+1)
	delete(x.byUID, uid)
	return uint32(k + 1), true
}

// insert puts m (Seq its UID) into a SORT context's result and returns its context position
// (RFC 5267 4.3.3).
func (x *searchContext) insert(m *sortthread.Message) uint32 {
	k, _ := slices.BinarySearchFunc(x.sortedMembers, m, x.compare)
	x.sortedMembers = slices.Insert(x.sortedMembers, k, m.Seq)
	x.byUID[m.Seq] = m
	return uint32(k + 1)
}

// compare orders the member uid against m, for the bisection of sortedMembers.
func (x *searchContext) compare(uid uint32, m *sortthread.Message) int {
	return sortthread.Compare(x.byUID[uid], m, x.order)
}

// appendRemoval adds the removal of num at context position pos to updates, in the same
// pair as the removal before it when that one was at the same position (the set then
// removes from pos onwards, RFC 5267 4.3.4).
func appendRemoval(updates []imapresp.ContextUpdate, pos, num uint32) []imapresp.ContextUpdate {
	if n := len(updates); n > 0 && updates[n-1].Remove && updates[n-1].Pos == pos {
		updates[n-1].Nums = append(updates[n-1].Nums, num)
		return updates
	}
	return append(updates, imapresp.ContextUpdate{Remove: true, Pos: pos, Nums: []uint32{num}})
}

// appendAddition adds the insertion of num at context position pos to updates, in the same
// pair as the insertion before it when num follows it (RFC 5267 4.3.3).
func appendAddition(updates []imapresp.ContextUpdate, pos, num uint32) []imapresp.ContextUpdate {
	if n := len(updates); n > 0 && !updates[n-1].Remove && updates[n-1].Pos != 0 &&
		updates[n-1].Pos+uint32(len(updates[n-1].Nums)) == pos {
		updates[n-1].Nums = append(updates[n-1].Nums, num)
		return updates
	}
	return append(updates, imapresp.ContextUpdate{Pos: pos, Nums: []uint32{num}})
}

// insertUID adds uid to the ascending uids.
func insertUID(uids []uint32, uid uint32) []uint32 {
	k, found := slices.BinarySearch(uids, uid)
	if found {
		return uids
	}
	return slices.Insert(uids, k, uid)
}

// removeUID takes uid out of the ascending uids.
func removeUID(uids []uint32, uid uint32) []uint32 {
	if k, found := slices.BinarySearch(uids, uid); found {
		return slices.Delete(uids, k, k+1)
	}
	return uids
}
