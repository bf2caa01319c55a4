package main

import (
	"strings"
	"testing"
)

func TestParseAccountList(t *testing.T) {
	got, err := parseAccountList(strings.NewReader("# source target password\n\nalice alice@example.com /run/pw/alice\n  bob@old.example  bob@example.com pw/bob  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (accountLine{line: 3, user: "alice", target: "alice@example.com", passwordFile: "/run/pw/alice"}) || got[1].user != "bob@old.example" || got[1].line != 4 {
		t.Fatalf("parsed %+v", got)
	}
	for _, bad := range []string{"", "# only a comment\n", "alice alice@example.com\n", "alice alice /pw\n", "a b@c d e\n", strings.Repeat("x", maxAccountLine+1)} {
		if _, err := parseAccountList(strings.NewReader(bad)); err == nil {
			t.Errorf("parseAccountList(%.40q) accepted", bad)
		}
	}
}

func FuzzParseAccountList(f *testing.F) {
	f.Add("alice alice@example.com /pw\n# c\n")
	f.Add("a b@c d e\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		lines, err := parseAccountList(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, l := range lines {
			if l.user == "" || !strings.Contains(l.target, "@") || l.passwordFile == "" {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}
