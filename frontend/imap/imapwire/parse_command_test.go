package imapwire

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestParseMailboxExtensions(t *testing.T) {
	checkParses(t, []parseCase{
		// RFC 6154 3 (CREATE-SPECIAL-USE).
		{`a CREATE MySpecial (USE (\Drafts \Sent))`, &MailboxArgs{Mailbox: "MySpecial", SpecialUse: []string{`\Drafts`, `\Sent`}}},
		{`a CREATE "Foo/" (use (\Archive))`, &MailboxArgs{Mailbox: "Foo/", SpecialUse: []string{`\Archive`}}},
		// RFC 5819 (LIST-STATUS), RFC 5258 (several patterns, RECURSIVEMATCH).
		{`a LIST (SUBSCRIBED RECURSIVEMATCH) "" (% "Fruit/*") RETURN (CHILDREN STATUS (MESSAGES unseen))`, &ListArgs{
			SelectOptions: []string{"SUBSCRIBED", "RECURSIVEMATCH"}, Patterns: []string{"%", "Fruit/*"},
			ReturnOptions: []string{"CHILDREN", "STATUS"}, StatusItems: []string{"MESSAGES", "UNSEEN"},
		}},
		{`a LIST "" &AMk-t&AOk- RETURN ()`, &ListArgs{Patterns: []string{"&AMk-t&AOk-"}}},
	})
	checkRefused(t, []string{
		`a CREATE x (USE ())`,
		`a CREATE x (USE (Drafts))`,
		`a CREATE x (FOO (\Drafts))`,
		`a CREATE x (USE (\Drafts)`,
		`a LIST "" * RETURN (STATUS ())`,
		`a LIST "" * RETURN (STATUS)`,
	})
}

