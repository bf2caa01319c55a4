package imap

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// SEARCH=FUZZY (RFC 6203). RFC 6203 3 leaves what a FUZZY key matches to the server; here a
// message matches FUZZY BODY, TEXT, SUBJECT, FROM, TO, CC, BCC or HEADER when
//   - it matches the key without FUZZY (substring after case folding, search.go), so every
//     message the exact key finds is found: its relevancy is 100; or
//   - the search index (searchindex.Index.Fuzzy) finds at least two thirds, but not all, of
//     the needle's distinct trigrams that lie inside its words in the words of the key's
//     scope (one field, the body, or the whole message for TEXT): a misspelt or reordered
//     word; its relevancy is the share of those trigrams held, in percent, and 99 when the
//     words hold them all but not the needle.
//
// A needle shorter than a trigram, a message newer than the index, and every message of a
// mailbox the index does not hold (the index is off, or being built) match exactly: then
// FUZZY is the exact key, as RFC 6203 3 allows ("implementation-defined manner"), rather
// than BAD, since a frontend cannot know before it asks whether the index holds a mailbox.
// FUZZY over a key that is not a text key (FUZZY SEEN) is that key.
//
// RELEVANCY (RFC 6203 4) of a message is the lowest relevancy of the FUZZY keys at the top
// level of the search program; FUZZY keys under NOT or OR do not change it, nor does a
// search without FUZZY keys: then every score is 100. SORT's RELEVANCY key (RFC 6203 4,
// sortthread.Relevancy) orders by the same score.

// fuzzyResults holds the index's answers to the fuzzy keys of a search, by folded key.
type fuzzyResults map[imap.SearchCriteriaHeaderField]*metadatapb.SearchTextResult

// isFuzzyKey reports whether a Header criterion is a FUZZY text key (imapwire.SearchFuzzyBody).
func isFuzzyKey(h imap.SearchCriteriaHeaderField) bool {
	return h.Key == imapwire.SearchFuzzyBody || h.Key == imapwire.SearchFuzzyText || strings.HasPrefix(h.Key, imapwire.SearchFuzzyHeader)
}

// fuzzyField returns the header field name of a FUZZY header key, "" for BODY and TEXT.
func fuzzyField(h imap.SearchCriteriaHeaderField) string {
	return strings.TrimPrefix(h.Key, imapwire.SearchFuzzyHeader)
}

// fuzzyReadsBody reports whether a FUZZY key reads the body (BODY, TEXT).
func fuzzyReadsBody(h imap.SearchCriteriaHeaderField) bool {
	return h.Key == imapwire.SearchFuzzyBody || h.Key == imapwire.SearchFuzzyText
}

// minFuzzyNeedle is the shortest folded needle a FUZZY key asks the index for: a trigram.
const minFuzzyNeedle = 3

// fuzzyQuery returns the index query of a folded FUZZY key, nil when its needle is too short
// to have a trigram or is white space alone (no word to look up).
func fuzzyQuery(h imap.SearchCriteriaHeaderField) *metadatapb.SearchTextQuery {
	if len(h.Value) < minFuzzyNeedle || !holdsWord(h.Value) {
		return nil
	}
	q := &metadatapb.SearchTextQuery{Needle: h.Value, Fuzzy: true}
	switch h.Key {
	case imapwire.SearchFuzzyBody:
		q.Scopes = []metadatapb.SearchScope{metadatapb.SearchScope_SEARCH_SCOPE_BODY}
	case imapwire.SearchFuzzyText:
		q.Scopes = []metadatapb.SearchScope{metadatapb.SearchScope_SEARCH_SCOPE_BODY, metadatapb.SearchScope_SEARCH_SCOPE_TEXT}
	default:
		q.Scopes = []metadatapb.SearchScope{mailtext.HeaderScope(fuzzyField(h))}
	}
	return q
}

// fuzzyKeys appends the FUZZY keys of crit to keys: those at its top level, and with deep
// those under its NOT and OR keys too.
func fuzzyKeys(crit *imap.SearchCriteria, deep bool, keys []imap.SearchCriteriaHeaderField) []imap.SearchCriteriaHeaderField {
	for _, h := range crit.Header {
		if isFuzzyKey(h) && !slices.Contains(keys, h) {
			keys = append(keys, h)
		}
	}
	if !deep {
		return keys
	}
	for i := range crit.Not {
		keys = fuzzyKeys(&crit.Not[i], true, keys)
	}
	for i := range crit.Or {
		keys = fuzzyKeys(&crit.Or[i][0], true, keys)
		keys = fuzzyKeys(&crit.Or[i][1], true, keys)
	}
	return keys
}

// score returns the relevancy the index gives uid for key h, ok false when the index did
// not list it (or holds nothing for h).
func (f fuzzyResults) score(h imap.SearchCriteriaHeaderField, uid uint32) (score uint32, ok bool) {
	r := f[h]
	if r == nil || uid > r.GetLastUid() {
		return 0, false
	}
	k, found := slices.BinarySearch(r.GetUids(), uid)
	if !found || k >= len(r.GetScores()) {
		return 0, false
	}
	return min(max(r.GetScores()[k], 1), 100), true
}

// matchFuzzy reports whether the message at i of the view, with its record, matches the
// folded FUZZY key h (see the rules above).
func (c *conn) matchFuzzy(h imap.SearchCriteriaHeaderField, i int, rec *metadatapb.MessageRecord, fuzzy fuzzyResults) (bool, error) {
	var exact bool
	switch h.Key {
	case imapwire.SearchFuzzyBody, imapwire.SearchFuzzyText:
		var err error
		if exact, err = c.textContains(rec, h.Value, h.Key == imapwire.SearchFuzzyText); err != nil {
			return false, err
		}
	default:
		exact = headerMatches(message.Fields(rec.GetStructure().GetHeader()), fuzzyField(h), h.Value)
	}
	if exact {
		return true, nil
	}
	// A message the index lists to verify (it could not read it, or its words cannot
	// tell) matches only exactly. One whose words hold every trigram of the needle's words
	// but not the needle (the words apart, or in another order) scores 99: below the
	// exact matches.
	uid := c.sel.msgs.uid(i)
	score, listed := fuzzy.score(h, uid)
	if !listed || fuzzy.toVerify(h, uid) {
		return false, nil
	}
	if score == 100 {
		fuzzy.lower(h, uid, 99)
	}
	return true, nil
}

// toVerify reports whether the index's answer to key h lists uid as a candidate it cannot
// score (searchindex.Index.Fuzzy: Verify).
func (f fuzzyResults) toVerify(h imap.SearchCriteriaHeaderField, uid uint32) bool {
	_, found := slices.BinarySearch(f[h].GetVerifyUids(), uid)
	return found
}

// lower sets the score of uid, listed in the answer to key h, to score.
func (f fuzzyResults) lower(h imap.SearchCriteriaHeaderField, uid uint32, score uint32) {
	r := f[h]
	if k, found := slices.BinarySearch(r.GetUids(), uid); found && k < len(r.GetScores()) {
		r.Scores[k] = min(r.Scores[k], score)
	}
}

// relevancy returns the RELEVANCY score (RFC 6203 4) of the message with uid, which matched
// crit (folded): the lowest score of crit's top-level FUZZY keys, 100 without any.
func (f fuzzyResults) relevancy(crit *imap.SearchCriteria, uid uint32) uint32 {
	relevancy := uint32(100)
	for _, h := range fuzzyKeys(crit, false, nil) {
		if score, ok := f.score(h, uid); ok {
			relevancy = min(relevancy, score)
		}
	}
	return relevancy
}
