package sieve

import (
	"strings"
	"testing"
)

func TestLexerTokens(t *testing.T) {
	src := "# comment\r\nif /* multi\nline */ size :over 10K { discard; }\n" +
		`fileinto "a\"b\\c\d";` + "\nx text: # c\r\nline1\r\n..dot\r\n.\r\n;"
	l := newLexer("s", []byte(src))
	var got []string
	for {
		tok, err := l.next()
		if err != nil {
			t.Fatal(err)
		}
		if tok.kind == tokEOF {
			break
		}
		s := tok.kind.String()
		switch tok.kind {
		case tokIdentifier, tokTag, tokString:
			s += "=" + tok.text
		case tokNumber:
			s += "=" + itoa(tok.num)
		}
		got = append(got, s)
	}
	want := []string{"identifier=if", "identifier=size", "tag=:over", "number=10240", "'{'", "identifier=discard", "';'", "'}'",
		"identifier=fileinto", `string=a"b\cd`, "';'", "identifier=x", "string=line1\r\n.dot\r\n", "';'"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tokens\n got %q\nwant %q", got, want)
	}
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestNumberQuantifiers(t *testing.T) {
	for src, want := range map[string]int64{"1": 1, "2k": 2048, "3M": 3 << 20, "1G": 1 << 30, "007": 7} {
		tok, err := newLexer("s", []byte(src)).next()
		if err != nil || tok.num != want {
			t.Errorf("%s: got %d, %v; want %d", src, tok.num, err, want)
		}
	}
}

// TestSyntaxErrors checks that each error names the right line and column.
func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		src       string
		line, col int
		msg       string
	}{
		{`keep`, 1, 5, "expected ';' or '{'"},
		{"keep;\n  fileinto \"x", 2, 12, "unterminated string"},
		{"if true {\n keep;\n", 3, 1, "expected '}'"},
		{"/* never closed", 1, 1, "unterminated comment"},
		{"x text:\nabc\n", 1, 3, "unterminated multi-line string"},
		{"x text: abc\n.\n;", 1, 9, "expected end of line after text:"},
		{"keep;\n\n   @", 3, 4, "unexpected character '@'"},
		{"if anyof(true,) {}", 1, 15, "expected a test"},
		{`x ["a" "b"];`, 1, 8, "expected ',' or ']'"},
		{"x 99999999999999999999;", 1, 3, "number too large"},
		{"x 9999999999G;", 1, 3, "number too large"},
		{"x 12abc;", 1, 5, "unexpected character 'a' after number"},
		{"x : y;", 1, 3, "expected a tag name"},
		{"x;}", 1, 3, "expected a command"},
	}
	for _, c := range cases {
		e := compileErr(t, c.src)
		if e.Line != c.line || e.Column != c.col || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%q: got %d:%d %q, want %d:%d %q", c.src, e.Line, e.Column, e.Msg, c.line, c.col, c.msg)
		}
		if want := "s:" + itoa(int64(e.Line)) + ":" + itoa(int64(e.Column)) + ": " + e.Msg; e.Error() != want {
			t.Errorf("Error() = %q, want %q", e.Error(), want)
		}
	}
}

