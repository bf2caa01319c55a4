package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/internal/testwait"
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

// TestClusterIndexRebuild: in a 3-node cluster whose metadata nodes all keep a search
// index, `strata index rebuild --etcd` rebuilds the account's index on each node, the two
// followers too: each reads its own applied state (metadata.LocalReads), where a
// follower's reads used to be refused NOT_LEADER, so only the leader's index was ever
// built and a rebuild sent to a follower failed.
func TestClusterIndexRebuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	blobDir := t.TempDir()
	etcd := etcdtest.Start(t)
	var nodes []*metaNode
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, newMetaNode(t, id, etcd, slices.Concat(clusterNodeFlags, []string{"--search-index", "--blob-dir", blobDir})...))
	}
	startNodes(t, nodes)
	waitVoters(t, ctx, nodes, "n1", "n2", "n3")
	addClusterAccount(t, etcd)
	fe := startFrontend(t, "A", etcd, "--blob", "fs", "--blob-dir", blobDir)
	var c *imapclient.Client
	testwait.Until(t, time.Minute, func() error {
		var err error
		if c, err = imapclient.DialInsecure(fe.imapAddr, nil); err != nil {
			return err
		}
		if err = c.Login("u@acme.test", "pw").Wait(); err != nil {
			c.Close()
		}
		return err
	})
	t.Cleanup(func() { c.Close() })
	for i := range 3 {
		if _, err := appendMessage(c, "INBOX", testMessage(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(strataBin, append([]string{"index", "rebuild", "u@acme.test", "--etcd", etcd}, adminTLSArgs(t)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("index rebuild --etcd: %v\n%s", err, out)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if !regexp.MustCompile(`u@acme\.test on ` + id + ` +100% .*\(3/3\)`).Match(out) {
			t.Errorf("no progress bar of %s:\n%s", id, out)
		}
	}
	if !strings.Contains(string(out), "rebuilt the search index of 1 account(s) on 3 node(s)") {
		t.Errorf("index rebuild --etcd:\n%s", out)
	}
}
