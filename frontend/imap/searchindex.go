package imap

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// indexKey names the top-level text key of a criteria an index query comes from: the
// index of its entry in Body, Text or Header.
type indexKey struct {
	list byte // 'b' Body, 't' Text, 'h' Header
	at   int
}

// indexQueries returns the index queries of crit's top-level text keys (folded): every
// one must match, so the intersection of their candidates holds every match of crit.
// Keys under NOT and OR are left to the scan. A needle of separators alone (white space)
// is in every word-holding text, so the index cannot narrow it (searchindex.Indexable).
func indexQueries(crit *imap.SearchCriteria) ([]*metadatapb.SearchTextQuery, []indexKey) {
	var qs []*metadatapb.SearchTextQuery
	var keys []indexKey
	add := func(key indexKey, needle string, scopes ...metadatapb.SearchScope) {
		if holdsWord(needle) {
			qs = append(qs, &metadatapb.SearchTextQuery{Needle: needle, Scopes: scopes})
			keys = append(keys, key)
		}
	}
	for i, b := range crit.Body {
		add(indexKey{'b', i}, b, metadatapb.SearchScope_SEARCH_SCOPE_BODY)
	}
	for i, t := range crit.Text {
		add(indexKey{'t', i}, t, metadatapb.SearchScope_SEARCH_SCOPE_BODY, metadatapb.SearchScope_SEARCH_SCOPE_TEXT)
	}
	for i, h := range crit.Header {
		if isHeaderKey(h) {
			add(indexKey{'h', i}, h.Value, mailtext.HeaderScope(h.Key))
		}
	}
	return qs, keys
}

// holdsWord reports whether a folded needle holds a byte other than a word separator
// (mailtext.IsWordSeparator): one the index's words can narrow (searchindex.Indexable).
func holdsWord(needle string) bool {
	for i := 0; i < len(needle); i++ {
		if !mailtext.IsWordSeparator(needle[i]) {
			return true
		}
	}
	return false
}

// exactAnswers are the index's exact answers to some top-level text keys of a criteria
// (searchindex "Exact answers"): for a message they cover, the key holds.
type exactAnswers struct {
	keys    []indexKey
	results []*metadatapb.SearchTextResult
}

// sure reports whether every exact answer proves its key for uid, a candidate of each.
func (e *exactAnswers) sure(uid uint32) bool {
	for _, r := range e.results {
		if uid > r.GetLastUid() {
			return false
		}
		if _, found := slices.BinarySearch(r.GetVerifyUids(), uid); found {
			return false
		}
	}
	return true
}

// allSure reports whether every exact answer proves its key for each of its candidates up
// to UID last: none has UIDs to verify, and each covers UIDs up to last.
func (e *exactAnswers) allSure(last uint32) bool {
	for _, r := range e.results {
		if last > r.GetLastUid() || len(r.GetVerifyUids()) > 0 {
			return false
		}
	}
	return true
}

// matchesAll reports whether crit has no key at all (every message matches it, as SEARCH
// ALL): what is left of a criteria whose only keys the index answered exactly. An empty
// list is no key: foldCriteria and without leave empty, non-nil Not, Or and text lists,
// which a plain IsZero of the struct counted as keys (so the shortcut never ran).
func matchesAll(crit *imap.SearchCriteria) bool {
	v := reflect.ValueOf(crit).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Slice {
			if f.Len() > 0 {
				return false
			}
		} else if !f.IsZero() {
			return false
		}
	}
	return true
}

// without returns a copy of crit without the keys the exact answers prove.
func (e *exactAnswers) without(crit *imap.SearchCriteria) *imap.SearchCriteria {
	out := *crit
	drop := func(list byte) func(int) bool {
		return func(i int) bool { return slices.Contains(e.keys, indexKey{list, i}) }
	}
	out.Body = keepUnless(crit.Body, drop('b'))
	out.Text = keepUnless(crit.Text, drop('t'))
	out.Header = keepUnless(crit.Header, drop('h'))
	return &out
}

// keepUnless returns the elements of list whose index dropped rejects.
func keepUnless[T any](list []T, dropped func(i int) bool) []T {
	var out []T
	for i, v := range list {
		if !dropped(i) {
			out = append(out, v)
		}
	}
	return out
}

