package imap

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
)

// TestCommandTableMatchesParser: the dispatch table and the parser know the same command
// names, both ways: a name only the parser knows would be answered "Unknown command" after
// parsing, one only the table knows could never be parsed. Every UID form's base command is
// in the table too (RFC 9051 6.4.9, RFC 8508 6).
func TestCommandTableMatchesParser(t *testing.T) {
	parsed := imapwire.CommandNames()
	dispatched := slices.Sorted(maps.Keys(commands))
	for _, name := range parsed {
		if _, ok := commands[name]; !ok {
			t.Errorf("the parser knows %s, the dispatch table does not", name)
		}
	}
	for _, name := range dispatched {
		if !slices.Contains(parsed, name) {
			t.Errorf("the dispatch table has %s, the parser does not know it", name)
		}
		if base, uid := strings.CutPrefix(name, "UID "); uid {
			if _, ok := commands[base]; !ok {
				t.Errorf("the dispatch table has %s without %s", name, base)
			}
		}
	}
}
