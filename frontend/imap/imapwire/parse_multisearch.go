package imapwire

import "strings"

// SearchSubtreeOne is RFC 7377 2.2's "subtree-one": the named mailboxes and their immediate
// children. It extends RFC 5465's mailbox specifiers for ESEARCH only, so NOTIFY never
// parses it.
const SearchSubtreeOne = NotifyMailboxes + 1

// SearchSource is one mailbox specifier of ESEARCH's IN (RFC 7377 2.2: source-mbox, the
// filter-mailboxes of RFC 5465 6 and subtree-one).
type SearchSource struct {
	Filter NotifyFilter
	// Mailboxes are the names of subtree, subtree-one and mailboxes, as sent.
	Mailboxes []string
}

// MultiSearchArgs are the arguments of ESEARCH (RFC 7377 2).
type MultiSearchArgs struct {
	// Sources are the specifiers of IN, in the client's order; none when IN is not given,
	// which means the selected mailbox (RFC 7377 2.2).
	Sources []SearchSource
	// Search is the rest, as SEARCH has it ([SP search-return-opts] SP search-program in
	// RFC 7377's formal syntax); sequence sets in it are message numbers of each mailbox
	// searched.
	Search SearchArgs
}

// searchSources maps the upper-case source names of RFC 7377's formal syntax to their specifiers.
var searchSources = map[string]NotifyFilter{
	"SELECTED": NotifySelected, "SELECTED-DELAYED": NotifySelectedDelayed, "INBOXES": NotifyInboxes,
	"PERSONAL": NotifyPersonal, "SUBSCRIBED": NotifySubscribed, "SUBTREE": NotifySubtree,
	"SUBTREE-ONE": SearchSubtreeOne, "MAILBOXES": NotifyMailboxes,
}

// multiSearchArgs parses RFC 7377's formal syntax:
//
//	esearch             = "ESEARCH" [SP esearch-source-opts] [SP search-return-opts] SP search-program
//	esearch-source-opts = "IN" SP "(" source-mbox [SP "(" scope-options ")"] ")"
//	source-mbox         = filter-mailboxes *(SP filter-mailboxes)
//	filter-mailboxes-other =/ ("subtree-one" SP one-or-more-mailbox)
//
// RFC 7377 defines no scope option and Strata knows none, so scope options are a syntax
// error (RFC 4466 2.1's rule for unknown extensions: BAD).
func (p *parser) multiSearchArgs() *MultiSearchArgs {
	args := &MultiSearchArgs{}
	if p.takeFold(" IN ") {
		p.expect('(')
		for p.ok() {
			if p.peek() == '(' {
				p.errorf("unknown ESEARCH scope option") // RFC 7377 2.2: none is defined
				break
			}
			name := strings.ToUpper(p.atom())
			filter, known := searchSources[name]
			if p.ok() && !known {
				p.errorf("unknown ESEARCH source %q", name)
			}
			src := SearchSource{Filter: filter}
			if filter == NotifySubtree || filter == SearchSubtreeOne || filter == NotifyMailboxes {
				p.sp()
				src.Mailboxes = p.oneOrMoreMailbox()
			}
			args.Sources = append(args.Sources, src)
			if p.take(')') {
				break
			}
			p.sp()
		}
	}
	if p.ok() {
		args.Search = *p.searchArgs(false)
	}
	return args
}
