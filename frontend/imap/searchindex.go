package imap

import (
	"context"
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// minIndexedNeedle is the shortest folded needle the search index narrows (a trigram).
const minIndexedNeedle = 3

// indexQueries returns the index queries of crit's top-level text keys (folded): every
// one must match, so the intersection of their candidates holds every match of crit.
// Keys under NOT and OR are left to the scan.
func indexQueries(crit *imap.SearchCriteria) []*metadatapb.SearchTextQuery {
	var qs []*metadatapb.SearchTextQuery
	add := func(needle string, scopes ...metadatapb.SearchScope) {
		if len(needle) >= minIndexedNeedle {
			qs = append(qs, &metadatapb.SearchTextQuery{Needle: needle, Scopes: scopes})
		}
	}
	for _, b := range crit.Body {
		add(b, metadatapb.SearchScope_SEARCH_SCOPE_BODY)
	}
	for _, t := range crit.Text {
		add(t, metadatapb.SearchScope_SEARCH_SCOPE_BODY, metadatapb.SearchScope_SEARCH_SCOPE_TEXT)
	}
	for _, h := range crit.Header {
		if isHeaderKey(h) {
			add(h.Value, mailtext.HeaderScope(h.Key))
		}
	}
	return qs
}

// indexCandidates returns the positions in the session's view of the messages that may
// match crit according to the search index (SearchText), or ok false when the index
// cannot narrow the search (no indexable key, no index of the mailbox here): then every
// message is a candidate. The candidates are a superset of the matches (searchindex:
// Superset); the caller verifies each as a full scan would. It also returns the index's
// answers to crit's FUZZY keys (fuzzy.go), nil when the index holds no such answers.
func (c *conn) indexCandidates(crit *imap.SearchCriteria) (positions []int, ok bool, fuzzy fuzzyResults, err error) {
	queries := indexQueries(crit)
	// A top-level FUZZY key narrows too: its fuzzy answer holds every message holding all
	// of the needle's trigrams in the scope, so every exact match (fuzzy.go).
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
		return nil, false, nil, nil
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
		return nil, false, nil, err
	}
	if !resp.GetIndexed() || len(resp.GetResults()) != len(queries) {
		return nil, false, nil, nil
	}
	results := resp.GetResults()
	if len(fuzzyAsked) > 0 {
		fuzzy = fuzzyResults{}
		for k, h := range fuzzyAsked {
			fuzzy[h] = results[len(queries)-len(fuzzyAsked)+k]
		}
	}
	if narrowing == 0 {
		return nil, false, fuzzy, nil
	}
	positions = make([]int, 0, len(s.msgs.uids))
	for i, uid := range s.msgs.uids {
		if candidateOfAll(results[:narrowing], uid) {
			positions = append(positions, i)
		}
	}
	return positions, true, fuzzy, nil
}

// candidateOfAll reports whether uid is a candidate of every result.
func candidateOfAll(results []*metadatapb.SearchTextResult, uid uint32) bool {
	for _, r := range results {
		if uid > r.GetLastUid() {
			continue
		}
		if _, found := slices.BinarySearch(r.GetUids(), uid); !found {
			return false
		}
	}
	return true
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
		n = len(c.sel.msgs.uids)
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
