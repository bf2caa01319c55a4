package message

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestBaseSubject: RFC 5256 2.1, with the reply or forward indication of RFC 5256 4.
func TestBaseSubject(t *testing.T) {
	cases := []struct {
		subject string
		base    string
		reply   bool
	}{
		{"Plans", "Plans", false},
		{"  Plans \t for\r\n 2026  ", "Plans for 2026", false},
		{"Re: Plans", "Plans", true},
		{"RE:re: Fwd:  Plans", "Plans", true},
		{"Fw: Plans", "Plans", true},
		{"Re[2]: Plans", "Plans", true},
		{"Re : Plans", "Plans", true},
		{"[list] Re: Plans", "Plans", true},
		{"[list] Plans", "Plans", false},
		{"Re: [list] Plans", "Plans", true},
		{"[PATCH]", "[PATCH]", false},
		{"[a] [b]", "[b]", false},
		{"Plans (fwd)", "Plans", true},
		{"Plans (FWD) (fwd) ", "Plans", true},
		{"[Fwd: Plans]", "Plans", true},
		{"[fwd: Re: Plans (fwd)]", "Plans", true},
		{"Reply needed", "Reply needed", false},
		{"Fwdx: Plans", "Fwdx: Plans", false},
		{"Re:", "", true},
		{"", "", false},
	}
	for _, c := range cases {
		base, reply := baseSubject(c.subject)
		if base != c.base || reply != c.reply {
			t.Errorf("baseSubject(%q) = %q, %v; want %q, %v", c.subject, base, reply, c.base, c.reply)
		}
	}
}

func TestMessageIDs(t *testing.T) {
	cases := []struct {
		value string
		want  []string
	}{
		{"<a@x>", []string{"a@x"}},
		{" <a@x> (comment)\r\n\t<b@y>", []string{"a@x", "b@y"}},
		{"<a\r\n @x>", []string{"a@x"}},
		{"Your message of Monday <a@x>", []string{"a@x"}},
		{"<<a@x>", []string{"a@x"}},
		{"<> <a@x", nil},
		{"a@x b@y nonsense", []string{"a@x", "b@y"}},
		{"<" + strings.Repeat("x", maxMessageIDBytes) + "@y>", nil},
		{"", nil},
	}
	for _, c := range cases {
		if got := messageIDs(c.value); !slices.Equal(got, c.want) {
			t.Errorf("messageIDs(%q) = %q, want %q", c.value, got, c.want)
		}
	}
}

// TestThreadKeys: the keys of a parsed message, references nearest first.
func TestThreadKeys(t *testing.T) {
	msg := crlf("Message-ID: <c@x>\nIn-Reply-To: <b@x>\nReferences: <a@x>\n <b@x> <c@x>\n" +
		"Subject: =?utf-8?q?Re=3A_=C3=89t=C3=A9?= [list]\n\nbody\n")
	s, err := Parse(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	keys := ThreadKeys(s)
	if keys.GetMessageId() != "c@x" || !slices.Equal(keys.GetReferences(), []string{"b@x", "a@x"}) ||
		keys.GetBaseSubject() != "été [list]" || !keys.GetReply() {
		t.Errorf("ThreadKeys = %v", keys)
	}

	// A long References keeps its root and the nearest ids.
	var refs []string
	for i := range 100 {
		refs = append(refs, fmt.Sprintf("<r%d@x>", i))
	}
	s, err = Parse(strings.NewReader(crlf("References: " + strings.Join(refs, " ") + "\nSubject: x\n\nbody\n")))
	if err != nil {
		t.Fatal(err)
	}
	keys = ThreadKeys(s)
	got := keys.GetReferences()
	if len(got) != maxThreadReferences || got[0] != "r99@x" || got[len(got)-2] != "r69@x" || got[len(got)-1] != "r0@x" ||
		keys.GetMessageId() != "" || keys.GetReply() {
		t.Errorf("ThreadKeys of a long References = %v", keys)
	}

	// A long subject is cut to the bound, on a character boundary.
	s, err = Parse(strings.NewReader(crlf("Subject: " + strings.Repeat("é", 200) + "\n\nbody\n")))
	if err != nil {
		t.Fatal(err)
	}
	if b := ThreadKeys(s).GetBaseSubject(); len(b) != maxBaseSubjectBytes || b != strings.Repeat("é", maxBaseSubjectBytes/2) {
		t.Errorf("long base subject of %d bytes", len(b))
	}
}
