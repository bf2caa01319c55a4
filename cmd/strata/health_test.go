package main

import (
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
)

// TestHealthCommands: `strata health ready|live ADDR` against a running server's metrics
// listener print the probe's answer and succeed on 200; after the server began to drain,
// ready fails naming the check, and a closed address fails.
func TestHealthCommands(t *testing.T) {
	srv := embeddedtest.Start(t, embedded.Config{MetricsListen: "127.0.0.1:0", BlobGCInterval: -1})
	addr := srv.MetricsAddr()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"health", "ready", addr}, "ok metadata\nok blobstore\n"},
		{[]string{"health", "ready", "http://" + addr + "/"}, "ok metadata\nok blobstore\n"},
		{[]string{"health", "live", addr}, "ok grpc\nok raft\nok imap\n"},
	} {
		out, _, err := runStrata(t, tc.args...)
		if err != nil || out != tc.want {
			t.Errorf("strata %s = %q, %v; want %q", strings.Join(tc.args, " "), out, err, tc.want)
		}
	}
	srv.Probes().Drain()
	out, _, err := runStrata(t, "health", "ready", addr)
	if err == nil || !strings.HasPrefix(out, "fail draining: ") {
		t.Errorf("ready while draining = %q, %v; want a failure naming draining", out, err)
	}
	if out, _, err := runStrata(t, "health", "live", addr); err != nil {
		t.Errorf("live while draining = %q, %v", out, err)
	}
	if _, _, err := runStrata(t, "health", "ready", "127.0.0.1:1"); err == nil {
		t.Error("ready of a closed address succeeded")
	}
}