func TestParseAppendNext(t *testing.T) {
	got, err := ParseAppendNext([]byte(` (\Seen) " 7-Feb-1994 22:43:04 -0800" {295}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &AppendArgs{
		Flags:   []imap.Flag{imap.FlagSeen},
		Date:    time.Date(1994, 2, 7, 22, 43, 4, 0, time.FixedZone("", -8*3600)),
		Literal: Literal{Size: 295},
	}
	if !reflect.DeepEqual(got.Flags, want.Flags) || !got.Date.Equal(want.Date) || got.Literal != want.Literal {
		t.Errorf("ParseAppendNext = %+v, want %+v", got, want)
	}
	if got, err := ParseAppendNext([]byte(` ~{12+}`)); err != nil || got.Literal != (Literal{Size: 12, NonSync: true, Binary: true}) {
		t.Errorf("literal8: %+v, %v", got, err)
	}
	// RFC 6855 4: append-data =/ "UTF8" SP "(" literal8 ")"
	if got, err := ParseAppendNext([]byte(` (\Seen) utf8 (~{7}`)); err != nil || !got.UTF8 || got.Literal != (Literal{Size: 7, Binary: true}) {
		t.Errorf("UTF8 data: %+v, %v", got, err)
	}
	if cmd, err := ParseAppendHead([]byte(`a1 APPEND INBOX UTF8 (~{7+}`)); err != nil || !cmd.Args.(*AppendArgs).UTF8 {
		t.Errorf("ParseAppendHead with UTF8 data: %+v, %v", cmd, err)
	}
	for _, bad := range []string{"", "{3}", " (\\Seen)", " {3} x", " garbage {3}", " UTF8 ({3}", " UTF8 ~{3}", " UTF8(~{3}"} {
		if _, err := ParseAppendNext([]byte(bad)); err == nil {
			t.Errorf("ParseAppendNext(%q) succeeded", bad)
		}
	}
}

func TestParseConnectionCommands(t *testing.T) {
	for _, tc := range []struct {
		line string
		name string
		args any
	}{
		// RFC 4978 5: compress = "COMPRESS" SP algorithm.
		{"a COMPRESS DEFLATE", "COMPRESS", &CompressArgs{Mechanism: "DEFLATE"}},
		{"a compress deflate", "COMPRESS", &CompressArgs{Mechanism: "DEFLATE"}},
		{"a COMPRESS X-ZSTD", "COMPRESS", &CompressArgs{Mechanism: "X-ZSTD"}},
		// RFC 8437 6: "UNAUTHENTICATE" without arguments.
		{"a UNAUTHENTICATE", "UNAUTHENTICATE", nil},
	} {
		cmd, err := ParseCommand([]byte(tc.line))
		if err != nil {
			t.Errorf("ParseCommand(%q): %v", tc.line, err)
			continue
		}
		if cmd.Name != tc.name || !reflect.DeepEqual(cmd.Args, tc.args) {
			t.Errorf("ParseCommand(%q) = %s %#v, want %s %#v", tc.line, cmd.Name, cmd.Args, tc.name, tc.args)
		}
	}
	checkRefused(t, []string{"a COMPRESS", "a COMPRESS DEFLATE X", "a COMPRESS (DEFLATE)", "a UNAUTHENTICATE now"})
}

// TestCommandUIDForm: the parser sets Name, Base and UID; the UID prefix may be in any
// case and only the commands of RFC 9051 6.4.9 (and RFC 8508 6's UID REPLACE) have it.
func TestCommandUIDForm(t *testing.T) {
	for _, tc := range []struct {
		line       string
		name, base string
		uid        bool
	}{
		{"a FETCH 1 FLAGS", "FETCH", "FETCH", false},
		{"a uid fetch 1 FLAGS", "UID FETCH", "FETCH", true},
		{"a Uid Store 1 +FLAGS (\\Seen)", "UID STORE", "STORE", true},
		{"a UID SEARCH ALL", "UID SEARCH", "SEARCH", true},
		{"a UID COPY 1 Trash", "UID COPY", "COPY", true},
		{"a UID MOVE 1 Trash", "UID MOVE", "MOVE", true},
		{"a UID EXPUNGE 1", "UID EXPUNGE", "EXPUNGE", true},
		{"a EXPUNGE", "EXPUNGE", "EXPUNGE", false},
		{"a NOOP", "NOOP", "NOOP", false},
	} {
		cmd, err := ParseCommand([]byte(tc.line))
		if err != nil {
			t.Errorf("ParseCommand(%q): %v", tc.line, err)
			continue
		}
		if cmd.Name != tc.name || cmd.Base != tc.base || cmd.UID != tc.uid {
			t.Errorf("ParseCommand(%q) = %q %q UID=%v, want %q %q UID=%v", tc.line, cmd.Name, cmd.Base, cmd.UID, tc.name, tc.base, tc.uid)
		}
	}
	cmd, err := ParseAppendHead([]byte("a UID REPLACE 4 INBOX {3}"))
	if err != nil || cmd.Name != "UID REPLACE" || cmd.Base != "REPLACE" || !cmd.UID {
		t.Errorf("ParseAppendHead(UID REPLACE) = %+v, %v", cmd, err)
	}
	for _, line := range []string{"a UID NOOP", "a UID LOGIN a b", "a UID UID FETCH 1 FLAGS"} {
		if _, err := ParseCommand([]byte(line)); err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("ParseCommand(%q): %v, want an unknown command error", line, err)
		}
	}
	if _, err := ParseCommand([]byte("a UID")); err == nil {
		t.Error(`ParseCommand("a UID") succeeded`)
	}
}

// TestCommandNames: every name CommandNames lists is one ParseCommand knows (it may still
// want arguments, or, for APPEND and REPLACE, ParseAppendHead), with the base name and UID
// flag its spelling says.
func TestCommandNames(t *testing.T) {
	names := CommandNames()
	if len(names) == 0 {
		t.Fatal("no command names")
	}
	for _, name := range names {
		cmd, err := ParseCommand([]byte("a " + name))
		if cmd == nil || cmd.Name != name {
			t.Errorf("ParseCommand(%q) = %+v, %v", "a "+name, cmd, err)
			continue
		}
		if err != nil && strings.Contains(err.Error(), "unknown command") {
			t.Errorf("ParseCommand(%q): %v", "a "+name, err)
		}
		base, uid := strings.CutPrefix(name, "UID ")
		if cmd.Base != base || cmd.UID != uid {
			t.Errorf("ParseCommand(%q): Base %q UID %v, want %q %v", "a "+name, cmd.Base, cmd.UID, base, uid)
		}
	}
}
