package imapwire

import (
	"strings"

	"github.com/emersion/go-imap/v2"
)

// SortArgs are the arguments of SORT and UID SORT (RFC 5256 3, with RFC 5267 3 ESORT's
// return options).
type SortArgs struct {
	// Return lists the return options (upper-case); ESearch is true when a RETURN clause
	// was given, so the result is an ESEARCH response (RFC 5267 3.1).
	Return  []string
	ESearch bool
	// Partial is the range of RETURN (PARTIAL range) (RFC 9394 3.1), if given.
	Partial *PartialRange
	// Keys are the sort criteria in order, upper-case, each with whether REVERSE precedes
	// it; the names are checked by the handler.
	Keys     []SortKey
	Charset  string
	Criteria imap.SearchCriteria
	ModSeq   bool
}

// SortKey is one sort-key of sort-criteria (RFC 5256 3).
type SortKey struct {
	Name    string
	Reverse bool
}

// PartialRange is RFC 9394 3.1's partial-range: First:Last, both negative for positions
// counted from the end (-1 the last).
type PartialRange struct {
	First, Last int64
}

// ThreadArgs are the arguments of THREAD and UID THREAD (RFC 5256 4).
type ThreadArgs struct {
	Algorithm string // upper-case; checked by the handler
	Charset   string
	Criteria  imap.SearchCriteria
}

// sortArgs parses RFC 5256 3 and RFC 5267 3: sort = ["UID" SP] "SORT" [SP sort-return-opts]
// SP sort-criteria SP search-criteria; sort-criteria = "(" sort-criterion *(SP
// sort-criterion) ")"; sort-criterion = ["REVERSE" SP] sort-key; search-criteria = charset
// 1*(SP search-key).
func (p *parser) sortArgs(uid bool) *SortArgs {
	args := &SortArgs{}
	p.sp()
	if p.takeFold("RETURN ") {
		args.ESearch = true
		args.Return, args.Partial = p.returnOptions()
		p.sp()
	}
	p.expect('(')
	for p.ok() {
		key := SortKey{Name: strings.ToUpper(p.atom())}
		if key.Name == "REVERSE" {
			p.sp()
			key = SortKey{Name: strings.ToUpper(p.atom()), Reverse: true}
		}
		args.Keys = append(args.Keys, key)
		if p.take(')') {
			break
		}
		p.sp()
	}
	p.sp()
	args.Charset = strings.ToUpper(p.astring())
	p.sp()
	p.searchKeys(&args.Criteria, uid)
	args.ModSeq = p.sawModSeq
	return args
}

// returnOptions parses "(" [return-opt *(SP return-opt)] ")", where each option is an atom
// and PARTIAL takes a partial-range (RFC 9394 3.1).
func (p *parser) returnOptions() ([]string, *PartialRange) {
	p.expect('(')
	var opts []string
	var partial *PartialRange
	for p.ok() && !p.take(')') {
		if len(opts) > 0 {
			p.sp()
		}
		opt := strings.ToUpper(p.atom())
		opts = append(opts, opt)
		if opt == "PARTIAL" {
			p.sp()
			partial = p.partialRange()
		}
	}
	return opts, partial
}

// cancelUpdateArgs parses RFC 5267 5: command-select =/ "CANCELUPDATE" 1*(SP quoted); the
// tags are quoted strings only, neither atoms nor literals.
func (p *parser) cancelUpdateArgs() *CancelUpdateArgs {
	args := &CancelUpdateArgs{}
	for p.ok() && p.take(' ') {
		args.Tags = append(args.Tags, p.quoted())
	}
	if p.ok() && len(args.Tags) == 0 {
		p.errorf("expected the quoted tag of a searching command")
	}
	return args
}

// partialRange parses partial-range = partial-range-first / partial-range-last;
// partial-range-first = nz-number ":" nz-number; partial-range-last = MINUS nz-number ":"
// MINUS nz-number (RFC 9394 3.1).
func (p *parser) partialRange() *PartialRange {
	neg := p.take('-')
	first := int64(p.nzNumber())
	p.expect(':')
	if neg {
		p.expect('-')
	}
	last := int64(p.nzNumber())
	if neg {
		first, last = -first, -last
	}
	if first > last && !neg || neg && first < last {
		first, last = last, first // RFC 9394 3.1: the range may be given either way round
	}
	return &PartialRange{First: first, Last: last}
}

// threadArgs parses RFC 5256 4: thread = ["UID" SP] "THREAD" SP thread-alg SP
// search-criteria.
func (p *parser) threadArgs(uid bool) *ThreadArgs {
	args := &ThreadArgs{}
	p.sp()
	args.Algorithm = strings.ToUpper(p.atom())
	p.sp()
	args.Charset = strings.ToUpper(p.astring())
	p.sp()
	p.searchKeys(&args.Criteria, uid)
	return args
}
