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

// TestCommandTableUIDForms: the rows that UIDONLY refuses are the message-number forms, each
// with a UID form to use instead (RFC 9586 3); the rows that hold back EXPUNGE are FETCH,
// STORE and SEARCH, not their UID forms (RFC 9051 7.5.1), and SORT and THREAD, which answer
// in message numbers as SEARCH does (RFC 5256 3, 4). The rows that answer in UIDs, and so
// wait for the session's own additions when they search (awaitOwnAdditionsToSearch), are
// the UID forms and ESEARCH (RFC 7377 2.1), never a message-number form.
func TestCommandTableUIDForms(t *testing.T) {
	var noExpunge []string
	for name, spec := range commands {
		if uidForm := strings.HasPrefix(name, "UID "); spec.answersUIDs != (uidForm || name == "ESEARCH") || spec.answersUIDs && spec.seqNumbers {
			t.Errorf("%s: answersUIDs %v, want it on the UID forms and ESEARCH only", name, spec.answersUIDs)
		}
		if spec.seqNumbers {
			if _, twin := commands["UID "+name]; strings.HasPrefix(name, "UID ") || !twin {
				t.Errorf("%s is refused under UIDONLY but is a UID form or has none", name)
			}
		}
		if spec.noExpunge {
			noExpunge = append(noExpunge, name)
		}
	}
	slices.Sort(noExpunge)
	if want := []string{"FETCH", "SEARCH", "SORT", "STORE", "THREAD"}; !slices.Equal(noExpunge, want) {
		t.Errorf("EXPUNGE held back in %v, want %v (RFC 9051 7.5.1)", noExpunge, want)
	}
}
