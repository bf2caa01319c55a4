package imap_test

import (
	"strings"
	"testing"
)

// TestMultiSearchEmptyRoot: "" names no mailbox; as the root of every name its subtree is
// every mailbox the session may list and subtree-one the top level, and as a mailbox of
// "mailboxes" it is skipped like one that does not exist (RFC 7377 2.2): OK, not NO.
func TestMultiSearchEmptyRoot(t *testing.T) {
	_, a := folderFixture(t)
	all := [][2]string{
		{"INBOX", "COUNT 2"}, {"folder1", "COUNT 4"}, {"folder2", "COUNT 2"}, {"folder2/banana", "COUNT 1"},
		{"folder2/salmon", "COUNT 4"}, {"folder2/salmon/roe", "COUNT 1"},
	}
	a.checkMultiSearch(`IN (subtree "") RETURN (COUNT) ALL`, all...)
	a.checkMultiSearch(`IN (subtree-one "") RETURN (COUNT) ALL`, all[0], all[1], all[2])
	a.checkMultiSearch(`IN (mailboxes ("" folder1)) RETURN (COUNT) ALL`, all[1])
	if _, tagged := a.cmd(`ESEARCH IN (mailboxes "") ALL`); !strings.HasPrefix(tagged, "OK") {
		t.Errorf(`ESEARCH IN (mailboxes "") ALL: %s, want OK with nothing found`, tagged)
	}
}
