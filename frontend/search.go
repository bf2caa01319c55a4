package frontend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imapwire"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdSearch: SEARCH (RFC 9051 6.4.4) and UID SEARCH (6.4.9). Flags, sequence numbers and
// UIDs are matched against the session's view; sizes, dates and headers against the stored
// records (metadata); BODY and TEXT read the blobs. Results are "* SEARCH" (RFC 3501 7.2.5)
// or, with RETURN or once IMAP4rev2 is enabled, "* ESEARCH" (RFC 9051 7.3.4, RFC 4731).
func (c *conn) cmdSearch(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.SearchArgs)
	s := c.sel
	switch args.Charset {
	case "", "UTF-8", "US-ASCII":
	default:
		return no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset") // RFC 9051 6.4.4
	}
	for _, opt := range args.Return {
		switch opt {
		case "MIN", "MAX", "ALL", "COUNT":
		default:
			return bad("", "Unsupported SEARCH return option "+opt)
		}
	}
	needRecord, needStructure := criteriaNeeds(&args.Criteria)
	var matched []int
	eval := func(i int, rec *metadatapb.MessageRecord) (bool, error) {
		return c.matchCriteria(&args.Criteria, i, rec)
	}
	if !needRecord {
		for i := range s.uids {
			if ok, _ := eval(i, nil); ok {
				matched = append(matched, i)
			}
		}
	} else {
		for start := 0; start < len(s.uids); start += fetchBatch {
			uids := s.uids[start:min(start+fetchBatch, len(s.uids))]
			records, err := c.fetchRecords(uids, needStructure)
			if err != nil {
				return err
			}
			for k := range uids {
				rec := records[uids[k]]
				if rec == nil {
					continue
				}
				ok, err := eval(start+k, rec)
				if err != nil {
					return err
				}
				if ok {
					matched = append(matched, start+k)
				}
			}
		}
	}

	uidCmd := cmd.Name == "UID SEARCH"
	nums := make([]uint32, len(matched))
	for k, i := range matched {
		if uidCmd {
			nums[k] = s.uids[i]
		} else {
			nums[k] = uint32(i + 1)
		}
	}
	if !args.ESearch && !c.rev2 {
		b := []byte("SEARCH")
		for _, n := range nums {
			b = strconv.AppendUint(append(b, ' '), uint64(n), 10)
		}
		c.untaggedBytes(b)
		return nil
	}
	returns := args.Return
	if len(returns) == 0 {
		returns = []string{"ALL"} // RFC 9051 6.4.4: no return options means ALL
	}
	b := c.encoder().AppendString([]byte("ESEARCH (TAG "), cmd.Tag)
	b = append(b, ')')
	if uidCmd {
		b = append(b, " UID"...)
	}
	for _, opt := range returns {
		switch {
		case opt == "COUNT":
			b = strconv.AppendInt(append(b, " COUNT "...), int64(len(nums)), 10)
		case len(nums) == 0:
			// MIN, MAX and ALL are left out when nothing matched (RFC 4731 3.1).
		case opt == "MIN":
			b = strconv.AppendUint(append(b, " MIN "...), uint64(nums[0]), 10)
		case opt == "MAX":
			b = strconv.AppendUint(append(b, " MAX "...), uint64(nums[len(nums)-1]), 10)
		case opt == "ALL":
			b = append(append(b, " ALL "...), uidSetString(nums)...)
		}
	}
	c.untaggedBytes(b)
	return nil
}

