package workload_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/jepsen/checker"
	"github.com/strata-mail/strata/jepsen/history"
	"github.com/strata-mail/strata/jepsen/workload"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// runAgainstEmbedded runs the workload for d against a whole embedded Strata (IMAP and LMTP)
// with two accounts and returns the history.
func runAgainstEmbedded(t *testing.T, seed int64, d time.Duration) *history.History {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{
		LMTPListen:         "127.0.0.1:0",
		Hostname:           "mx.test",
		Demo:               true,
		AllowPlaintextAuth: true,
		Logger:             slog.New(slog.NewTextHandler(&panicLog{t: t}, nil)),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const second = "second@" + embedded.DemoDomain
	if _, err := srv.Metadata().CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: embedded.NewRequestID(), Email: second, Password: "pw2"}); err != nil {
		t.Fatalf("create account: %v", err)
	}
	rec := history.NewRecorder(seed)
	cfg := workload.Config{
		Seed:      seed,
		IMAPAddrs: []string{srv.IMAPAddr()},
		LMTPAddrs: []string{srv.LMTPAddr()},
		Accounts: []workload.Account{
			{User: embedded.DemoAccount, Password: embedded.DemoPassword, Address: embedded.DemoAccount},
			{User: second, Password: "pw2", Address: second},
		},
		Mailboxes: []string{"INBOX", "Archive", "Work"},
		Clients:   6,
		Duration:  d,
		OpTimeout: 10 * time.Second,
		Recorder:  rec,
	}
	if err := workload.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := workload.FinalReads(ctx, cfg); err != nil {
		t.Fatalf("final reads: %v", err)
	}
	if n := srv.IMAPRecoveredPanics(); n != 0 {
		t.Errorf("%d panics recovered by the IMAP engine", n)
	}
	return rec.History()
}

// TestWorkloadEmbedded: ten seconds of the whole mix against a real server give a history
// with every kind of op, mostly successful, and no anomaly.
func TestWorkloadEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the workload for 10 s")
	}
	h := runAgainstEmbedded(t, 7, 10*time.Second)
	count := map[string]int{}
	ok := map[string]int{}
	for _, op := range h.Ops {
		count[op.Kind]++
		if op.Outcome == history.OK {
			ok[op.Kind]++
		}
	}
	t.Logf("ops by kind: %v; OK: %v", count, ok)
	// The final reads: every mailbox of both accounts listed whole by a process after the
	// workload's six.
	finals := 0
	for _, op := range h.Ops {
		if op.Process >= 6 && op.Kind == history.KindFetch && op.All && op.Outcome == history.OK {
			finals++
		}
	}
	if finals != 2*3 {
		t.Errorf("%d final listings, want 6 (2 accounts x 3 mailboxes)", finals)
	}
	for _, kind := range []string{history.KindConnect, history.KindSelect, history.KindAppend, history.KindDeliver, history.KindStore,
		history.KindFetch, history.KindSearch, history.KindUIDExpunge, history.KindMove, history.KindCopy, history.KindStatus, history.KindNoop} {
		if ok[kind] < 10 {
			t.Errorf("only %d successful %s ops", ok[kind], kind)
		}
	}
	updates := map[string]int{}
	for _, op := range h.Ops {
		for _, u := range op.Updates {
			updates[u.Kind]++
		}
	}
	t.Logf("updates by kind: %v", updates)
	for _, kind := range []string{history.UpdateExists, history.UpdateExpunge, history.UpdateVanished, history.UpdateFetch} {
		if updates[kind] == 0 {
			t.Errorf("no %s update recorded", kind)
		}
	}
	start := time.Now()
	res := checker.Check(h)
	t.Logf("checked %d ops in %v: %v", res.Ops, time.Since(start), res.Checks)
	for _, a := range res.Anomalies {
		t.Errorf("%s: %s", a.Kind, a.Message)
		for _, op := range a.Ops {
			t.Logf("  %+v", op)
		}
	}
	var buf bytes.Buffer
	if err := h.Save(&buf); err != nil {
		t.Fatal(err)
	}
	again, err := history.Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r2 := checker.Check(again); len(r2.Anomalies) != len(res.Anomalies) || r2.Ops != res.Ops {
		t.Fatalf("the saved history checks differently: %d anomalies, %d ops", len(r2.Anomalies), r2.Ops)
	}
}

// TestCheckerCatchesTamperedRead: the checker finds a fault in a real run's history: the
// last listing that shows the session's own acknowledged append loses it, as a frontend
// serving a stale read would, and the checker reports that listing.
func TestCheckerCatchesTamperedRead(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the workload for 3 s")
	}
	h := runAgainstEmbedded(t, 11, 3*time.Second)
	lost := func(res *checker.Result) int {
		n := 0
		for _, a := range res.Anomalies {
			if a.Kind == checker.KindStaleOwnRead || a.Kind == checker.KindLostAck {
				n++
			}
		}
		return n
	}
	before := lost(checker.Check(h))
	acked := map[uint32]history.Op{}
	for _, op := range h.Ops {
		if op.Kind == history.KindAppend && op.Outcome == history.OK && len(op.UIDs) == 1 {
			acked[op.UIDs[0]] = op
		}
	}
	for i := len(h.Ops) - 1; i >= 0; i-- {
		op := &h.Ops[i]
		if op.Kind != history.KindFetch || !op.All || op.Outcome != history.OK || !op.ByUID {
			continue
		}
		j := slices.IndexFunc(op.Messages, func(m history.Message) bool {
			a, ok := acked[m.UID]
			return ok && a.Mailbox == op.Mailbox && a.UIDValidity == op.UIDValidity && a.Complete < op.Invoke && a.Session == op.Session
		})
		if j < 0 {
			continue
		}
		dropped := op.Messages[j]
		op.Messages = slices.Delete(op.Messages, j, j+1)
		for k := j; k < len(op.Messages); k++ {
			op.Messages[k].Seq--
		}
		res := checker.Check(h)
		if lost(res) > before {
			for _, a := range res.Anomalies {
				if a.Kind == checker.KindStaleOwnRead && slices.ContainsFunc(a.Ops, func(o history.Op) bool { return o.ID == op.ID }) {
					t.Logf("caught: %s", a.Message)
					return
				}
			}
		}
		t.Fatalf("dropping UID %d from op %d went unnoticed: %+v", dropped.UID, op.ID, res.Anomalies)
	}
	t.Skip("no listing shows an own acknowledged append to drop")
}

// panicLog passes the server's log lines about recovered panics to the test log.
type panicLog struct {
	t  *testing.T
	mu sync.Mutex
}

func (l *panicLog) Write(p []byte) (int, error) {
	if strings.Contains(strings.ToLower(string(p)), "panic") {
		l.mu.Lock()
		l.t.Log(string(p))
		l.mu.Unlock()
	}
	return len(p), nil
}
