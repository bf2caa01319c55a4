package imap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdSearch: SEARCH (RFC 9051 6.4.4) and UID SEARCH (6.4.9). Flags, sequence numbers and
// UIDs are matched against the session's view; sizes, dates and headers against the stored
// records (metadata: header keys never read a blob); BODY and TEXT stream the blobs. Results
// are "* SEARCH" (RFC 3501 7.2.5) or, with RETURN or once IMAP4rev2 is enabled, "* ESEARCH"
// (RFC 9051 7.3.4, RFC 4731). RETURN (SAVE) keeps the result for "$" (RFC 5182); RETURN
// (UPDATE) keeps it current (RFC 5267 4.3, context.go); PARTIAL returns a range of it (RFC
// 5267 4.4, RFC 9394 3.1).
func (c *conn) cmdSearch(cmd *imapwire.Command) (err error) {
	args := cmd.Args.(*imapwire.SearchArgs)
	s := c.sel
	save := slices.Contains(args.Return, "SAVE")
	if save {
		// RFC 5182 2.1: a SEARCH with SAVE that fails leaves an empty saved result.
		defer func() {
			if err != nil {
				s.searchRes = nil
			}
		}()
	}
	if err := checkCharset(args.Charset); err != nil { // RFC 9051 6.4.4
		return err
	}
	update, err := checkReturnOptions("SEARCH", args.Return, "MIN", "MAX", "ALL", "COUNT", "SAVE", "RELEVANCY")
	if err != nil {
		return err
	}
	if update {
		if err := c.checkUpdateTag(cmd.Tag); err != nil {
			return err
		}
	}
	if c.uidOnly && criteriaUseSeqNumbers(&args.Criteria) {
		return bad(imapresp.CodeUIDRequired, "UIDONLY does not allow message sequence numbers") // RFC 9586 3
	}
	if args.ModSeq {
		c.enableCondStore() // RFC 7162 3.1
	}
	matched, relevancy, err := c.searchMatches(&args.Criteria)
	if err != nil {
		return err
	}

	if save {
		s.searchRes = savedResult(&s.msgs, matched, args.Return)
	}
	uidCmd := cmd.UID
	num := func(k int) uint32 {
		if uidCmd {
			return s.msgs.uid(matched[k])
		}
		return uint32(matched[k] + 1)
	}
	if !args.ESearch && !c.rev2 {
		var modseq uint64
		if args.ModSeq && len(matched) > 0 {
			// RFC 7162 3.1.6: the highest MODSEQ of the messages found.
			modseq = s.highestModSeqOf(matched)
		}
		// Rendered from the positions, no list of numbers built first. A write error is
		// the connection's, sticky in c.bw: its next flush reports it.
		_ = imapresp.WriteSearchOf(c.bw, len(matched), num, modseq)
		return nil
	}
	nums := make([]uint32, len(matched))
	for k := range matched {
		nums[k] = num(k)
	}
	returns := args.Return
	if len(returns) == 0 {
		returns = []string{"ALL"} // RFC 4731 3.1, RFC 9051 6.4.4: RETURN () means ALL
	} else if len(returns) == 1 && save {
		return nil // RFC 5182 2.4: SAVE alone produces no ESEARCH response
	}
	e := imapresp.ESearch{Tag: cmd.Tag, UID: uidCmd, Returns: returns, Nums: nums}
	if p := args.Partial; p != nil {
		e.Partial = &imapresp.Partial{First: p.First, Last: p.Last}
	}
	if slices.Contains(returns, "RELEVANCY") {
		e.Relevancy = make([]uint32, len(matched))
		for k, i := range matched {
			e.Relevancy[k] = relevancy(i)
		}
	}
	if args.ModSeq && len(matched) > 0 {
		e.ModSeq = reportedModSeq(s, matched, returns)
	}
	c.bw.Write(imapresp.AppendESearch(nil, c.encoder(), e))
	if update {
		return c.openContext(contextRequest{cmd: cmd, criteria: &args.Criteria}, matched, nil)
	}
	return nil
}

// reportedModSeq is an ESEARCH response's MODSEQ (RFC 7162 3.1.10): the highest of the
// messages found (matched, not empty), or with only MIN and/or MAX, of the messages those
// return; 0 when the options return none of them.
func reportedModSeq(s *selected, matched []int, returns []string) uint64 {
	reported := matched
	if !slices.Contains(returns, "ALL") && !slices.Contains(returns, "COUNT") {
		reported = nil
		if slices.Contains(returns, "MIN") {
			reported = append(reported, matched[0])
		}
		if slices.Contains(returns, "MAX") {
			reported = append(reported, matched[len(matched)-1])
		}
	}
	if len(reported) == 0 {
		return 0
	}
	return s.highestModSeqOf(reported)
}

