package imapwire

import (
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// searchArgs parses RFC 9051 6.4.4: search = "SEARCH" [search-return-opts] SP
// search-program; search-program = ["CHARSET" SP charset SP] search-key *(SP search-key).
// The return options are atoms but for PARTIAL's range (RFC 5267 4.4, RFC 9394 3.1); the
// handler checks their names.
func (p *parser) searchArgs(uid bool) *SearchArgs {
	args := &SearchArgs{}
	p.sp()
	if p.takeFold("RETURN ") {
		args.ESearch = true
		args.Return, args.Partial = p.returnOptions()
		p.sp()
	}
	if p.takeFold("CHARSET ") {
		args.Charset = strings.ToUpper(p.astring())
		p.sp()
	}
	p.searchKeys(&args.Criteria, uid)
	args.ModSeq = p.sawModSeq
	return args
}

// searchKeys parses search-key *(SP search-key) into c (RFC 9051 6.4.4).
func (p *parser) searchKeys(c *imap.SearchCriteria, uid bool) {
	p.searchKey(c, uid)
	for p.ok() && p.take(' ') {
		p.searchKey(c, uid)
	}
}

// searchKey parses one search-key (RFC 9051 6.4.4, 9) and adds it to c (keys are ANDed).
func (p *parser) searchKey(c *imap.SearchCriteria, uid bool) {
	if !p.enter() {
		return
	}
	defer p.leave()
	if p.take('(') {
		p.searchKey(c, uid)
		for p.ok() && p.take(' ') {
			p.searchKey(c, uid)
		}
		p.expect(')')
		return
	}
	if ch := p.peek(); ch >= '0' && ch <= '9' || ch == '*' || ch == '$' {
		set := p.sequenceSet(false)
		if seqs, ok := set.(imap.SeqSet); ok {
			c.SeqNum = append(c.SeqNum, seqs)
		} else if uids, ok := set.(imap.UIDSet); ok {
			// "$" is the saved result, a set of UIDs (RFC 5182 2).
			c.UID = append(c.UID, uids)
		}
		return
	}
	start := p.pos
	key := strings.ToUpper(p.atom())
	if !p.ok() {
		return
	}
	switch key {
	case "ALL":
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		c.Flag = append(c.Flag, imap.Flag(canonicalSystemFlag("\\"+key)))
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		c.NotFlag = append(c.NotFlag, imap.Flag(canonicalSystemFlag("\\"+key[2:])))
	case "RECENT": // RFC 3501 only: the session's \Recent (frontend/recent.go)
		c.Flag = append(c.Flag, "\\Recent")
	case "OLD":
		c.NotFlag = append(c.NotFlag, "\\Recent")
	case "NEW":
		c.Flag = append(c.Flag, "\\Recent")
		c.NotFlag = append(c.NotFlag, imap.FlagSeen)
	case "KEYWORD":
		p.sp()
		c.Flag = append(c.Flag, p.flag(false))
	case "UNKEYWORD":
		p.sp()
		c.NotFlag = append(c.NotFlag, p.flag(false))
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		p.sp()
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: headerName(key), Value: p.astring()})
	case "HEADER":
		p.sp()
		field := imap.SearchCriteriaHeaderField{Key: p.astring()}
		if strings.HasPrefix(field.Key, ":") {
			// No field name has a colon (RFC 5322 2.2), so this matches nothing; keep it
			// apart from the SAVED* keys (SearchSavedBefore) and EMAILID and THREADID.
			field.Key = "\x00" + field.Key
		}
		p.sp()
		field.Value = p.astring()
		c.Header = append(c.Header, field)
	case "BODY":
		p.sp()
		c.Body = append(c.Body, p.astring())
	case "TEXT":
		p.sp()
		c.Text = append(c.Text, p.astring())
	case "BEFORE", "ON", "SINCE":
		p.sp()
		addDateKey(&c.Since, &c.Before, key, p.date())
	case "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE": // RFC 8514 4.2
		p.sp()
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: ":" + key, Value: p.date().Format("2006-01-02")})
	case "OLDER", "YOUNGER": // RFC 5032 3: interval = 1*DIGIT, seconds before now
		p.sp()
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: ":" + key, Value: strconv.FormatUint(uint64(p.nzNumber()), 10)})
	case "SAVEDATESUPPORTED": // RFC 8514 4.2: every mailbox keeps save dates, so all match
	case "EMAILID", "THREADID": // RFC 8474 6
		p.sp()
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: ":" + key, Value: p.objectID()})
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		p.sp()
		addDateKey(&c.SentSince, &c.SentBefore, key[4:], p.date())
	case "LARGER":
		p.sp()
		if n := int64(p.number64()); c.Larger < n {
			c.Larger = n
		}
	case "SMALLER":
		p.sp()
		if n := int64(p.number64()); c.Smaller == 0 || n < c.Smaller {
			c.Smaller = n
		}
	case "MODSEQ": // RFC 7162 3.1.5: "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer
		p.sp()
		m := &imap.SearchCriteriaModSeq{}
		if p.peek() == '"' {
			m.MetadataName = p.quoted()
			p.sp()
			switch t := strings.ToLower(p.atom()); t {
			case "priv", "shared", "all":
				m.MetadataType = imap.SearchCriteriaMetadataType(t)
			default:
				p.errorf("expected priv, shared or all")
			}
			p.sp()
		}
		m.ModSeq = p.number64()
		// Several MODSEQ keys ANDed: the highest bound is what all of them match.
		if c.ModSeq == nil || c.ModSeq.ModSeq < m.ModSeq {
			c.ModSeq = m
		}
		p.sawModSeq = true
	case "UID":
		p.sp()
		if uids, ok := p.sequenceSet(true).(imap.UIDSet); ok {
			c.UID = append(c.UID, uids)
		}
	case "FUZZY": // RFC 6203 3: search-key =/ "FUZZY" SP search-key
		p.sp()
		var inner imap.SearchCriteria
		p.searchKey(&inner, uid)
		andCriteria(c, fuzzyText(&inner))
	case "NOT":
		p.sp()
		var not imap.SearchCriteria
		p.searchKey(&not, uid)
		c.Not = append(c.Not, not)
	case "OR":
		var or [2]imap.SearchCriteria
		p.sp()
		p.searchKey(&or[0], uid)
		p.sp()
		p.searchKey(&or[1], uid)
		c.Or = append(c.Or, or)
	default:
		p.pos = start
		p.errorf("unknown search key %q", key)
	}
}

