package imap

import "testing"

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "a/b/c", true},
		{"%", "a/b", false},
		{"%", "a", true},
		{"a/%", "a/b", true},
		{"a/%", "a/b/c", false},
		{"a/%/c", "a/b/c", true},
		{"a*c", "a/b/c", true},
		{"a%c", "a/c", false},
		{"inbox", "INBOX", true},
		{"InBox/%", "INBOX/x", true},
		{"inbox", "inbox2", false},
		{"INBOX*", "inboxes", false}, // only INBOX itself is case-insensitive
		{"", "", true},
		{"%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false},
	} {
		if got := matchPattern(tc.pattern, tc.name); got != tc.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}
