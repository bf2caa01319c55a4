package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestSystem is issue 5's acceptance test of the whole system as real processes: etcd,
// versitygw, three `strata metadata` nodes and two `strata frontend`s storing bodies in S3.
// IMAP clients APPEND, STORE and EXPUNGE through both frontends while the test SIGKILLs the
// metadata leader, SIGSTOPs a follower, restarts the killed node, and removes a voter and
// adds a new one; a client in IDLE on frontend A must see the APPENDs made through frontend
// B throughout. Afterwards every acknowledged APPEND is in INBOX exactly once under its UID,
// UIDs ascend and were never handed out twice, HIGHESTMODSEQ never decreased, every
// replica's FSM digest is the same, and the clients saw no error but NO [UNAVAILABLE] and
// dropped connections.
func TestSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	etcd, nodes := startVoters(t, ctx)

	// The tenant and the account, made with the admin commands, which find the metadata
	// nodes in etcd and follow NOT_LEADER to the leader.
	addClusterAccount(t, etcd)

	feA, feB := startS3Frontends(t, etcd, "strata-system")

	// Probe is appended to only through frontend B; the IDLE client on A counts its EXISTS.
	l := newLedger()
	testwait.Until(t, 30*time.Second, func() error {
		c, err := imapclient.DialInsecure(feB.imapAddr, nil)
		if err == nil {
			if err = c.Login("u@acme.test", "pw").Wait(); err == nil {
				err = c.Create("Probe", nil).Wait()
			}
			c.Close()
		}
		if err != nil {
			return fmt.Errorf("CREATE Probe through frontend B: %w", err)
		}
		return nil
	})
	watcher := newIdleWatcher(feA.imapAddr, "Probe", l)
	stopAll := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); watcher.run(stopAll) }()

	probes := 0
	var probeLatencies, probeRoundTrips []time.Duration
	probe := func(when string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		var sent time.Time
		for {
			sent = time.Now()
			c, _, err := dialSystem(feB.imapAddr, "INBOX", nil)
			if err == nil {
				_, err = appendMessage(c, "Probe", systemMessage(fmt.Sprintf("<probe-%d@strata.test>", probes+1)), nil)
				c.Close()
			}
			if err == nil {
				break
			}
			if l.noteError("prober", "APPEND Probe", err); time.Now().After(deadline) {
				t.Fatalf("probe APPEND through frontend B %s never succeeded: %v", when, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		probes++
		okAt := time.Now()
		seenAt, ok := watcher.waitExists(uint32(probes), 60*time.Second)
		if !ok {
			t.Fatalf("the IDLE client on frontend A did not see probe APPEND %d through frontend B (%s) within 60s", probes, when)
		}
		probeLatencies = append(probeLatencies, seenAt.Sub(okAt))
		probeRoundTrips = append(probeRoundTrips, seenAt.Sub(sent))
	}

	monitor := &modseqMonitor{}
	lc := newLeaderClient(t, nodes...)
	wg.Add(1)
	go func() {
		defer wg.Done()
		monitor.sampleUntil(stopAll, func(ctx context.Context) (uint64, uint32, error) {
			var mb *metadatapb.Mailbox
			err := lc.do(ctx, func(ctx context.Context, c metadatapb.MetadataClient) error {
				var err error
				mb, err = c.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: "u@acme.test", Name: "INBOX"})
				return err
			})
			return mb.GetHighestModseq(), mb.GetUidNext(), err
		})
	}()

	// Four writers, two on each frontend.
	stopWriters := make(chan struct{})
	var writers sync.WaitGroup
	for i, fe := range []*frontendProcess{feA, feB, feA, feB} {
		writers.Add(1)
		go func() { defer writers.Done(); imapWriter(i+1, fe.imapAddr, l, stopWriters) }()
	}
	// Stops the clients on every path out of the test, before the processes and connections
	// they use are cleaned up (cleanups run last registered first).
	stopClients := sync.OnceFunc(func() {
		close(stopWriters)
		writers.Wait()
		close(stopAll)
		wg.Wait()
	})
	t.Cleanup(stopClients)
	time.Sleep(3 * time.Second)
	probe("before the faults")

	// SIGKILL the leader: how long until an APPEND sent after the kill is answered OK?
	leader := leaderOf(t, ctx, nodes)
	killedAt := time.Now()
	leader.signal(syscall.SIGKILL)
	var firstOK time.Time
	for waitUntil := time.Now().Add(60 * time.Second); firstOK.IsZero(); time.Sleep(5 * time.Millisecond) {
		if firstOK = l.firstAckAfter(killedAt); firstOK.IsZero() && time.Now().After(waitUntil) {
			t.Fatal("no APPEND sent after the leader's SIGKILL was answered OK within 60s")
		}
	}
	unavailableFor := firstOK.Sub(killedAt)
	t.Logf("IMAP APPEND unavailable after SIGKILL of leader %s: %v", leader.id, unavailableFor.Round(time.Millisecond))
	probe("after the leader change")
	time.Sleep(2 * time.Second)
	leader.waitReady(leader.start())
	waitCaughtUp(t, ctx, nodes)

	// SIGSTOP a follower for 3s.
	follower := followerOf(t, ctx, nodes)
	follower.signal(syscall.SIGSTOP)
	time.Sleep(3 * time.Second)
	follower.signal(syscall.SIGCONT)
	waitCaughtUp(t, ctx, nodes)

	// Remove a voter with `strata cluster remove`, then a fresh node joins in its place.
	removed := followerOf(t, ctx, nodes)
	if out, err := exec.Command(strataBin, append([]string{"cluster", "remove", removed.id, "--etcd", etcd}, adminTLSArgs(t)...)...).CombinedOutput(); err != nil {
		t.Fatalf("strata cluster remove %s: %v\n%s", removed.id, err, out)
	}
	removed.signal(syscall.SIGTERM)
	var rest []*metaNode
	var ids []string
	for _, n := range nodes {
		if n != removed {
			rest, ids = append(rest, n), append(ids, n.id)
		}
	}
	waitVoters(t, ctx, rest, ids...)
	n4 := newMetaNode(t, "n4", etcd, clusterNodeFlags...)
	t.Cleanup(func() {
		n4.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("node n4 log:\n%s", tail(n4.logs(), 40))
		}
	})
	n4.waitReady(n4.start())
	lc.add(t, n4)
	nodes = append(rest, n4)
	waitVoters(t, ctx, nodes, append(ids, "n4")...)
	probe("after the membership change")

	stopClients()

	// Every replica holds the same state.
	waitCaughtUp(t, ctx, nodes)
	compareDigests(t, ctx, nodes)
	if out, err := exec.Command(strataBin, append([]string{"cluster", "status", "--etcd", etcd, "--digest"}, adminTLSArgs(t)...)...).CombinedOutput(); err != nil {
		t.Errorf("strata cluster status --digest: %v\n%s", err, out)
	} else {
		t.Logf("strata cluster status --digest:\n%s", out)
	}

	// No client error but NO [UNAVAILABLE] and dropped connections.
	l.mu.Lock()
	if len(l.failures) > 0 {
		t.Errorf("IMAP clients saw %d errors other than NO [UNAVAILABLE] or a disconnect: %v", len(l.failures), l.failures)
	}
	watcher.mu.Lock()
	t.Logf("IMAP: %d APPENDs OK, %d outcome unknown, %d STOREs of \\Flagged, %d UID EXPUNGEs OK; %d NO [UNAVAILABLE], "+
		"%d disconnects; IDLE watcher reconnected %d times; "+
		"EXISTS on A after APPEND OK on B: %v (negative: before the OK), after the probe's connect to B: %v",
		len(l.acked), len(l.unknown), l.stores, len(l.expunged), l.unavailable, l.disconnects, watcher.reconnects, probeLatencies, probeRoundTrips)
	watcher.mu.Unlock()
	l.mu.Unlock()

	got, err := fetchMessageIDs(feA.imapAddr, "INBOX")
	if err != nil {
		t.Fatalf("UID FETCH of INBOX: %v", err)
	}
	l.check(t, got)

	// HIGHESTMODSEQ and UIDNEXT never went down (CONDSTORE is not offered over IMAP, so they
	// are read from the metadata group), and no message carries a MODSEQ above it.
	monitor.mu.Lock()
	defer monitor.mu.Unlock()
	if len(monitor.violations) > 0 {
		t.Errorf("mailbox counters decreased: %v", monitor.violations)
	}
	var maxModseq uint64
	var final *metadatapb.Mailbox
	err = lc.do(ctx, func(ctx context.Context, c metadatapb.MetadataClient) error {
		var err error
		if final, err = c.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: "u@acme.test", Name: "INBOX"}); err != nil {
			return err
		}
		stream, err := c.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{Account: "u@acme.test", MailboxId: final.GetId(),
			Uids: []*metadatapb.UidRange{{First: 1}}})
		if err != nil {
			return err
		}
		maxModseq = 0
		for {
			m, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			maxModseq = max(maxModseq, m.GetModseq())
		}
	})
	if err != nil {
		t.Fatalf("read INBOX from the metadata group: %v", err)
	}
	if final.GetHighestModseq() < monitor.highest || maxModseq > final.GetHighestModseq() {
		t.Errorf("final HIGHESTMODSEQ %d: sampled up to %d, a message has MODSEQ %d", final.GetHighestModseq(), monitor.highest, maxModseq)
	}
	t.Logf("%d messages in INBOX, UIDs ascending; HIGHESTMODSEQ sampled %d times, never decreased, final %d",
		len(got.uids), monitor.samples, final.GetHighestModseq())
}
