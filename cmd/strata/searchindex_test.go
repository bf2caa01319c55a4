package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestThreadNumbersCommand: `strata index thread-numbers` reaches NumberAccountMessages
// for an account and for every account of a tenant (mailboxes made by this build are
// numbered from the start, so nothing is left to number), and refuses to guess which.
func TestThreadNumbersCommand(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	mustStrata(t, srv, "user", "add", "alice@acme.test", "--password", "pw")
	mustStrata(t, srv, "user", "add", "bob@acme.test", "--password", "pw")
	if out := mustStrata(t, srv, "index", "thread-numbers", "alice@acme.test"); out != "alice@acme.test: 0 entries numbered, every mailbox numbered\n" {
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
