package imapwire

import (
	"strings"

	"github.com/emersion/go-imap/v2"
)

// fetchArgs parses RFC 9051 6.4.5: fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" /
// "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers].
func (p *parser) fetchArgs(uid bool) *FetchArgs {
	p.sp()
	args := &FetchArgs{Set: p.sequenceSet(uid)}
	p.sp()
	if p.take('(') {
		for p.ok() && !p.take(')') {
			if len(args.Items) > 0 {
				p.sp()
			}
			args.Items = append(args.Items, p.fetchAtt())
		}
		if p.ok() && len(args.Items) == 0 {
			p.errorf("expected a fetch item")
		}
	} else {
		// The macros of RFC 9051 6.4.5 stand alone, never inside a list.
		start := p.pos
		switch strings.ToUpper(p.takeWhile(isAtomChar)) {
		case "ALL":
			args.Items = []FetchItem{{Attr: FetchFlags}, {Attr: FetchInternalDate}, {Attr: FetchRFC822Size}, {Attr: FetchEnvelope}}
		case "FULL":
			args.Items = []FetchItem{{Attr: FetchFlags}, {Attr: FetchInternalDate}, {Attr: FetchRFC822Size}, {Attr: FetchEnvelope}, {Attr: FetchBody}}
		case "FAST":
			args.Items = []FetchItem{{Attr: FetchFlags}, {Attr: FetchInternalDate}, {Attr: FetchRFC822Size}}
		default:
			p.pos = start
			args.Items = []FetchItem{p.fetchAtt()}
		}
	}
	if p.take(' ') {
		// fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")" (RFC 4466 2.4):
		// CHANGEDSINCE (RFC 7162 3.1.4.1) and, for UID FETCH, VANISHED (3.2.6).
		p.expect('(')
		for first := true; p.ok() && (first || p.take(' ')); first = false {
			switch name := strings.ToUpper(p.atom()); {
			case !p.ok():
			case name == "CHANGEDSINCE" && args.ChangedSince == 0:
				p.sp()
				if args.ChangedSince = p.number64(); p.ok() && args.ChangedSince == 0 {
					p.errorf("CHANGEDSINCE needs a mod-sequence-value of at least 1")
				}
			case name == "VANISHED" && uid && !args.Vanished:
				args.Vanished = true
			default:
				p.errorf("unknown or repeated FETCH modifier %q", name)
			}
		}
		p.expect(')')
		if p.ok() && args.Vanished && args.ChangedSince == 0 {
			p.errorf("VANISHED needs CHANGEDSINCE") // RFC 7162 3.2.6
		}
	}
	return args
}

// simpleFetchAttrs are the fetch-att names without a section.
var simpleFetchAttrs = map[string]FetchAttr{
	"FLAGS": FetchFlags, "UID": FetchUID, "INTERNALDATE": FetchInternalDate,
	"RFC822.SIZE": FetchRFC822Size, "ENVELOPE": FetchEnvelope, "BODYSTRUCTURE": FetchBodyStructure,
	"RFC822": FetchRFC822, "RFC822.HEADER": FetchRFC822Header, "RFC822.TEXT": FetchRFC822Text,
	"MODSEQ": FetchModSeq, "SAVEDATE": FetchSaveDate, "EMAILID": FetchEmailID, "THREADID": FetchThreadID,
}