// objectID reads objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474 7).
func (p *parser) objectID() string {
	id := p.takeWhile(func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	})
	if id == "" || len(id) > 255 {
		p.errorf("expected an objectid")
	}
	return id
}

func headerName(key string) string {
	return map[string]string{"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}[key]
}

// addDateKey narrows the [since, before) day interval by one BEFORE / ON / SINCE key; only
// the date counts (RFC 9051 6.4.4).
func addDateKey(since, before *time.Time, key string, day time.Time) {
	narrowSince := func(t time.Time) {
		if since.IsZero() || t.After(*since) {
			*since = t
		}
	}
	narrowBefore := func(t time.Time) {
		if before.IsZero() || t.Before(*before) {
			*before = t
		}
	}
	switch key {
	case "BEFORE":
		narrowBefore(day)
	case "SINCE":
		narrowSince(day)
	case "ON":
		narrowSince(day)
		narrowBefore(day.AddDate(0, 0, 1))
	}
}

// fuzzyText turns the text keys of c (not those under its NOT and OR keys) into their FUZZY
// forms (SearchFuzzyBody, SearchFuzzyText, SearchFuzzyHeader) and returns c.
func fuzzyText(c *imap.SearchCriteria) *imap.SearchCriteria {
	for i, h := range c.Header {
		if !strings.HasPrefix(h.Key, ":") && !strings.HasPrefix(h.Key, "\x00") {
			c.Header[i].Key = SearchFuzzyHeader + h.Key
		}
	}
	for _, b := range c.Body {
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: SearchFuzzyBody, Value: b})
	}
	for _, t := range c.Text {
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: SearchFuzzyText, Value: t})
	}
	c.Body, c.Text = nil, nil
	return c
}

// andCriteria adds the keys of other to c (keys are ANDed, RFC 9051 6.4.4), as
// imap.SearchCriteria.And does but keeping c's SMALLER when other has none and the higher
// MODSEQ bound.
func andCriteria(c, other *imap.SearchCriteria) {
	smaller := c.Smaller
	c.And(other)
	if other.Smaller == 0 {
		c.Smaller = smaller
	}
	if other.ModSeq != nil && (c.ModSeq == nil || c.ModSeq.ModSeq < other.ModSeq.ModSeq) {
		c.ModSeq = other.ModSeq
	}
}
