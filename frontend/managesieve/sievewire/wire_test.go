package sievewire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

var testLimits = Limits{MaxLine: 256, MaxLiteral: 128, MaxDiscard: 1024}

func readAll(input string, limits Limits) ([]*Command, []error) {
	r := NewReader(bufio.NewReader(strings.NewReader(input)), limits)
	var cmds []*Command
	var errs []error
	for {
		cmd, err := r.ReadCommand()
		var syn *SyntaxError
		switch {
		case err == nil:
			cmds = append(cmds, cmd)
		case errors.As(err, &syn):
			errs = append(errs, err)
		default:
			errs = append(errs, err)
			return cmds, errs
		}
	}
}

// render is a command in a canonical form for comparisons.
func render(cmd *Command) string {
	var b strings.Builder
	b.WriteString(cmd.Name)
	for _, a := range cmd.Args {
		switch {
		case a.Kind == ArgNumber:
			fmt.Fprintf(&b, " %d", a.Num)
		case a.Dropped > 0:
			fmt.Fprintf(&b, " <dropped %d>", a.Dropped)
		default:
			fmt.Fprintf(&b, " %q", a.Str)
		}
	}
	return b.String()
}

// TestReadCommand: the grammar of RFC 5804 4 and the reader's limits.
func TestReadCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // rendered commands, then the errors in order
	}{
		{"capability\r\n", []string{"CAPABILITY", "EOF"}},
		{"PUTSCRIPT \"a\" {5+}\r\nkeep;\r\nLOGOUT\r\n", []string{`PUTSCRIPT "a" "keep;"`, "LOGOUT", "EOF"}},
		{"PUTSCRIPT \"a\" {5}\r\nkeep;\r\n", []string{`PUTSCRIPT "a" "keep;"`, "EOF"}},
		{"NOOP {0+}\r\n\r\n", []string{`NOOP ""`, "EOF"}},
		{"HAVESPACE \"x\" 4294967295\n", []string{`HAVESPACE "x" 4294967295`, "EOF"}},
		{"HAVESPACE \"x\" 4294967296\r\nNOOP\r\n", []string{"NOOP", "number larger than 4294967295", "EOF"}},
		{`NOOP "a\"b\\c"` + "\r\n", []string{`NOOP "a\"b\\c"`, "EOF"}},
		{"NOOP \"\xff\"\r\nNOOP\r\n", []string{"NOOP", "quoted string is not UTF-8", "EOF"}},
		{"NOOP \"" + strings.Repeat("a", 300) + "\"\r\n", []string{"command line too long"}},
		// A bad line that announces a literal: the literal is skipped with it.
		{"NOOP x {6+}\r\nLOGOUT\r\nNOOP\r\n", []string{"NOOP", "expected a string (quoted or literal) or a number", "EOF"}},
		{"NOOP {200+}\r\n" + strings.Repeat("s", 200) + "\r\nNOOP\r\n", []string{"NOOP <dropped 200>", "NOOP", "EOF"}},
		{"NOOP {100+}\r\n" + strings.Repeat("s", 100) + " {100+}\r\n" + strings.Repeat("t", 100) + "\r\n", []string{`NOOP "` + strings.Repeat("s", 100) + `" <dropped 100>`, "EOF"}},
		{"NOOP {2000+}\r\n", []string{"literal too large"}},
		{"NOOP {5+}\r\nab", []string{"unexpected EOF"}},
		{"NOOP\r", []string{"unexpected EOF"}},
		{"NOOP\rX\r\nNOOP\r\n", []string{"NOOP", "CR without LF", "EOF"}},
	} {
		cmds, errs := readAll(tc.in, testLimits)
		var got []string
		for _, c := range cmds {
			got = append(got, render(c))
		}
		for _, err := range errs {
			msg := err.Error()
			if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				msg = "EOF"
			}
			got = append(got, msg)
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%q:\ngot  %q\nwant %q", clipTest(tc.in), got, tc.want)
		}
	}
}

func clipTest(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// encode renders a command as a client would send it, every string as a literal.
func encode(cmd *Command) []byte {
	b := []byte(cmd.Name)
	for _, a := range cmd.Args {
		b = append(b, ' ')
		if a.Kind == ArgNumber {
			b = strconv.AppendUint(b, uint64(a.Num), 10)
			continue
		}
		b = fmt.Appendf(b, "{%d+}\r\n", len(a.Str))
		b = append(b, a.Str...)
	}
	return append(b, "\r\n"...)
}

// FuzzReadCommand feeds arbitrary octets to the reader: it never panics, keeps its limits,
// and every command it reads reads back the same when sent again in canonical form.
func FuzzReadCommand(f *testing.F) {
	for _, seed := range []string{
		"CAPABILITY\r\n",
		"AUTHENTICATE \"PLAIN\" \"AGRlbW9AZXhhbXBsZS5jb20AZGVtbw==\"\r\n",
		"AUTHENTICATE \"PLAIN\" {32+}\r\nAGRlbW9AZXhhbXBsZS5jb20AZGVtbw==\r\n",
		"PUTSCRIPT \"vacation\" {44+}\r\nrequire \"vacation\";\r\nvacation \"I'm away\";\r\n\r\n",
		"PUTSCRIPT \"x\" {5}\r\nkeep;\r\nLISTSCRIPTS\r\n",
		"HAVESPACE \"x\" 12345\r\nSETACTIVE \"\"\r\n",
		"RENAMESCRIPT \"a b\" \"c\\\"d\"\r\nNOOP \"STARTTLS-SYNC-42\"\r\n",
		"NOOP x {6+}\r\nLOGOUT\r\nNOOP\r\n",
		"NOOP {200+}\r\n" + strings.Repeat("s", 200) + "\r\n",
		"GETSCRIPT \"\xc3\xa9t\xc3\xa9\"\nDELETESCRIPT {3}\r\nabc\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		cmds, errs := readAll(string(input), testLimits)
		last := errs[len(errs)-1]
		var syn *SyntaxError
		if errors.As(last, &syn) {
			t.Fatalf("the reader stopped at a syntax error: %v", last)
		}
		for _, cmd := range cmds {
			if cmd.Name == "" || strings.ToUpper(cmd.Name) != cmd.Name {
				t.Fatalf("command name %q", cmd.Name)
			}
			var kept int64
			for _, a := range cmd.Args {
				kept += int64(len(a.Str))
			}
			if kept > testLimits.MaxLiteral+int64(testLimits.MaxLine) {
				t.Fatalf("%d octets of arguments kept, over the limits", kept)
			}
			if cmd.Dropped > 0 {
				continue // the dropped octets cannot be sent again
			}
			again, errs := readAll(string(encode(cmd)), Limits{MaxLine: 1 << 20, MaxLiteral: 1 << 20, MaxDiscard: 1 << 20})
			if len(again) != 1 || len(errs) != 1 || render(again[0]) != render(cmd) {
				t.Fatalf("%q read back as %v, %v", render(cmd), again, errs)
			}
			if !bytes.Equal(encode(again[0]), encode(cmd)) {
				t.Fatalf("%q encodes differently when read back", render(cmd))
			}
		}
	})
}
