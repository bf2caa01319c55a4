package imap

import (
	"errors"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestParseModRights: SETACL's mod-rights (RFC 4314 3.1): replace, "+" add, "-" remove; the
// letters of RFC 4314 2.1 and the obsolete c and d (2.1.1); anything else is a BAD.
func TestParseModRights(t *testing.T) {
	for _, tc := range []struct {
		in      string
		mode    metadatapb.AclMode
		letters string
	}{
		{"lrswipkxtea", metadatapb.AclMode_ACL_MODE_REPLACE, "lrswipkxtea"},
		{"+lr", metadatapb.AclMode_ACL_MODE_ADD, "lr"},
		{"-w", metadatapb.AclMode_ACL_MODE_REMOVE, "w"},
		{"cd", metadatapb.AclMode_ACL_MODE_REPLACE, "cd"},
		{"-cd", metadatapb.AclMode_ACL_MODE_REMOVE, "cd"},
		// Empty: no rights (replace), or nothing added or removed.
		{"", metadatapb.AclMode_ACL_MODE_REPLACE, ""},
		{"+", metadatapb.AclMode_ACL_MODE_ADD, ""},
		{"-", metadatapb.AclMode_ACL_MODE_REMOVE, ""},
	} {
		mode, letters, err := parseModRights(tc.in)
		if err != nil || mode != tc.mode || letters != tc.letters {
			t.Errorf("parseModRights(%q) = %v, %q, %v; want %v, %q", tc.in, mode, letters, err, tc.mode, tc.letters)
		}
	}
	for _, in := range []string{
		"L",   // rights are lower-case letters
		"lrz", // not a right
		"+-l", // one sign only
		"-+l",
		"l+r", // the sign leads
		"lr ", // no spaces
		"0",
		"\xff", // not UTF-8; the BAD text stays valid UTF-8
		"+\x00l",
	} {
		_, _, err := parseModRights(in)
		var st *imapStatus
		if !errors.As(err, &st) || st.Type != "BAD" {
			t.Errorf("parseModRights(%q) = %v, want BAD", in, err)
		}
	}
}
