package imapwire

import (
	"slices"
	"strings"
)

// MetadataDepth is the DEPTH option of GETMETADATA (RFC 5464 4.2.2).
type MetadataDepth int

// The values of DEPTH; without the option, DepthZero.
const (
	DepthZero     MetadataDepth = iota // "0": the entry only
	DepthOne                           // "1": and its children
	DepthInfinity                      // "infinity": and every entry below it
)

// GetMetadataArgs are the arguments of GETMETADATA (RFC 5464 4.2).
type GetMetadataArgs struct {
	Mailbox string // "" for the server's entries
	// MaxSize is the MAXSIZE option (RFC 5464 4.2.1); nil when not given.
	MaxSize *uint32
	Depth   MetadataDepth
	// Entries are the entry names asked for, lower-case; besides entries that can hold a
	// value they may be /private, /shared or a vendor prefix, the roots of a DEPTH.
	Entries []string
}

// MetadataEntry is one entry-value pair of SETMETADATA.
type MetadataEntry struct {
	Name  string // lower-case
	Value []byte // the value; nil when Nil
	Nil   bool   // NIL: remove the entry
}

// SetMetadataArgs are the arguments of SETMETADATA (RFC 5464 4.3).
type SetMetadataArgs struct {
	Mailbox string // "" for the server's entries
	Entries []MetadataEntry
}

// maxMetadataEntries bounds the entries of one GETMETADATA or SETMETADATA.
const maxMetadataEntries = 1024

// maxEntryName bounds an entry name, as the metadata service does.
const maxEntryName = 1024

// getMetadataArgs parses GETMETADATA (RFC 5464 5):
//
//	getmetadata         = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
//	getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"
//	maxsize-opt         = "MAXSIZE" SP number
//	scope-opt           = "DEPTH" SP ("0" / "1" / "infinity")
//	entries             = entry / "(" entry *(SP entry) ")"
//
// The examples of RFC 5464 4.2.1 and 4.2.2 put the options after the mailbox, and that of
// 4.4.1 gives several entries without parentheses; clients copy both, so both are taken.
// Options and entries are told apart by what follows "(": an entry starts with "/" (or is
// a string), an option with a letter.
func (p *parser) getMetadataArgs() *GetMetadataArgs {
	args := &GetMetadataArgs{}
	p.sp()
	options := p.peek() == '('
	if options {
		p.metadataOptions(args)
		p.sp()
	}
	args.Mailbox = p.mailbox()
	p.sp()
	if !options && p.optionsNext() {
		p.metadataOptions(args)
		p.sp()
	}
	if p.take('(') {
		for p.ok() && !p.take(')') {
			if len(args.Entries) > 0 {
				p.sp()
			}
			args.Entries = p.appendEntry(args.Entries, false)
		}
		if p.ok() && len(args.Entries) == 0 {
			p.errorf("expected an entry")
		}
		return args
	}
	args.Entries = p.appendEntry(args.Entries, false)
	for p.take(' ') {
		args.Entries = p.appendEntry(args.Entries, false)
	}
	return args
}

// optionsNext reports whether a GETMETADATA option list starts here: "(" then a
// tagged-ext-label, whose first character is a letter, "-", "_" or "." (RFC 4466 2.1).
func (p *parser) optionsNext() bool {
	if p.peek() != '(' || p.pos+1 >= len(p.b) {
		return false
	}
	c := p.b[p.pos+1]
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_' || c == '.'
}

