package sieve

import (
	"context"
	"strings"
	"testing"
)

func mustCompile(t *testing.T, name, src string) *Program {
	t.Helper()
	p, err := Compile(name, []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunner: before, personal and after scripts share one result and the
// imap4flags internal variable; the chain stops once a script no longer
// keeps the message (the rules are checked against sieve-test -s by the
// chain/* cases of the differential corpus).
func TestRunner(t *testing.T) {
	spamBefore := mustCompile(t, "spam", `require "fileinto"; if header :is "x-spam" "yes" { fileinto "Junk"; }`)
	flagBefore := mustCompile(t, "flag", `require "imap4flags"; addflag "$Seen-By-Site"; stop;`)
	personal := mustCompile(t, "main", `require "fileinto"; if header :contains "subject" "hello" { fileinto "Hello"; }`)
	keepPersonal := mustCompile(t, "keepit", `keep;`)
	afterCopy := mustCompile(t, "after2", `require ["fileinto", "copy"]; fileinto :copy "Archive";`)
	filePersonal := mustCompile(t, "lists", `require "fileinto"; fileinto "Lists";`)
	keepFlags := mustCompile(t, "keepflags", `require "imap4flags"; keep :flags "\\Seen";`)
	flagPersonal := mustCompile(t, "flagit", `require "imap4flags"; addflag "\\Flagged";`)
	fileInbox := mustCompile(t, "inbox", `require "fileinto"; fileinto "INBOX";`)
	keepAndFile := mustCompile(t, "keepfile", `require "fileinto"; keep; fileinto "Junk";`)
	bad := mustCompile(t, "bad", `redirect "a@x.org"; redirect "b@x.org"; redirect "c@x.org"; redirect "d@x.org"; redirect "e@x.org";`)
	cases := []struct {
		name string
		rn   Runner
		msg  string
		want []string
	}{
		{"no scripts keeps", Runner{}, "", []string{"implicit-keep"}},
		{"before files away, personal skipped", Runner{Before: []*Program{spamBefore}, Personal: personal}, "", []string{"fileinto Junk"}},
		{"before keeps, personal runs", Runner{Before: []*Program{spamBefore}, Personal: personal}, "Subject: hello\r\n\r\nx\r\n", []string{"fileinto Hello"}},
		{"stop in before ends only that script, its flags carry over", Runner{Before: []*Program{flagBefore}, Personal: personal}, "Subject: hello\r\n\r\nx\r\n", []string{"fileinto Hello flags=$seen-by-site"}},
		{"after runs while kept, the keep defers", Runner{Personal: keepPersonal, After: []*Program{afterCopy}}, "", []string{"fileinto Archive", "implicit-keep"}},
		{"deferred keep dropped when filed", Runner{Before: []*Program{keepPersonal}, Personal: filePersonal}, "", []string{"fileinto Lists"}},
		{"deferred keep gives its :flags (as sieve-test -e stores; its print differs)", Runner{Before: []*Program{keepFlags}, Personal: flagPersonal}, "", []string{"implicit-keep flags=\\seen"}},
		{"deferred keep without :flags takes the variable's", Runner{Before: []*Program{keepPersonal}, Personal: flagPersonal}, "", []string{"implicit-keep flags=\\flagged"}},
		{"last explicit keep wins", Runner{Before: []*Program{keepFlags}, Personal: keepPersonal}, "", []string{"keep"}},
		{"fileinto INBOX ends the chain", Runner{Before: []*Program{fileInbox}, Personal: filePersonal}, "", []string{"keep"}},
		{"keep and fileinto go on", Runner{Before: []*Program{keepAndFile}, Personal: mustCompile(t, "empty", ``)}, "", []string{"fileinto Junk", "implicit-keep"}},
		{"after skipped once filed", Runner{Personal: personal, After: []*Program{afterCopy}}, "Subject: hello\r\n\r\nx\r\n", []string{"fileinto Hello"}},
		{"after with implicit keep", Runner{Before: []*Program{flagBefore}, After: []*Program{afterCopy}}, "Subject: x\r\n\r\nx\r\n", []string{"fileinto Archive flags=$seen-by-site", "implicit-keep flags=$seen-by-site"}},
		{"error in personal keeps before's actions", Runner{Before: []*Program{afterCopy}, Personal: bad}, "", []string{"error"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rn := c.rn
			res, err := rn.Execute(context.Background(), testInput(t, c.msg))
			if got := strings.Join(res.Outcome(), "|"); got != strings.Join(c.want, "|") {
				t.Fatalf("got %q, want %q (err %v)", got, c.want, err)
			}
		})
	}
	rn := Runner{Before: []*Program{afterCopy}, Personal: bad}
	res, err := rn.Execute(context.Background(), testInput(t, ""))
	if err == nil || !res.ImplicitKeep || len(res.Actions) != 1 || res.Actions[0].Mailbox != "Archive" {
		t.Fatalf("%+v %v", res, err)
	}
}