// checkReturnOptions checks the RETURN options of a SEARCH or SORT: each one of allowed, or
// one of RFC 5267 4 (CONTEXT, a hint Strata takes no notice of, 4.2; UPDATE, at most once,
// 4.3; PARTIAL, never beside ALL, 4.4 and RFC 9394 3.1). update reports UPDATE.
func checkReturnOptions(command string, opts []string, allowed ...string) (update bool, err error) {
	for _, opt := range opts {
		switch {
		case opt == "UPDATE":
			if update {
				return false, bad("", command+" RETURN has UPDATE twice")
			}
			update = true
		case opt == "PARTIAL":
			if slices.Contains(opts, "ALL") {
				return false, bad("", command+" RETURN cannot have both PARTIAL and ALL") // RFC 9394 3.1
			}
		case opt == "CONTEXT", slices.Contains(allowed, opt):
		default:
			return false, bad("", "Unsupported "+command+" return option "+opt)
		}
	}
	return update, nil
}

// searchMatches returns the indexes in the session's view of the messages that match
// criteria (RFC 9051 6.4.4), ascending: the evaluation SEARCH, SORT and THREAD share.
// It also returns the RELEVANCY (RFC 6203 4) of each match by its index in the view
// (fuzzy.go).
func (c *conn) searchMatches(criteria *imap.SearchCriteria) (matched []int, relevancy func(i int) uint32, err error) {
	// The session's own new messages first, when the answer may name them (sync.go).
	if err := c.awaitOwnAdditionsToSearch(criteria); err != nil {
		return nil, nil, err
	}
	s := c.sel
	crit := foldCriteria(criteria)
	if needRecord, _ := criteriaNeeds(crit); !needRecord {
		if matchesAll(crit) && s.msgs.len() > 0 {
			// Every message (SORT ALL of a million messages): sized once, not grown by
			// doubling from nothing. Narrower searches (DELETED, UNSEEN, UID n:* at each
			// sync) grow with their matches rather than reserve 8 bytes per message.
			matched = make([]int, s.msgs.len())
			for i := range matched {
				matched[i] = i
			}
			return matched, func(int) uint32 { return 100 }, nil
		}
		for i := range s.msgs.len() {
			if ok, _ := c.matchCriteria(crit, i, nil, nil); ok {
				matched = append(matched, i)
			}
		}
		if len(matched) == 0 {
			matched = nil // as before: none matched
		}
		return matched, func(int) uint32 { return 100 }, nil
	}
	// The search index narrows the messages to read (searchindex.go); the scan below
	// verifies each candidate, so the answer is the full scan's, except for the keys the
	// index answers exactly (its word dictionary, package searchindex "Exact answers").
	positions, narrowed, fuzzy, exact, err := c.indexCandidates(crit)
	if err != nil {
		c.log.Warn("search index unavailable, scanning", "err", err)
		narrowed, fuzzy, exact = false, nil, nil
	}
	if !narrowed {
		positions, exact = nil, nil
	}
	relevancy = func(i int) uint32 { return fuzzy.relevancy(crit, s.msgs.uid(i)) }
	if exact == nil {
		matched, err = c.verifyCandidates(crit, positions, fuzzy)
		return matched, relevancy, err
	}
	// The candidates the index's exact answers cover need only the other keys checked
	// (often none that read the message); the rest are verified in full. A common word
	// makes nearly every message of the view sure: they are kept in positions' own array
	// (filtered in place, each write at or before its read), not copied from list to list.
	sure, unsure := positions, []int(nil)
	if n := s.msgs.len(); n > 0 && !exact.allSure(s.msgs.uid(n-1)) {
		sure = positions[:0]
		for _, i := range positions {
			if exact.sure(s.msgs.uid(i)) {
				sure = append(sure, i)
			} else {
				unsure = append(unsure, i)
			}
		}
	}
	rest := exact.without(crit)
	var matchedSure []int
	if matchesAll(rest) {
		matchedSure = sure // a lone exact key: every sure candidate matches, no pass over them
	} else if needRecord, _ := criteriaNeeds(rest); !needRecord {
		matchedSure = sure[:0]
		for _, i := range sure {
			if ok, _ := c.matchCriteria(rest, i, nil, fuzzy); ok {
				matchedSure = append(matchedSure, i)
			}
		}
	} else if matchedSure, err = c.verifyCandidates(rest, nonNil(sure), fuzzy); err != nil {
		return nil, nil, err
	}
	matchedUnsure, err := c.verifyCandidates(crit, nonNil(unsure), fuzzy)
	if err != nil {
		return nil, nil, err
	}
	return mergePositions(matchedSure, matchedUnsure), relevancy, nil
}