// TestCompileErrors checks the checker: unknown names, missing requires,
// argument kinds and counts, each at its line and column.
func TestCompileErrors(t *testing.T) {
	cases := []struct {
		src       string
		line, col int
		msg       string
	}{
		{"frobnicate;", 1, 1, `unknown command "frobnicate"`},
		{"keep;\nfileinto \"x\";", 2, 1, `requires the "fileinto" extension`},
		{`require "fileinto"; if frob { keep; }`, 1, 24, `unknown test "frob"`},
		{`require ["fileinto", "nosuch"];`, 1, 22, `unsupported extension "nosuch"`},
		{"keep;\nrequire \"fileinto\";", 2, 1, "require must come before"},
		{`if true { require "fileinto"; }`, 1, 11, "require must come before"},
		{`keep :copy;`, 1, 6, "unknown tag :copy for keep"},
		{`require "fileinto"; fileinto :copy "x";`, 1, 30, `requires the "copy" extension`},
		{`redirect;`, 1, 1, "takes 1 positional argument(s), got 0"},
		{`redirect "a@b.c" "d@e.f";`, 1, 18, "got 2"},
		{`redirect ["a@b.c"];`, 1, 10, "expected a string"},
		{`redirect "not an address";`, 1, 10, "invalid redirect address"},
		{`if size 10 { keep; }`, 1, 4, "size needs :over or :under"},
		{`if size :over "x" { keep; }`, 1, 15, "expected a number"},
		{`if header :is :contains "a" "b" { keep; }`, 1, 15, "conflicts with :is"},
		{`if header :comparator "i;nope" "a" "b" { keep; }`, 1, 23, "unknown comparator"},
		{`if header :comparator "i;ascii-numeric" "a" "b" { keep; }`, 1, 23, "needs require"},
		{`require "comparator-i;ascii-numeric"; if header :contains :comparator "i;ascii-numeric" "a" "b" {}`, 1, 42, "cannot be used with :contains"},
		{`if header :count "gt" "a" "b" {}`, 1, 11, `requires the "relational" extension`},
		{`require "relational"; if header :value "more" "a" "b" {}`, 1, 40, "unknown relational match"},
		{`if true keep;`, 1, 9, "true takes no test"},
		{`elsif true {}`, 1, 1, "elsif without a preceding if"},
		{"if true {} else {} else {}", 1, 20, "else after else"},
		{`stop { keep; }`, 1, 1, "stop takes no block"},
		{`if true;`, 1, 1, "if needs a block"},
		{`if not (true, false) {}`, 1, 4, "not takes one test"},
		{`if allof {}`, 1, 4, "allof needs a test list"},
		{`keep true;`, 1, 6, "keep takes no test"},
		{`if keep {}`, 1, 4, "keep is a command, not a test"},
		{`true;`, 1, 1, "true is a test, not a command"},
		{`if envelope "x" "y" {}`, 1, 4, `requires the "envelope" extension`},
		{`require "envelope"; if envelope "reply-to" "y" {}`, 1, 33, `unknown envelope part "reply-to"`},
		{`require "date"; if date "date" "century" "20" {}`, 1, 32, "unknown date part"},
		{`require "index"; if header :last "to" "x" {}`, 1, 21, ":last needs :index"},
		{`require "variables"; set "1x" "v";`, 1, 26, "invalid variable name"},
		{`require "variables"; set :lower :upper "x" "v";`, 1, 33, "conflicts with :lower"},
		{`require "encoded-character"; keep; if header "x" "${unicode:D800}" {}`, 1, 50, "not a Unicode scalar value"},
		{`require "variables"; if header :comparator "${x}" "a" "b" {}`, 1, 44, "must be a constant"},
		{`require "vacation"; vacation :seconds 10 "x";`, 1, 30, `requires the "vacation-seconds" extension`},
		{`require "vacation"; vacation :from "nobody" "x";`, 1, 36, "not an address"},
		{`require "editheader"; addheader "bad name" "v";`, 1, 33, "invalid header field name"},
		{`require "include"; include "../x";`, 1, 28, "invalid script name"},
		{`require "include"; global "x";`, 1, 20, `global needs require "variables"`},
		{`require "special-use"; if specialuse_exists "Junk" {}`, 1, 45, "invalid special-use attribute"},
		{`require "ereject"; reject "x";`, 1, 20, `requires the "reject" extension`},
		{`require "imap4flags"; setflag "var" "\\Seen";`, 1, 31, `needs require "variables"`},
		{`if header :index 1 "to" "x" {}`, 1, 11, `requires the "index" extension`},
		{`require "duplicate"; if duplicate :header "a b" {}`, 1, 43, "invalid header name"},
	}
	for _, c := range cases {
		e := compileErr(t, c.src)
		if e.Line != c.line || e.Column != c.col || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%q:\n got %d:%d %q\nwant %d:%d %q", c.src, e.Line, e.Column, e.Msg, c.line, c.col, c.msg)
		}
	}
}

// TestCompileWarnings: questionable but valid scripts compile, with warnings.
func TestCompileWarnings(t *testing.T) {
	p, err := Compile("s", []byte(`require "date"; if date :zone "CET" "date" "year" "2026" {}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := p.Warnings()
	if len(w) != 1 || w[0].Line != 1 || w[0].Column != 31 || !strings.Contains(w[0].Msg, "invalid time zone") {
		t.Fatalf("warnings %v", w)
	}
	if p, err = Compile("s", []byte(`require "date"; if date :zone "+0100" "date" "year" "2026" {}`), Options{}); err != nil || len(p.Warnings()) != 0 {
		t.Fatalf("valid zone: %v %v", err, p.Warnings())
	}
}

func TestExtensionsOption(t *testing.T) {
	if _, err := Compile("s", []byte(`require "fileinto"; fileinto "x";`), Options{Extensions: []string{"fileinto"}}); err != nil {
		t.Fatal(err)
	}
	_, err := Compile("s", []byte(`require "vacation"; vacation "x";`), Options{Extensions: []string{"fileinto"}})
	if err == nil || !strings.Contains(err.Error(), `unsupported extension "vacation"`) {
		t.Fatalf("disabled extension accepted: %v", err)
	}
	if _, err := Compile("s", []byte(`require "comparator-i;octet"; keep;`), Options{Extensions: []string{}}); err != nil {
		t.Fatalf("base comparator refused: %v", err)
	}
	exts := strings.Join(Extensions(), " ")
	for _, want := range []string{"body", "copy", "date", "duplicate", "editheader", "fileinto", "include", "vacation-seconds", "variables"} {
		if !strings.Contains(exts, want) {
			t.Errorf("Extensions() lacks %s: %s", want, exts)
		}
	}
}
