package sieve

// The syntax tree the parser builds (RFC 5228 8.2). It carries no meaning yet:
// the compiler checks names and arguments against the extension registry.

type argKind uint8

const (
	argStringList argKind = iota // a string or a bracketed list
	argNumber
	argTag
)

type astArg struct {
	kind   argKind
	pos    Pos
	strs   []string
	strPos []Pos
	list   bool // written with brackets
	num    int64
	tag    string // ":name"
}

type astTest struct {
	name  string
	pos   Pos
	args  []astArg
	tests []*astTest
	paren bool // tests written as a parenthesized test-list
}

type astCommand struct {
	name  string
	pos   Pos
	args  []astArg
	tests []*astTest
	paren bool
	block []*astCommand
	// hasBlock is set when the command ended in a block, not in ';'.
	hasBlock bool
}

type parser struct {
	lex      *lexer
	tok      token
	maxDepth int
	depth    int
}

// parse builds the syntax tree of a whole script.
func parse(name string, src []byte, maxDepth int) ([]*astCommand, *Error) {
	p := &parser{lex: newLexer(name, src), maxDepth: maxDepth}
	if err := p.advance(); err != nil {
		return nil, err
	}
	cmds, err := p.commands()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.unexpected("a command")
	}
	return cmds, nil
}

func (p *parser) advance() *Error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) unexpected(want string) *Error {
	return p.lex.errorf(p.tok.pos, "expected %s, found %s", want, p.tok.kind)
}

func (p *parser) enter() *Error {
	p.depth++
	if p.maxDepth > 0 && p.depth > p.maxDepth {
		return p.lex.errorf(p.tok.pos, "nesting deeper than %d", p.maxDepth)
	}
	return nil
}

// commands = *command
func (p *parser) commands() ([]*astCommand, *Error) {
	var cmds []*astCommand
	for p.tok.kind == tokIdentifier {
		c, err := p.command()
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// command = identifier arguments (";" / block)
func (p *parser) command() (*astCommand, *Error) {
	c := &astCommand{name: p.tok.text, pos: p.tok.pos}
	if err := p.advance(); err != nil {
		return nil, err
	}
	var err *Error
	if c.args, c.tests, c.paren, err = p.arguments(); err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tokSemicolon:
		return c, p.advance()
	case tokLBrace:
		if err := p.enter(); err != nil {
			return nil, err
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		if c.block, err = p.commands(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokRBrace {
			return nil, p.unexpected("'}' or a command")
		}
		p.depth--
		c.hasBlock = true
		return c, p.advance()
	}
	return nil, p.unexpected("';' or '{'")
}

// arguments = *argument [ test / test-list ]
func (p *parser) arguments() ([]astArg, []*astTest, bool, *Error) {
	var args []astArg
	for {
		switch p.tok.kind {
		case tokNumber:
			args = append(args, astArg{kind: argNumber, pos: p.tok.pos, num: p.tok.num})
		case tokTag:
			args = append(args, astArg{kind: argTag, pos: p.tok.pos, tag: p.tok.text})
		case tokString:
			args = append(args, astArg{kind: argStringList, pos: p.tok.pos, strs: []string{p.tok.text}, strPos: []Pos{p.tok.pos}})
		case tokLBracket:
			a, err := p.stringList()
			if err != nil {
				return nil, nil, false, err
			}
			args = append(args, a)
			continue
		case tokIdentifier:
			t, err := p.test()
			if err != nil {
				return nil, nil, false, err
			}
			return args, []*astTest{t}, false, nil
		case tokLParen:
			ts, err := p.testList()
			if err != nil {
				return nil, nil, false, err
			}
			return args, ts, true, nil
		default:
			return args, nil, false, nil
		}
		if err := p.advance(); err != nil {
			return nil, nil, false, err
		}
	}
}

// string-list = "[" string *("," string) "]" / string
func (p *parser) stringList() (astArg, *Error) {
	a := astArg{kind: argStringList, pos: p.tok.pos, list: true}
	for {
		if err := p.advance(); err != nil {
			return a, err
		}
		if p.tok.kind != tokString {
			return a, p.unexpected("a string")
		}
		a.strs = append(a.strs, p.tok.text)
		a.strPos = append(a.strPos, p.tok.pos)
		if err := p.advance(); err != nil {
			return a, err
		}
		switch p.tok.kind {
		case tokComma:
			continue
		case tokRBracket:
			return a, p.advance()
		}
		return a, p.unexpected("',' or ']'")
	}
}

// test = identifier arguments
func (p *parser) test() (*astTest, *Error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	t := &astTest{name: p.tok.text, pos: p.tok.pos}
	if err := p.advance(); err != nil {
		return nil, err
	}
	var err *Error
	if t.args, t.tests, t.paren, err = p.arguments(); err != nil {
		return nil, err
	}
	p.depth--
	return t, nil
}

// test-list = "(" test *("," test) ")"
func (p *parser) testList() ([]*astTest, *Error) {
	var ts []*astTest
	for {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokIdentifier {
			return nil, p.unexpected("a test")
		}
		t, err := p.test()
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
		switch p.tok.kind {
		case tokComma:
			continue
		case tokRParen:
			return ts, p.advance()
		}
		return nil, p.unexpected("',' or ')'")
	}
}