// fetchAtt parses one fetch-att.
func (p *parser) fetchAtt() FetchItem {
	start := p.pos
	name := strings.ToUpper(p.takeWhile(func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.'
	}))
	if attr, ok := simpleFetchAttrs[name]; ok && p.peek() != '[' {
		return FetchItem{Attr: attr}
	}
	switch name {
	case "PREVIEW": // RFC 8970 3: "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]
		if p.peek() == ' ' && len(p.b) > p.pos+2 && p.b[p.pos+1] == '(' && strings.HasPrefix(strings.ToUpper(string(p.b[p.pos+2:min(len(p.b), p.pos+7)])), "LAZY") {
			p.sp()
			p.expect('(')
			for first := true; p.ok() && (first || p.take(' ')); first = false {
				if mod := strings.ToUpper(p.atom()); p.ok() && mod != "LAZY" {
					p.errorf("unknown PREVIEW modifier %q", mod) // RFC 8970 3: only LAZY
				}
			}
			p.expect(')')
		}
		return FetchItem{Attr: FetchPreview}
	case "BODY", "BODY.PEEK":
		if name == "BODY" && p.peek() != '[' {
			return FetchItem{Attr: FetchBody}
		}
		section := p.section()
		section.Peek = name == "BODY.PEEK"
		section.Partial = p.partial()
		return FetchItem{Attr: FetchBodySection, Section: section}
	case "BINARY", "BINARY.PEEK": // RFC 3516 / RFC 9051 6.4.5
		section := &imap.FetchItemBodySection{Part: p.binarySection(), Peek: name == "BINARY.PEEK"}
		section.Partial = p.partial()
		return FetchItem{Attr: FetchBinarySection, Section: section}
	case "BINARY.SIZE":
		return FetchItem{Attr: FetchBinarySize, Section: &imap.FetchItemBodySection{Part: p.binarySection()}}
	}
	p.pos = start
	p.errorf("unknown fetch item %q", name)
	return FetchItem{}
}

// section parses section = "[" [section-spec] "]"; section-spec = section-msgtext /
// (section-part ["." section-text]).
func (p *parser) section() *imap.FetchItemBodySection {
	s := &imap.FetchItemBodySection{}
	p.expect('[')
	if p.take(']') {
		return s
	}
	if c := p.peek(); c >= '0' && c <= '9' {
		s.Part = p.sectionPart()
		if !p.take('.') {
			p.expect(']')
			return s
		}
		if p.takeFold("MIME") {
			s.Specifier = imap.PartSpecifierMIME
			p.expect(']')
			return s
		}
	}
	switch {
	case p.takeFold("HEADER.FIELDS.NOT"):
		p.sp()
		s.Specifier = imap.PartSpecifierHeader
		s.HeaderFieldsNot = p.headerList()
	case p.takeFold("HEADER.FIELDS"):
		p.sp()
		s.Specifier = imap.PartSpecifierHeader
		s.HeaderFields = p.headerList()
	case p.takeFold("HEADER"):
		s.Specifier = imap.PartSpecifierHeader
	case p.takeFold("TEXT"):
		s.Specifier = imap.PartSpecifierText
	default:
		p.errorf("bad section")
	}
	p.expect(']')
	return s
}

// sectionPart parses section-part = nz-number *("." nz-number), stopping before a "." that
// starts a section-text.
func (p *parser) sectionPart() []int {
	var part []int
	for p.ok() {
		part = append(part, int(p.nzNumber()))
		if len(part) > MaxDepth {
			p.errorf("section nested more than %d levels", MaxDepth)
		}
		if p.peek() != '.' || p.pos+1 >= len(p.b) || p.b[p.pos+1] < '0' || p.b[p.pos+1] > '9' {
			break
		}
		p.pos++
	}
	return part
}

// binarySection parses section-binary = "[" [section-part] "]".
func (p *parser) binarySection() []int {
	p.expect('[')
	var part []int
	if p.peek() != ']' {
		part = p.sectionPart()
	}
	p.expect(']')
	return part
}

// headerList parses header-list = "(" header-fld-name *(SP header-fld-name) ")".
func (p *parser) headerList() []string {
	p.expect('(')
	var fields []string
	for p.ok() && !p.take(')') {
		if len(fields) > 0 {
			p.sp()
		}
		fields = append(fields, p.astring())
	}
	if p.ok() && len(fields) == 0 {
		p.errorf("expected a header field name")
	}
	return fields
}

// partial parses the optional partial = "<" number64 "." nz-number64 ">".
func (p *parser) partial() *imap.SectionPartial {
	if !p.take('<') {
		return nil
	}
	offset := p.number64()
	p.expect('.')
	size := p.number64()
	if p.ok() && size == 0 {
		p.errorf("partial size must not be zero")
	}
	p.expect('>')
	return &imap.SectionPartial{Offset: int64(offset), Size: int64(size)}
}
