package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestIndexRebuild drives `strata index rebuild` of the built binary against a running
// `strata serve`: one account, every account of a tenant, and an unknown account, which
// fails with a message and a non-zero exit. Each rebuild draws its progress bar, and the
// index answers afterwards: the server runs with --max-body-scan 1, so a one-word SEARCH
// BODY over three messages answers only from the index's words (a scan of the bodies
// would be refused NO [LIMIT]).
func TestIndexRebuild(t *testing.T) {
	srv := startServe(t, t.TempDir(), "--max-body-scan", "1")
	srv.mustAdmin(t, "tenant", "add", "acme", "--domains", "acme.test")
	accounts := []string{"alice@acme.test", "bob@acme.test"}
	sessions := map[string]*imapclient.Client{}
	for _, account := range accounts {
		srv.mustAdmin(t, "user", "add", account, "--password", "pw")
		c, err := imapclient.DialInsecure(srv.imapAddr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login(account, "pw").Wait(); err != nil {
			t.Fatalf("login %s: %v", account, err)
		}
		for i := range 3 {
			body := []byte(fmt.Sprintf("From: a@acme.test\r\nTo: %s\r\nSubject: note %d\r\nMessage-ID: <%d.%s>\r\n\r\nword%d and zeppelin\r\n", account, i, i, account, i))
			if _, err := appendMessage(c, "INBOX", body, nil); err != nil {
				t.Fatalf("append to %s: %v", account, err)
			}
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		sessions[account] = c
	}
	// searchable checks that the index answers the account's one-word searches.
	searchable := func(account string) {
		t.Helper()
		for word, want := range map[string]string{"zeppelin": "1:3", "word1": "2"} {
			data, err := sessions[account].UIDSearch(&imap.SearchCriteria{Body: []string{word}}, nil).Wait()
			if err != nil {
				t.Fatalf("%s: UID SEARCH BODY %s: %v", account, word, err)
			}
			if got := data.AllUIDs(); imap.UIDSetNum(got...).String() != want {
				t.Errorf("%s: UID SEARCH BODY %s = %v, want %s", account, word, got, want)
			}
		}
	}
	progress := regexp.MustCompile(`alice@acme\.test +100% .*\(3/3\)`)

	out := srv.mustAdmin(t, "index", "rebuild", "alice@acme.test")
	if !progress.MatchString(out) || !strings.Contains(out, "rebuilt the search index of 1 account(s)") {
		t.Errorf("index rebuild alice@acme.test:\n%s", out)
	}
	searchable("alice@acme.test")

	out = srv.mustAdmin(t, "index", "rebuild", "--tenant", "acme")
	if !progress.MatchString(out) || !regexp.MustCompile(`bob@acme\.test +100% .*\(3/3\)`).MatchString(out) ||
		!strings.Contains(out, "rebuilt the search index of 2 account(s)") {
		t.Errorf("index rebuild --tenant acme:\n%s", out)
	}
	for _, account := range accounts {
		searchable(account)
	}

	out, err := srv.admin("index", "rebuild", "nobody@acme.test")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(out, `"nobody@acme.test" not found`) || strings.Contains(out, "rebuilt") {
		t.Errorf("index rebuild of an unknown account: %v\n%s", err, out)
	}
	if out, err := srv.admin("index", "rebuild"); err == nil || !strings.Contains(out, "name one EMAIL or --tenant T") {
		t.Errorf("index rebuild of no account: %v\n%s", err, out)
	}
}
