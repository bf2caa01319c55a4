package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// failoverKills is how many times TestFailoverLeaderKills SIGKILLs the metadata leader.
const failoverKills = 10

// TestFailoverLeaderKills measures issue 14's failover figure: how long IMAP APPENDs are
// unavailable after the metadata leader is SIGKILLed. Four IMAP clients APPEND through two
// `strata frontend`s (bodies in S3) to a group of three `strata metadata` nodes; the test
// SIGKILLs the leader failoverKills times, each time restarting the killed node once writes
// resumed and waiting until it caught up before the next kill. For each kill it reports when
// a surviving node first said it was the leader and when the first APPEND sent after the kill
// was answered OK, and the p99 over the kills. It asserts no time, only that nothing
// acknowledged was lost: every acknowledged APPEND is in INBOX once under its UID and the
// replicas' digests agree.
func TestFailoverLeaderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("measures failover over 10 leader kills (about a minute)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	etcd, nodes := startVoters(t, ctx)
	addClusterAccount(t, etcd)

	feA, feB := startS3Frontends(t, etcd, "strata-failover")

	l := newLedger()
	stopWriters := make(chan struct{})
	var writers sync.WaitGroup
	for i, fe := range []*frontendProcess{feA, feB, feA, feB} {
		writers.Add(1)
		go func() { defer writers.Done(); imapWriter(i+1, fe.imapAddr, l, stopWriters) }()
	}
	stop := sync.OnceFunc(func() { close(stopWriters); writers.Wait() })
	t.Cleanup(stop)
	time.Sleep(2 * time.Second)

	var elected, unavailable []time.Duration
	var rows []string
	for kill := 1; kill <= failoverKills; kill++ {
		leader := leaderOf(t, ctx, nodes)
		var survivors []*metaNode
		for _, n := range nodes {
			if n != leader {
				survivors = append(survivors, n)
			}
		}
		killedAt := time.Now()
		leader.signal(syscall.SIGKILL)
		electedAt, newLeader := awaitNewLeader(ctx, survivors, 5*time.Millisecond)
		var firstOK time.Time
		for waitUntil := time.Now().Add(60 * time.Second); firstOK.IsZero(); time.Sleep(5 * time.Millisecond) {
			if firstOK = l.firstAckAfter(killedAt); firstOK.IsZero() && time.Now().After(waitUntil) {
				t.Fatalf("kill %d: no APPEND sent after the SIGKILL of leader %s was answered OK within 60s", kill, leader.id)
			}
		}
		e, u := electedAt.Sub(killedAt), firstOK.Sub(killedAt)
		elected, unavailable = append(elected, e), append(unavailable, u)
		rows = append(rows, fmt.Sprintf("kill %2d: leader %s killed; %s leader after %4d ms; APPEND OK after %4d ms",
			kill, leader.id, newLeader, e.Milliseconds(), u.Milliseconds()))

		leader.waitReady(leader.start())
		waitCaughtUp(t, ctx, nodes)
		time.Sleep(time.Second)
	}
	stop()

	waitCaughtUp(t, ctx, nodes)
	compareDigests(t, ctx, nodes)
	got, err := fetchMessageIDs(feA.imapAddr, "INBOX")
	if err != nil {
		t.Fatalf("UID FETCH of INBOX: %v", err)
	}
	l.check(t, got)
	l.mu.Lock()
	if len(l.failures) > 0 {
		t.Errorf("IMAP clients saw %d errors other than NO [UNAVAILABLE] or a disconnect: %v", len(l.failures), l.failures)
	}
	t.Logf("IMAP: %d APPENDs OK, %d outcome unknown, %d NO [UNAVAILABLE] %v, %d disconnects",
		len(l.acked), len(l.unknown), l.unavailable, l.unavailableOps, l.disconnects)
	l.mu.Unlock()
	t.Logf("failover over %d leader SIGKILLs:\n%s\nnew leader seen: p50 %v, p99 %v, max %v\nwrites unavailable: p50 %v, p99 %v, max %v",
		failoverKills, strings.Join(rows, "\n"),
		percentile(elected, 50), percentile(elected, 99), percentile(elected, 100),
		percentile(unavailable, 50), percentile(unavailable, 99), percentile(unavailable, 100))
}

// awaitNewLeader polls nodes every interval until one reports itself the leader and returns
// when it first did and which node; the zero time if ctx ends first.
func awaitNewLeader(ctx context.Context, nodes []*metaNode, interval time.Duration) (time.Time, string) {
	for ctx.Err() == nil {
		for _, n := range nodes {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := n.status(sctx, false)
			cancel()
			if err == nil && st.GetState() == "Leader" {
				return time.Now(), n.id
			}
		}
		time.Sleep(interval)
	}
	return time.Time{}, ""
}

// percentile is the nearest-rank p-th percentile of ds (with 10 samples, p99 is the maximum).
func percentile(ds []time.Duration, p float64) time.Duration {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1].Round(time.Millisecond)
}
