package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/internal/testwait"
)

// noIndexWarning begins the warning of a metadata node that starts without the text-search
// index because it has no blob flags (cmd/strata searchIndexOn).
const noIndexWarning = "no text-search index: it reads message bodies from the frontends' blob store"

// indexedMessage is a message whose body holds "sushi", and no word near "sushy".
func indexedMessage(i int) []byte {
	return []byte(fmt.Sprintf("From: Sender <sender@example.org>\r\nTo: u@acme.test\r\n"+
		"Subject: lunch %d\r\nMessage-ID: <lunch%d@example.org>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nShall we have sushi for lunch?\r\n", i, i))
}

// dialUnauthenticated opens a raw IMAP session to addr and returns it with the
// capabilities of the not authenticated state (CAPABILITY).
func dialUnauthenticated(t *testing.T, addr string) (*rawIMAP, string) {
	t.Helper()
	c := dialGreeted(t, addr)
	rep := c.cmd("CAPABILITY")
	if !rep.ok() || len(rep.untagged) != 1 {
		t.Fatalf("CAPABILITY: %s", rep)
	}
	return c, rep.untagged[0]
}

// searchUIDs answers UID SEARCH crit in the selected mailbox as the untagged line.
func searchUIDs(t *testing.T, c *rawIMAP, crit string) string {
	t.Helper()
	rep := c.cmd("UID SEARCH " + crit)
	if !rep.ok() || len(rep.untagged) != 1 {
		t.Fatalf("UID SEARCH %s: %s", crit, rep)
	}
	return rep.untagged[0]
}

// TestClusterSearchIndexByDefault: metadata nodes given the frontends' blob flags (here
// the shared --blob-dir; TestClusterBlobGC's nodes get --blob s3) and no --search-index
// keep the text-search index. A frontend started without --search-index announces
// SEARCH=FUZZY once a session logged in (the login's answer says the node indexes), not
// before; and a FUZZY BODY of a misspelt word finds the message, which only the index's
// fuzzy answer can (without it FUZZY matches exactly): SEARCH's BODY queries are answered
// from the index.
func TestClusterSearchIndexByDefault(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd := etcdtest.Start(t)
	blobDir := t.TempDir()
	var nodes []*metaNode
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, newMetaNode(t, id, etcd, append(slices.Clone(clusterNodeFlags), "--blob-dir", blobDir)...))
	}
	startNodes(t, nodes)
	waitVoters(t, ctx, nodes, "n1", "n2", "n3")
	for _, n := range nodes {
		if strings.Contains(n.logs(), "no text-search index") {
			t.Errorf("node %s started without the index:\n%s", n.id, tail(n.logs(), 20))
		}
	}
	addClusterAccount(t, etcd)
	bc := &blobCluster{etcd: etcd, nodes: nodes, fe: startFrontend(t, "A", etcd, "--blob-dir", blobDir)}
	c := bc.login(t)
	var uids []uint32
	for i := range 2 {
		uid, err := appendMessage(c, "INBOX", indexedMessage(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	if _, err := appendMessage(c, "INBOX", testMessage(3), nil); err != nil {
		t.Fatal(err)
	}

	raw, caps := dialUnauthenticated(t, bc.fe.imapAddr)
	if strings.Contains(caps, "FUZZY") {
		t.Errorf("CAPABILITY before login %q announces FUZZY", caps)
	}
	login := raw.cmd("LOGIN u@acme.test pw")
	if !login.ok() || !strings.Contains(login.status, " SEARCH=FUZZY") {
		t.Fatalf("LOGIN: %s (want SEARCH=FUZZY in its CAPABILITY)", login)
	}
	if rep := raw.cmd("CAPABILITY"); !strings.Contains(rep.String(), " SEARCH=FUZZY") {
		t.Errorf("CAPABILITY after login: %s", rep)
	}
	if rep := raw.cmd("SELECT INBOX"); !rep.ok() {
		t.Fatalf("SELECT INBOX: %s", rep)
	}
	want := fmt.Sprintf("* SEARCH %d %d", uids[0], uids[1])
	// The index follows the change feed: wait until it holds the messages.
	testwait.Until(t, 60*time.Second, func() error {
		if got := searchUIDs(t, raw, "FUZZY BODY sushy"); got != want {
			return fmt.Errorf("UID SEARCH FUZZY BODY sushy = %q, want %q from the index", got, want)
		}
		return nil
	})
	if got := searchUIDs(t, raw, "BODY sushi"); got != want {
		t.Errorf("UID SEARCH BODY sushi = %q, want %q", got, want)
	}
	if got := searchUIDs(t, raw, "BODY sushy"); got != "* SEARCH" {
		t.Errorf("UID SEARCH BODY sushy = %q, want no match", got)
	}
}

// TestClusterSearchIndexWithoutBlobFlags: metadata nodes without blob flags start as before
// the index was on by default, without it, and each logs a warning saying why and how to
// turn it on; the frontend's sessions do not announce SEARCH=FUZZY, and a FUZZY key matches
// exactly (RFC 6203 3).
func TestClusterSearchIndexWithoutBlobFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd, nodes := startVoters(t, ctx)
	for _, n := range nodes {
		logs := n.logs()
		if !strings.Contains(logs, noIndexWarning) || !strings.Contains(logs, "--blob-dir or --blob s3") {
			t.Errorf("node %s logged no warning about the missing index:\n%s", n.id, tail(logs, 20))
		}
	}
	addClusterAccount(t, etcd)
	fe := startFrontend(t, "A", etcd, "--blob-dir", t.TempDir())
	// The first login waits until the frontend knows the metadata nodes.
	c := (&blobCluster{etcd: etcd, nodes: nodes, fe: fe}).login(t)
	if _, err := appendMessage(c, "INBOX", indexedMessage(0), nil); err != nil {
		t.Fatal(err)
	}
	raw, caps := dialUnauthenticated(t, fe.imapAddr)
	if strings.Contains(caps, "FUZZY") {
		t.Errorf("CAPABILITY before login %q announces FUZZY", caps)
	}
	if login := raw.cmd("LOGIN u@acme.test pw"); !login.ok() || strings.Contains(login.String(), "FUZZY") {
		t.Fatalf("LOGIN: %s (want OK without SEARCH=FUZZY)", login)
	}
	if rep := raw.cmd("CAPABILITY"); strings.Contains(rep.String(), "FUZZY") {
		t.Errorf("CAPABILITY after login: %s", rep)
	}
	if rep := raw.cmd("SELECT INBOX"); !rep.ok() {
		t.Fatalf("SELECT INBOX: %s", rep)
	}
	if got := searchUIDs(t, raw, "FUZZY BODY sushi"); got != "* SEARCH 1" {
		t.Errorf("UID SEARCH FUZZY BODY sushi = %q, want the exact match", got)
	}
	if got := searchUIDs(t, raw, "FUZZY BODY sushy"); got != "* SEARCH" {
		t.Errorf("UID SEARCH FUZZY BODY sushy = %q, want no match without the index", got)
	}
	if got := searchUIDs(t, raw, "BODY sushi"); got != "* SEARCH 1" {
		t.Errorf("UID SEARCH BODY sushi = %q", got)
	}
}