// indexCandidates returns the positions in the session's view of the messages that may
// match crit according to the search index (SearchText), or ok false when the index
// cannot narrow the search (no indexable key, no index of the mailbox here): then every
// message is a candidate. The candidates are a superset of the matches (searchindex:
// Superset); the caller verifies each as a full scan would. It also returns the index's
// answers to crit's FUZZY keys (fuzzy.go), nil when the index holds no such answers.
func (c *conn) indexCandidates(crit *imap.SearchCriteria) (positions []int, ok bool, fuzzy fuzzyResults, exact *exactAnswers, err error) {
	queries, keys := indexQueries(crit)
	// A top-level FUZZY key narrows too: its fuzzy answer holds every message whose words
	// hold all of the needle's in-word trigrams in the scope, so every exact match
	// (fuzzy.go).
	var fuzzyAsked []imap.SearchCriteriaHeaderField
	for _, h := range fuzzyKeys(crit, false, nil) {
		if q := fuzzyQuery(h); q != nil {
			queries = append(queries, q)
			fuzzyAsked = append(fuzzyAsked, h)
		}
	}
	narrowing := len(queries)
	nested := fuzzyKeys(crit, true, slices.Clone(fuzzyAsked))[len(fuzzyAsked):]
	for _, h := range nested {
		if q := fuzzyQuery(h); q != nil {
			queries = append(queries, q)
			fuzzyAsked = append(fuzzyAsked, h)
		}
	}
	if len(queries) == 0 {
		return nil, false, nil, nil, nil
	}
	s := c.sel
	var resp *metadatapb.SearchTextResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.SearchText(ctx, &metadatapb.SearchTextRequest{
			Account: s.owner, MailboxId: s.mailboxID, User: c.accountName(), Queries: queries,
		})
		return err
	})
	if err != nil {
		return nil, false, nil, nil, err
	}
	if !resp.GetIndexed() || len(resp.GetResults()) != len(queries) {
		return nil, false, nil, nil, nil
	}
	results := resp.GetResults()
	if len(fuzzyAsked) > 0 {
		fuzzy = fuzzyResults{}
		for k, h := range fuzzyAsked {
			fuzzy[h] = results[len(queries)-len(fuzzyAsked)+k]
		}
	}
	if narrowing == 0 {
		return nil, false, fuzzy, nil, nil
	}
	for k, key := range keys {
		if results[k].GetExact() {
			if exact == nil {
				exact = &exactAnswers{}
			}
			exact.keys = append(exact.keys, key)
			exact.results = append(exact.results, results[k])
		}
	}
	sets := make([]*candidateSet, narrowing)
	for k, r := range results[:narrowing] {
		sets[k] = newCandidateSet(r)
	}
	if len(sets) == 1 && len(sets[0].bitmap) > 0 {
		// One key answered as a bitmap (a common word): one bit test per message.
		return sets[0].positionsIn(&s.msgs), true, fuzzy, exact, nil
	}
	positions = make([]int, 0, s.msgs.len())
	for i, uid := range s.msgs.uids(0) {
		if candidateOfAll(sets, uid) {
			positions = append(positions, i)
		}
	}
	return positions, true, fuzzy, exact, nil
}

// candidateOfAll reports whether uid is a candidate of every set.
func candidateOfAll(sets []*candidateSet, uid uint32) bool {
	for _, c := range sets {
		if !c.has(uid) {
			return false
		}
	}
	return true
}

// candidateSet is the candidates of one index result, asked UID by UID in ascending
// order: a bit test with the result's uid_bitmap, a walk along its uids otherwise, so a
// view of a million messages costs a step each rather than a binary search each.
type candidateSet struct {
	last   uint32
	bitmap []byte
	uids   []uint32
	at     int // uids[:at] are below the UIDs still to be asked
}

func newCandidateSet(r *metadatapb.SearchTextResult) *candidateSet {
	return &candidateSet{last: r.GetLastUid(), bitmap: r.GetUidBitmap(), uids: r.GetUids()}
}

// positionsIn returns the positions in uids (ascending) of the candidates of a set
// answered as a bitmap, in one pass: a bit test per UID up to the set's last UID, every
// one after it (not indexed yet). The list is one allocation, sized by the bitmap's
// population (and the UIDs after last), not by the view.
func (c *candidateSet) positionsIn(msgs *msgList) []int {
	bitmap, last := c.bitmap, c.last
	above := msgs.len()
	if last < math.MaxUint32 {
		above, _ = msgs.search(last + 1)
	}
	n := msgs.len() - above
	for len(bitmap) >= 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(bitmap))
		bitmap = bitmap[8:]
	}
	for _, b := range bitmap {
		n += bits.OnesCount8(b)
	}
	bitmap = c.bitmap
	positions := make([]int, 0, min(n, msgs.len()))
	for at, run := range msgs.runs(0, above) {
		for j, uid := range run.uids {
			if int(uid/8) < len(bitmap) && bitmap[uid/8]&(1<<(uid%8)) != 0 {
				positions = append(positions, at+j)
			}
		}
	}
	for i := above; i < msgs.len(); i++ {
		positions = append(positions, i)
	}
	return positions
}

// has reports whether uid is a candidate; uid is above every UID asked before.
func (c *candidateSet) has(uid uint32) bool {
	if uid > c.last {
		return true // not indexed yet
	}
	if len(c.bitmap) > 0 {
		return int(uid/8) < len(c.bitmap) && c.bitmap[uid/8]&(1<<(uid%8)) != 0
	}
	for c.at < len(c.uids) && c.uids[c.at] < uid {
		c.at++
	}
	return c.at < len(c.uids) && c.uids[c.at] == uid
}

// checkScanBound refuses, NO [LIMIT] (RFC 5530 3), a SEARCH that would read the bodies of
// more messages than Limits.MaxBodyScan: one with BODY or TEXT keys over that many
// candidates (positions, nil: the whole view).
func (c *conn) checkScanBound(crit *imap.SearchCriteria, positions []int) error {
	if !criteriaReadBodies(crit) {
		return nil
	}
	n := len(positions)
	if positions == nil {
		n = c.sel.msgs.len()
	}
	if n > c.srv.limits.MaxBodyScan {
		return no(imapresp.CodeLimit, fmt.Sprintf("SEARCH would read %d message bodies, more than this server allows (%d); use a longer word", n, c.srv.limits.MaxBodyScan))
	}
	return nil
}

// criteriaReadBodies reports whether crit has a BODY or TEXT key, in itself or in its NOT
// and OR keys.
func criteriaReadBodies(crit *imap.SearchCriteria) bool {
	return criteriaAny(crit, func(c *imap.SearchCriteria) bool {
		return len(c.Body) > 0 || len(c.Text) > 0 || slices.ContainsFunc(c.Header, fuzzyReadsBody)
	})
}