// criteriaNeeds reports whether matching c needs the stored records, and their structure.
func criteriaNeeds(c *imap.SearchCriteria) (record, structure bool) {
	record = !c.Since.IsZero() || !c.Before.IsZero() || c.Larger != 0 || c.Smaller != 0 ||
		len(c.Body) > 0 || len(c.Text) > 0
	structure = !c.SentSince.IsZero() || !c.SentBefore.IsZero() || len(c.Header) > 0 || len(c.Text) > 0 || len(c.Body) > 0
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

// matchCriteria reports whether message i (with its record when the criteria need it)
// matches every key of crit (RFC 9051 6.4.4).
func (c *conn) matchCriteria(crit *imap.SearchCriteria, i int, rec *metadatapb.MessageRecord) (bool, error) {
	s := c.sel
	for _, set := range crit.SeqNum {
		if !numSetContains(set, uint32(i+1), uint32(len(s.uids))) {
			return false, nil
		}
	}
	for _, set := range crit.UID {
		if imap.IsSearchRes(set) {
			return false, bad("", "No saved search result")
		}
		var last uint32
		if len(s.uids) > 0 {
			last = s.uids[len(s.uids)-1]
		}
		if !numSetContains(imap.SeqSet(uidRangesAsSeq(set)), s.uids[i], last) {
			return false, nil
		}
	}
	for _, f := range crit.Flag {
		if !hasFlag(s.flags[i], string(f)) {
			return false, nil
		}
	}
	for _, f := range crit.NotFlag {
		if hasFlag(s.flags[i], string(f)) {
			return false, nil
		}
	}
	if rec != nil {
		if !matchRecord(crit, rec) {
			return false, nil
		}
		for _, text := range crit.Body {
			found, err := c.blobContains(rec, text, true)
			if err != nil || !found {
				return false, err
			}
		}
		for _, text := range crit.Text {
			found, err := c.blobContains(rec, text, false)
			if err != nil || !found {
				return false, err
			}
		}
	}
	for k := range crit.Not {
		m, err := c.matchCriteria(&crit.Not[k], i, rec)
		if err != nil || m {
			return false, err
		}
	}
	for _, or := range crit.Or {
		m0, err := c.matchCriteria(&or[0], i, rec)
		if err != nil {
			return false, err
		}
		if !m0 {
			m1, err := c.matchCriteria(&or[1], i, rec)
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
		sent, err := mail.ParseDate(rec.GetStructure().GetEnvelope().GetDate())
		if err != nil || !dayInRange(sent, crit.SentSince, crit.SentBefore) {
			return false
		}
	}
	if len(crit.Header) > 0 {
		fields := message.Fields(rec.GetStructure().GetHeader())
		for _, want := range crit.Header {
			if !headerMatches(fields, want.Key, want.Value) {
				return false
			}
		}
	}
	return true
}

func dayInRange(t, since, before time.Time) bool {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return (since.IsZero() || !day.Before(since)) && (before.IsZero() || day.Before(before))
}

// headerMatches reports whether a field named key contains value, case-insensitively, after
// decoding RFC 2047 encoded-words; an empty value matches any field of that name.
func headerMatches(fields []message.HeaderField, key, value string) bool {
	var dec mime.WordDecoder
	needle := strings.ToLower(value)
	for _, f := range fields {
		if !strings.EqualFold(f.Name, key) {
			continue
		}
		v := f.Value()
		if decoded, err := dec.DecodeHeader(v); err == nil {
			v = decoded
		}
		if strings.Contains(strings.ToLower(v), needle) {
			return true
		}
	}
	return false
}

// blobContains searches a stored message for text, case-insensitively (ASCII folding) and
// without decoding transfer encodings: the body only (BODY) or the whole message (TEXT). It
// streams the blob with an overlap, so memory stays bounded.
func (c *conn) blobContains(rec *metadatapb.MessageRecord, text string, bodyOnly bool) (bool, error) {
	if text == "" {
		return true, nil
	}
	offset, length := int64(0), int64(rec.GetSize())
	if bodyOnly {
		var err error
		if offset, length, err = message.SectionRange(rec.GetStructure(), nil, "TEXT"); err != nil {
			return false, nil
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	r, err := c.srv.cfg.Blobs.Get(ctx, rec.GetBlobKey(), offset, length)
	if err != nil {
		return false, fmt.Errorf("search body of message %d: %w", rec.GetUid(), err)
	}
	defer r.Close()
	needle := bytes.ToLower([]byte(text))
	buf := make([]byte, 0, 64<<10+len(needle))
	chunk := make([]byte, 64<<10)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, bytes.ToLower(chunk[:n])...)
		if bytes.Contains(buf, needle) {
			return true, nil
		}
		if keep := len(needle) - 1; len(buf) > keep {
			buf = append(buf[:0], buf[len(buf)-keep:]...)
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("search body of message %d: %w", rec.GetUid(), err)
		}
	}
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

func uidRangesAsSeq(set imap.UIDSet) []imap.SeqRange {
	ranges := make([]imap.SeqRange, len(set))
	for i, r := range set {
		ranges[i] = imap.SeqRange{Start: uint32(r.Start), Stop: uint32(r.Stop)}
	}
	return ranges
}