// mergePositions returns the positions of two ascending lists without common elements,
// ascending; a when b is empty (no copy).
func mergePositions(a, b []int) []int {
	if len(b) == 0 {
		return a
	}
	out := make([]int, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// nonNil returns positions, an empty list for none (nil means the whole view).
func nonNil(positions []int) []int {
	if positions == nil {
		return []int{}
	}
	return positions
}

// verifyCandidates returns the positions of the messages matching crit (folded) among
// positions (nil: the whole view), reading each one's record as a full scan would.
func (c *conn) verifyCandidates(crit *imap.SearchCriteria, positions []int, fuzzy fuzzyResults) (matched []int, err error) {
	if positions != nil && len(positions) == 0 {
		return nil, nil
	}
	needStructure, parts, headerFields := recordScanOf(crit)
	if err := c.checkScanBound(crit, positions); err != nil {
		return nil, err
	}
	err = c.scanRecords(positions, needStructure, parts, headerFields, func(i int, rec *metadatapb.MessageRecord) error {
		ok, err := c.matchCriteria(crit, i, rec, fuzzy)
		if ok {
			matched = append(matched, i)
		}
		return err
	})
	return matched, err
}

// recordScanOf returns what of the stored records matching crit reads: their structure or
// not, and which parts of it, with the header fields its keys name when the header is all
// it reads (scanRecords).
func recordScanOf(crit *imap.SearchCriteria) (withStructure bool, parts structureParts, headerFields []string) {
	_, withStructure = criteriaNeeds(crit)
	parts = structureAll
	if !criteriaNeedBeyondHeader(crit) {
		parts = structureHeader
		headerFields = criteriaHeaderFields(crit, nil)
	}
	return withStructure, parts, headerFields
}

// checkCharset answers a search charset Strata cannot decode with NO [BADCHARSET] and the
// ones it can (RFC 9051 6.4.4, RFC 5256 3).
func checkCharset(charset string) error {
	switch charset {
	case "", "UTF-8", "US-ASCII":
		return nil
	}
	return no(imapresp.BadCharsetCode("UTF-8", "US-ASCII"), "Unsupported charset")
}

// scanRecords calls match with the stored record of every message in the view, in order,
// with the structure's parts when withStructure; with positions, only of the messages at
// those positions of the view (ascending).
// The next batch of records is fetched while the current one is matched, so the metadata
// round trips overlap the matching (and its blob reads for BODY and TEXT). With parts
// structureHeader and headerFields, each header holds only the fields of those names.
func (c *conn) scanRecords(positions []int, withStructure bool, parts structureParts, headerFields []string, match func(i int, rec *metadatapb.MessageRecord) error) error {
	type batch struct {
		start   int
		records map[uint32]*metadatapb.MessageRecord
		err     error
	}
	msgs := c.sel.msgs // read by the fetcher too: no change to the view while it runs
	if positions == nil {
		positions = make([]int, msgs.len())
		for i := range positions {
			positions[i] = i
		}
	}
	batches := make(chan batch, 1)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer close(batches)
		defer c.srv.recoverPanic(c.log, "SEARCH record fetcher", func(v any) {
			select {
			case batches <- batch{err: fmt.Errorf("fetch records: panic: %v", v)}:
			case <-stop:
			}
		})
		for start := 0; start < len(positions); start += fetchBatch {
			atTestHook("search records")
			chunk := positions[start:min(start+fetchBatch, len(positions))]
			batchUIDs := make([]uint32, len(chunk))
			for k, i := range chunk {
				batchUIDs[k] = msgs.uid(i)
			}
			records, err := c.fetchRecords(batchUIDs, withStructure, parts, headerFields)
			select {
			case batches <- batch{start: start, records: records, err: err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	deadline := c.searchDeadline
	if deadline.IsZero() {
		deadline = time.Now().Add(c.srv.limits.SearchTimeout)
	}
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		if time.Now().After(deadline) {
			// RFC 5530 3: LIMIT, the operation ran into an implementation limit.
			return no(imapresp.CodeLimit, "SEARCH took longer than this server allows; narrow it")
		}
		for _, i := range positions[b.start:min(b.start+fetchBatch, len(positions))] {
			if rec := b.records[msgs.uid(i)]; rec != nil {
				if err := match(i, rec); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// savedResult returns the UIDs that SEARCH RETURN (SAVE ...) keeps (RFC 5182 2.4): only the
// lowest and/or highest match when SAVE comes with MIN and/or MAX but neither ALL nor COUNT,
// every match otherwise.
func savedResult(msgs *msgList, matched []int, returns []string) []uint32 {
	minMax := (slices.Contains(returns, "MIN") || slices.Contains(returns, "MAX")) &&
		!slices.Contains(returns, "ALL") && !slices.Contains(returns, "COUNT")
	if minMax && len(matched) > 0 {
		var saved []uint32
		if slices.Contains(returns, "MIN") {
			saved = append(saved, msgs.uid(matched[0]))
		}
		if slices.Contains(returns, "MAX") && (len(saved) == 0 || matched[len(matched)-1] != matched[0]) {
			saved = append(saved, msgs.uid(matched[len(matched)-1]))
		}
		return saved
	}
	saved := make([]uint32, len(matched))
	for k, i := range matched {
		saved[k] = msgs.uid(i)
	}
	return saved
}

// criteriaNeeds reports whether matching c needs the stored records, and their structure.
func criteriaNeeds(c *imap.SearchCriteria) (record, structure bool) {
	record = !c.Since.IsZero() || !c.Before.IsZero() || c.Larger != 0 || c.Smaller != 0 ||
		len(c.Body) > 0 || len(c.Text) > 0 || len(c.Header) > 0
	structure = !c.SentSince.IsZero() || !c.SentBefore.IsZero() || slices.ContainsFunc(c.Header, isHeaderKey) ||
		slices.ContainsFunc(c.Header, isFuzzyKey) || len(c.Text) > 0 || len(c.Body) > 0
	for i := range c.Not {
		r, s := criteriaNeeds(&c.Not[i])
		record, structure = record || r, structure || s
	}
	for i := range c.Or {
		for j := range c.Or[i] {
			r, s := criteriaNeeds(&c.Or[i][j])
			record, structure = record || r, structure || s
		}
	}
	return record || structure, structure
}

// criteriaNeedBeyondHeader reports whether crit has a key that reads more of the message
// structure than its header: the envelope's Date (SENTSINCE, SENTBEFORE) or the body parts
// (BODY, TEXT). Without one, SEARCH asks metadata for the header bytes only.
func criteriaNeedBeyondHeader(c *imap.SearchCriteria) bool {
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() || len(c.Text) > 0 || len(c.Body) > 0 || slices.ContainsFunc(c.Header, fuzzyReadsBody) {
		return true
	}
	for i := range c.Not {
		if criteriaNeedBeyondHeader(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		for j := range c.Or[i] {
			if criteriaNeedBeyondHeader(&c.Or[i][j]) {
				return true
			}
		}
	}
	return false
}

// criteriaHeaderFields appends to names the header field names that crit's HEADER, FROM,
// TO, CC, BCC and SUBJECT keys read (RFC 9051 6.4.4), in crit and in its NOT and OR keys.
func criteriaHeaderFields(crit *imap.SearchCriteria, names []string) []string {
	for _, h := range crit.Header {
		name := h.Key
		switch {
		case isFuzzyKey(h) && !fuzzyReadsBody(h):
			name = fuzzyField(h)
		case !isHeaderKey(h):
			continue
		}
		if !slices.ContainsFunc(names, func(n string) bool { return mailtext.FieldNameEqual(n, name) }) {
			names = append(names, name)
		}
	}
	for i := range crit.Not {
		names = criteriaHeaderFields(&crit.Not[i], names)
	}
	for i := range crit.Or {
		for j := range crit.Or[i] {
			names = criteriaHeaderFields(&crit.Or[i][j], names)
		}
	}
	return names
}

// matchCriteria reports whether message i (with its record when the criteria need it)
// matches every key of crit (RFC 9051 6.4.4), with the index's answers to its FUZZY keys.
func (c *conn) matchCriteria(crit *imap.SearchCriteria, i int, rec *metadatapb.MessageRecord, fuzzy fuzzyResults) (bool, error) {
	s := c.sel
	if !s.matchModSeq(crit.ModSeq, i) {
		return false, nil
	}
	for _, set := range crit.SeqNum {
		if !numSetContains(set, uint32(i+1), uint32(s.msgs.len())) {
			return false, nil
		}
	}
	for _, set := range crit.UID {
		if isSearchResUIDs(set) {
			// RFC 5182 2: "$" is the saved result; an expunged UID is not in the view.
			if _, found := slices.BinarySearch(s.searchRes, s.msgs.uid(i)); !found {
				return false, nil
			}
			continue
		}
		if !uidSetContains(set, s.msgs.uid(i), s.msgs.last()) {
			return false, nil
		}
	}
	for _, f := range crit.Flag {
		if !c.hasSessionFlag(i, string(f)) {
			return false, nil
		}
	}
	for _, f := range crit.NotFlag {
		if c.hasSessionFlag(i, string(f)) {
			return false, nil
		}
	}
	if rec != nil {
		if !matchRecord(crit, rec) {
			return false, nil
		}
		for _, text := range crit.Body {
			found, err := c.textContains(rec, text, false)
			if err != nil || !found {
				return false, err
			}
		}
		for _, text := range crit.Text {
			found, err := c.textContains(rec, text, true)
			if err != nil || !found {
				return false, err
			}
		}
		for _, h := range crit.Header {
			if !isFuzzyKey(h) {
				continue
			}
			found, err := c.matchFuzzy(h, i, rec, fuzzy)
			if err != nil || !found {
				return false, err
			}
		}
	}
	for k := range crit.Not {
		m, err := c.matchCriteria(&crit.Not[k], i, rec, fuzzy)
		if err != nil || m {
			return false, err
		}
	}
	for _, or := range crit.Or {
		m0, err := c.matchCriteria(&or[0], i, rec, fuzzy)
		if err != nil {
			return false, err
		}
		if !m0 {
			m1, err := c.matchCriteria(&or[1], i, rec, fuzzy)
			if err != nil || !m1 {
				return false, err
			}
		}
	}
	return true, nil
}

// matchRecord matches the keys answered by the stored record: dates, sizes, headers.
func matchRecord(crit *imap.SearchCriteria, rec *metadatapb.MessageRecord) bool {
	// RFC 9051 6.4.4: dates compare by day, disregarding time and timezone.
	internal := time.Unix(rec.GetInternalDateUnix(), 0).UTC()
	if !dayInRange(internal, crit.Since, crit.Before) {
		return false
	}
	if crit.Larger != 0 && int64(rec.GetSize()) <= crit.Larger {
		return false
	}
	if crit.Smaller != 0 && int64(rec.GetSize()) >= crit.Smaller {
		return false
	}
	if !crit.SentSince.IsZero() || !crit.SentBefore.IsZero() {
		sent, err := message.ParseDate(rec.GetStructure().GetEnvelope().GetDate())
		if err != nil || !dayInRange(sent, crit.SentSince, crit.SentBefore) {
			return false
		}
	}
	var fields []message.HeaderField
	for _, want := range crit.Header {
		if isFuzzyKey(want) {
			continue // matchFuzzy
		}
		if !isHeaderKey(want) {
			if !matchRecordKey(rec, want) {
				return false
			}
			continue
		}
		if fields == nil {
			fields = message.Fields(rec.GetStructure().GetHeader())
		}
		if !headerMatches(fields, want.Key, want.Value) {
			return false
		}
	}
	return true
}

// isHeaderKey reports whether a Header criterion names a header field, rather than being
// one of RFC 8514's SAVED* keys or RFC 8474's EMAILID and THREADID, which the parser carries
// there (imapwire.SearchSavedBefore, imapwire.SearchEmailID).
func isHeaderKey(h imap.SearchCriteriaHeaderField) bool { return !strings.HasPrefix(h.Key, ":") }

// matchRecordKey matches a key the parser carries as a Header entry that is not a header
// field against the stored record.
func matchRecordKey(rec *metadatapb.MessageRecord, h imap.SearchCriteriaHeaderField) bool {
	switch h.Key {
	case imapwire.SearchEmailID: // RFC 8474 6: the EMAILID is exactly the objectid
		return rec.GetEmailId() == h.Value
	case imapwire.SearchThreadID: // RFC 8474 6
		return rec.GetThreadId() == h.Value
	case imapwire.SearchOlder, imapwire.SearchYounger:
		return matchWithin(rec, h)
	}
	return matchSavedDate(rec, h)
}

// matchSavedDate matches SAVEDBEFORE, SAVEDON and SAVEDSINCE (RFC 8514 4.2): the day the
// message was saved into the mailbox, disregarding time and timezone as for the other date
// keys (RFC 9051 6.4.4). A message stored before Strata kept save dates has none, and the
// keys then look at its internal date, which is when it was appended.
func matchSavedDate(rec *metadatapb.MessageRecord, h imap.SearchCriteriaHeaderField) bool {
	day, err := time.Parse("2006-01-02", h.Value)
	if err != nil {
		return false
	}
	saved := rec.GetSavedUnix()
	if saved == 0 {
		saved = rec.GetInternalDateUnix()
	}
	var since, before time.Time
	switch h.Key {
	case imapwire.SearchSavedBefore:
		before = day
	case imapwire.SearchSavedSince:
		since = day
	case imapwire.SearchSavedOn:
		since, before = day, day.AddDate(0, 0, 1)
	default:
		return false
	}
	return dayInRange(time.Unix(saved, 0).UTC(), since, before)
}

// matchWithin matches OLDER and YOUNGER (RFC 5032 3): the internal date is more than, or
// at most, the interval's seconds before now.
func matchWithin(rec *metadatapb.MessageRecord, h imap.SearchCriteriaHeaderField) bool {
	interval, err := strconv.ParseInt(h.Value, 10, 64)
	if err != nil {
		return false
	}
	age := time.Now().Unix() - rec.GetInternalDateUnix()
	if h.Key == imapwire.SearchOlder {
		return age > interval
	}
	return age <= interval
}

func dayInRange(t, since, before time.Time) bool {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return (since.IsZero() || !day.Before(since)) && (before.IsZero() || day.Before(before))
}

// headerMatches reports whether a field named key contains value (folded with foldString),
// after decoding RFC 2047 encoded-words and folding case; an empty value matches any field of
// that name (RFC 9051 6.4.4 HEADER). A From, To, Cc or Bcc field also matches when its
// address list as parsed contains value (message.AddressListText), as Dovecot matches FROM,
// TO, CC and BCC: RFC 9051 6.4.4 FROM "contains the specified string in the envelope
// structure's FROM field", and an envelope address has neither comments nor folding white
// space, so "user@domain.org" is found in "<user (comment)@ (comment) domain.org>". HEADER
// From, To, Cc and Bcc match the same way: imap.SearchCriteria does not tell them apart from
// FROM, TO, CC and BCC, and the parsed list only adds matches to those of the field's text.
func headerMatches(fields []message.HeaderField, key, value string) bool {
	for _, f := range fields {
		if mailtext.FieldNameEqual(f.Name, key) && mailtext.FieldValueTexts(f, func(text string) bool { return strings.Contains(text, value) }) {
			return true
		}
	}
	return false
}

// numSetContains reports whether set holds n, with "*" standing for last.
func numSetContains(set imap.SeqSet, n, last uint32) bool {
	for _, r := range set {
		start, stop := r.Start, r.Stop
		if start == 0 {
			start = last
		}
		if stop == 0 {
			stop = last
		}
		if min(start, stop) <= n && n <= max(start, stop) {
			return true
		}
	}
	return false
}

// searchResMarker is go-imap's "$" marker (imap.SearchRes): a set whose array is the
// marker's is "$".
var searchResMarker = imap.SearchRes()

// isSearchResUIDs is imap.IsSearchRes for a UIDSet without boxing it in an interface (an
// allocation per message in matchCriteria): the same comparison of array addresses, on
// the first element of the capacity both have (the marker is empty with capacity 1).
func isSearchResUIDs(set imap.UIDSet) bool {
	return cap(set) > 0 && &set[:1][0] == &searchResMarker[:1][0]
}

// uidSetContains is numSetContains for a UID set ("*" the last UID), without converting
// the set: matchCriteria asks it once per message.
func uidSetContains(set imap.UIDSet, uid, last uint32) bool {
	for _, r := range set {
		start, stop := uint32(r.Start), uint32(r.Stop)
		if start == 0 {
			start = last
		}
		if stop == 0 {
			stop = last
		}
		if min(start, stop) <= uid && uid <= max(start, stop) {
			return true
		}
	}
	return false
}
