package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/replication/directory"
)

// TestThreadNumbersCommand: `strata index thread-numbers` reaches NumberAccountMessages
// for an account and for every account of a tenant (mailboxes made by this build are
// numbered from the start, so nothing is left to number), and refuses to guess which.
func TestThreadNumbersCommand(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	mustStrata(t, srv, "user", "add", "alice@acme.test", "--password", "pw")
	mustStrata(t, srv, "user", "add", "bob@acme.test", "--password", "pw")
	if out := mustStrata(t, srv, "index", "thread-numbers", "alice@acme.test"); out != "alice@acme.test: 0 entries numbered, 0 fill commands, every mailbox numbered\n" {
		t.Fatalf("one account: %q", out)
	}
	out := mustStrata(t, srv, "index", "thread-numbers", "--tenant", "acme")
	if !strings.Contains(out, "alice@acme.test: 0 entries") || !strings.Contains(out, "bob@acme.test: 0 entries") {
		t.Fatalf("tenant: %q", out)
	}
	if out, err := strata(t, srv, "index", "thread-numbers"); err == nil || !strings.Contains(out+err.Error(), "name one EMAIL or --tenant T") {
		t.Fatalf("no account: %q, %v", out, err)
	}
}

// TestIndexRebuildEveryNode: with --etcd, `strata index rebuild` rebuilds on every
// metadata node registered there, each dialed on its own, since each keeps its own index
// (searchindex, "Where it runs"): here three real servers, each its own metadata node
// whose copy of the account holds a different number of messages, so each progress bar
// shows the node that drew it. A node without an index is skipped and named.
func TestIndexRebuildEveryNode(t *testing.T) {
	etcd := etcdtest.Start(t)
	client, err := directory.Dial(etcd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() }) // after the registrations' Close (cleanups run last first)
	dir := directory.New(client, nil)
	for i, id := range []string{"n1", "n2", "n3"} {
		srv := startAdminServerWith(t, func(cfg *embedded.Config) { cfg.DisableSearchIndex = id == "n3" })
		mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
		mustStrata(t, srv, "user", "add", "alice@acme.test", "--password", "pw")
		c, err := imapclient.DialInsecure(srv.IMAPAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("alice@acme.test", "pw").Wait(); err != nil {
			t.Fatal(err)
		}
		for range i + 1 {
			msg := "Subject: hello\r\n\r\nzeppelin\r\n"
			cmd := c.Append("INBOX", int64(len(msg)), nil)
			io.WriteString(cmd, msg)
			cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
		reg, err := dir.Register(t.Context(), directory.NodeInfo{ID: id, GRPCAddr: srv.GRPCAddr()}, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { reg.Close(context.Background()) })
	}
	stdout, stderr, err := runStrataIn(t, "", "index", "rebuild", "alice@acme.test", "--etcd", etcd, "--insecure-plaintext-cluster")
	if err != nil {
		t.Fatalf("index rebuild --etcd: %v\n%s%s", err, stdout, stderr)
	}
	for _, bar := range []string{`alice@acme\.test on n1 +100% .*\(1/1\)`, `alice@acme\.test on n2 +100% .*\(2/2\)`} {
		if !regexp.MustCompile(bar).MatchString(stderr) {
			t.Errorf("no progress bar %s in:\n%s", bar, stderr)
		}
	}
	if stdout != "n3 keeps no search index: skipped\nrebuilt the search index of 1 account(s) on 2 node(s)\n" {
		t.Errorf("index rebuild --etcd: %q", stdout)
	}
}

// TestMetadataSearchIndexDefault: `strata metadata` keeps the index by default when it has
// the blob flags; without them it starts without the index and warns how to turn it on,
// refuses an explicit --search-index, and --search-index=false is off either way.
func TestMetadataSearchIndexDefault(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		haveBlobs bool
		on        bool
		err, warn string
	}{
		{haveBlobs: true, on: true},
		{warn: "give the frontends' --blob-dir or --blob s3"},
		{args: []string{"--search-index"}, haveBlobs: true, on: true},
		{args: []string{"--search-index=true"}, err: "--search-index reads the frontends' bodies"},
		{args: []string{"--search-index=false"}, haveBlobs: true},
		{args: []string{"--search-index=false"}},
	} {
		f := newMetadataCommand().Flags()
		if err := f.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		on, err := searchIndexOn(f, tc.haveBlobs, slog.New(slog.NewTextHandler(&logs, nil)))
		if on != tc.on || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q with blobs %v: on %v, err %v", tc.args, tc.haveBlobs, on, err)
		}
		if warned := strings.Contains(logs.String(), "level=WARN"); warned != (tc.warn != "") || !strings.Contains(logs.String(), tc.warn) {
			t.Errorf("%q with blobs %v logged %q", tc.args, tc.haveBlobs, logs.String())
		}
	}
}