// metadataOptions reads getmetadata-options: MAXSIZE and DEPTH, each at most once. An
// option RFC 5464 does not define is an error.
func (p *parser) metadataOptions(args *GetMetadataArgs) {
	p.expect('(')
	seen := map[string]bool{}
	for p.ok() && !p.take(')') {
		if len(seen) > 0 {
			p.sp()
		}
		label := strings.ToUpper(p.atom())
		if seen[label] && p.ok() {
			p.errorf("%s given twice", label)
		}
		seen[label] = true
		p.sp()
		switch label {
		case "MAXSIZE":
			n := p.number()
			args.MaxSize = &n
		case "DEPTH":
			switch {
			case p.take('0'):
				args.Depth = DepthZero
			case p.take('1'):
				args.Depth = DepthOne
			case p.takeFold("infinity"):
				args.Depth = DepthInfinity
			default:
				p.errorf(`expected DEPTH 0, 1 or infinity`)
			}
		default:
			p.errorf("unknown GETMETADATA option %s", label)
		}
	}
	if p.ok() && len(seen) == 0 {
		p.errorf("expected a GETMETADATA option")
	}
}

// setMetadataArgs parses SETMETADATA (RFC 5464 5):
//
//	setmetadata  = "SETMETADATA" SP mailbox SP entry-values
//	entry-values = "(" entry-value *(SP entry-value) ")"
//	entry-value  = entry SP value
//	value        = nstring / literal8
func (p *parser) setMetadataArgs() *SetMetadataArgs {
	args := &SetMetadataArgs{}
	p.sp()
	args.Mailbox = p.mailbox()
	p.sp()
	p.expect('(')
	var names []string
	for p.ok() && !p.take(')') {
		if len(names) > 0 {
			p.sp()
		}
		names = p.appendEntry(names, true)
		p.sp()
		if !p.ok() {
			break
		}
		e := MetadataEntry{Name: names[len(names)-1]}
		switch p.peek() {
		case '"', '{':
			e.Value = []byte(p.str())
		case '~':
			e.Value = slices.Clone(p.literalData(true))
		default:
			if !p.takeFold("NIL") {
				p.errorf("expected a value: a string, a literal8 or NIL")
			}
			e.Nil = true
		}
		args.Entries = append(args.Entries, e)
	}
	if p.ok() && len(args.Entries) == 0 {
		p.errorf("expected an entry and its value")
	}
	return args
}

// appendEntry reads an entry name (entry = astring), checks it and appends it lower-case to
// names, up to maxMetadataEntries. stored says that the entry is to hold a value, which
// needs a longer name than a DEPTH root (entryNameProblem).
func (p *parser) appendEntry(names []string, stored bool) []string {
	if len(names) >= maxMetadataEntries {
		p.errorf("more than %d entries", maxMetadataEntries)
		return names
	}
	name := strings.ToLower(p.astring())
	if !p.ok() {
		return names
	}
	if problem := entryNameProblem(name, stored); problem != "" {
		p.errorf("entry %q %s (RFC 5464 3.2)", name, problem)
		return names
	}
	return append(names, name)
}

// entryNameProblem says what is wrong with a lower-case entry name, or "" (RFC 5464 3.2): it
// starts with /private or /shared, holds no "*", "%", control or non-ASCII character, no
// "//" and no trailing "/"; a stored entry also has two components at least, and four
// under a vendor prefix (/shared/vendor/<vendor-token>/...).
func entryNameProblem(name string, stored bool) string {
	if len(name) > maxEntryName {
		return "is too long"
	}
	for i := 0; i < len(name); i++ {
		// 3.2 forbids 0x00 to 0x19, "*", "%" and non-ASCII; the other controls, which it
		// strongly discourages, are refused too.
		if c := name[i]; c < 0x20 || c >= 0x7f || c == '*' || c == '%' {
			return "holds a forbidden character"
		}
	}
	components := strings.Split(name, "/")
	switch {
	case components[0] != "" || len(components) < 2 || components[1] != "private" && components[1] != "shared":
		return "does not start with /private or /shared"
	case slices.Contains(components[1:], ""):
		return `holds "//" or ends with "/"`
	case stored && len(components) < 3:
		return "names no entry below its scope"
	case stored && components[2] == "vendor" && len(components) < 5:
		return "names no entry below its vendor prefix"
	}
	return ""
}
