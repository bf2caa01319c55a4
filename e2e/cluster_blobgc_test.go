package e2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/internal/s3test"
	"github.com/strata-mail/strata/internal/testwait"
)

// blobCluster is etcd, versitygw, three `strata metadata` nodes given the frontends' blob
// flags (so the leader collects) and one `strata frontend`, all real processes.
type blobCluster struct {
	etcd   string
	gw     *s3test.Server
	bucket string
	nodes  []*metaNode
	fe     *frontendProcess
}

// startBlobCluster starts a blobCluster whose collector runs every 300ms with the given
// grace period; nodeFlags are added to every metadata node's.
func startBlobCluster(t *testing.T, ctx context.Context, bucket, grace string, nodeFlags ...string) *blobCluster {
	t.Helper()
	bc := &blobCluster{etcd: etcdtest.Start(t), gw: s3test.Start(t, s3test.Options{}), bucket: bucket}
	t.Setenv(s3.EnvAccessKey, bc.gw.AccessKey)
	t.Setenv(s3.EnvSecretKey, bc.gw.SecretKey)
	s3Args := []string{"--blob", "s3", "--s3-endpoint", bc.gw.Endpoint, "--s3-bucket", bucket, "--s3-insecure", "--s3-path-style"}
	flags := slices.Concat(clusterNodeFlags, s3Args, []string{"--blob-gc-interval", "300ms", "--blob-gc-grace", grace}, nodeFlags)
	for _, id := range []string{"n1", "n2", "n3"} {
		bc.nodes = append(bc.nodes, newMetaNode(t, id, bc.etcd, flags...))
	}
	startNodes(t, bc.nodes)
	waitVoters(t, ctx, bc.nodes, "n1", "n2", "n3")
	addClusterAccount(t, bc.etcd)
	bc.fe = startFrontend(t, "A", bc.etcd, s3Args...)
	return bc
}

// object is the file of body's object in the bucket (tenant acme).
func (bc *blobCluster) object(body []byte) string {
	return bc.gw.ObjectPath(bc.bucket, blobstore.Key("acme", sha256.Sum256(body)))
}

func (bc *blobCluster) login(t *testing.T) *imapclient.Client {
	t.Helper()
	var c *imapclient.Client
	testwait.Until(t, 30*time.Second, func() error {
		var err error
		if c, err = imapclient.DialInsecure(bc.fe.imapAddr, nil); err != nil {
			return err
		}
		if err = c.Login("u@acme.test", "pw").Wait(); err != nil {
			c.Close()
			return err
		}
		return nil
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// expungeUIDs sets \Deleted on uids of the selected mailbox and UID EXPUNGEs them.
func expungeUIDs(t *testing.T, c *imapclient.Client, uids []imap.UID) {
	t.Helper()
	set := imap.UIDSetNum(uids...)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatalf("STORE +FLAGS \\Deleted: %v", err)
	}
	if err := c.UIDExpunge(set).Close(); err != nil {
		t.Fatalf("UID EXPUNGE: %v", err)
	}
}

// TestClusterBlobGC: in a 3-node cluster whose metadata nodes have the blob store, the
// leader's collector deletes an expunged message's body from the S3 server once the grace
// period is over, keeps the other message's, and `strata blob gc --etcd` runs a pass on the
// leader.
func TestClusterBlobGC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bc := startBlobCluster(t, ctx, "strata-cluster-gc", "2s")
	c := bc.login(t)
	gone, kept := testMessage(1), testMessage(2)
	goneUID, err := appendMessage(c, "INBOX", gone, nil)
	if err != nil {
		t.Fatal(err)
	}
	keptUID, err := appendMessage(c, "INBOX", kept, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !exists(bc.object(gone)) || !exists(bc.object(kept)) {
		t.Fatal("the appended bodies are not in the bucket")
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	expungeUIDs(t, c, []imap.UID{imap.UID(goneUID)})
	testwait.Until(t, 60*time.Second, func() error {
		if exists(bc.object(gone)) {
			return errors.New("the expunged message's object is still in the bucket")
		}
		return nil
	})
	checkFetch(t, bc.login(t), keptUID, kept)
	if !exists(bc.object(kept)) {
		t.Fatal("the kept message's object was deleted")
	}
	// The pass logs when it ends, after its deletes: the object can be gone a moment
	// before the line is written (seen in a CI run: the check came first by ~0.4 s).
	testwait.Until(t, 30*time.Second, func() error {
		if leader := leaderOf(t, ctx, bc.nodes); !strings.Contains(leader.logs(), "blob gc pass") {
			return fmt.Errorf("leader %s logged no blob gc pass", leader.id)
		}
		return nil
	})

	// `strata blob gc --etcd` finds the leader through etcd; the periodic passes already
	// deleted everything eligible, so this one has nothing left.
	out, err := exec.Command(strataBin, append([]string{"blob", "gc", "--grace", "1ns", "--etcd", bc.etcd}, adminTLSArgs(t)...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "deleted 0 unreferenced bodies") {
		t.Fatalf("strata blob gc --etcd: %v\n%s", err, out)
	}
	// Against a follower named with --server, the NOT_LEADER answer names the leader by
	// its Raft ID, which a static address does not map: the command says so.
	follower := followerOf(t, ctx, bc.nodes)
	out, err = exec.Command(strataBin, append([]string{"blob", "gc", "--grace", "1ns", "--server", follower.grpcAddr, "--timeout", "5s"}, adminTLSArgs(t)...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "metadata leader") {
		t.Fatalf("strata blob gc on follower %s: %v\n%s", follower.id, err, out)
	}
}

// TestClusterBlobGCLeaderKilled SIGKILLs the metadata leader while its collector deletes
// the bodies of 400 expunged messages, while a client APPENDs half of those bodies again
// (dedup appends racing the collector). The new leader finishes the collection; afterwards
// every message in INBOX is served whole by FETCH and its object is in the bucket, and
// the bodies no message references any more are gone.
func TestClusterBlobGCLeaderKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bc := startBlobCluster(t, ctx, "strata-cluster-gc-kill", "1s")
	c := bc.login(t)
	const n = 400
	bodies := make([][]byte, n)
	var uids []imap.UID
	for i := range bodies {
		bodies[i] = testMessage(1000 + i)
		uid, err := appendMessage(c, "INBOX", bodies[i], nil)
		if err != nil {
			t.Fatalf("APPEND %d: %v", i, err)
		}
		uids = append(uids, imap.UID(uid))
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	expungeUIDs(t, c, uids)

	// Re-append the even bodies while the collector runs; a refused APPEND (the frontend
	// retries the blob fences itself) is retried here only on NO [UNAVAILABLE] and breaks.
	var wg sync.WaitGroup
	var reMu sync.Mutex
	reappended := map[int]uint32{}
	var reErrs []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		rc := bc.login(t)
		for i := 0; i < n; i += 2 {
			var uid uint32
			var err error
			for try := 0; try < 50; try++ {
				if uid, err = appendMessage(rc, "INBOX", bodies[i], nil); err == nil || classifyIMAPError(err) == errOther {
					break
				}
				rc.Close()
				time.Sleep(200 * time.Millisecond)
				rc = bc.login(t)
			}
			reMu.Lock()
			if err != nil {
				reErrs = append(reErrs, fmt.Errorf("re-APPEND body %d: %w", i, err))
			} else {
				reappended[i] = uid
			}
			reMu.Unlock()
		}
	}()

	// Kill the leader as soon as one of the odd (never re-appended) bodies is gone.
	leader := leaderOf(t, ctx, bc.nodes)
	testwait.Until(t, 60*time.Second, func() error {
		for i := 1; i < n; i += 2 {
			if !exists(bc.object(bodies[i])) {
				return nil
			}
		}
		return errors.New("the collector deleted nothing yet")
	})
	leader.signal(syscall.SIGKILL)
	remaining := 0
	for i := 1; i < n; i += 2 {
		if exists(bc.object(bodies[i])) {
			remaining++
		}
	}
	t.Logf("SIGKILLed leader %s with %d of %d unreferenced bodies still in the bucket", leader.id, remaining, n/2)
	wg.Wait()
	if len(reErrs) > 0 {
		t.Fatalf("re-APPENDs failed: %v", reErrs)
	}

	// The new leader collects the rest after its handover.
	testwait.Until(t, 90*time.Second, func() error {
		left := 0
		for i := 1; i < n; i += 2 {
			if exists(bc.object(bodies[i])) {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d unreferenced bodies still in the bucket", left)
		}
		return nil
	})
	newLeader := leaderOf(t, ctx, bc.nodes)
	if newLeader == leader || !strings.Contains(newLeader.logs(), "blob gc pass") {
		t.Errorf("new leader %s logged no blob gc pass", newLeader.id)
	}

	// Every message INBOX holds is served whole, and its object is there.
	fc := bc.login(t)
	if _, err := fc.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := fc.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err != nil {
		t.Fatalf("FETCH 1:* BODY.PEEK[]: %v", err)
	}
	byUID := map[uint32][]byte{}
	for _, m := range msgs {
		byUID[uint32(m.UID)] = m.FindBodySection(whole)
	}
	if len(byUID) != len(reappended) {
		t.Errorf("INBOX holds %d messages, want the %d re-appended", len(byUID), len(reappended))
	}
	for i, uid := range reappended {
		if got := byUID[uid]; string(got) != string(bodies[i]) {
			t.Errorf("re-appended body %d (UID %d): FETCH gave %d bytes, want %d", i, uid, len(got), len(bodies[i]))
		}
		if !exists(bc.object(bodies[i])) {
			t.Errorf("re-appended body %d (UID %d): its object %s is gone", i, uid, filepath.Base(bc.object(bodies[i])))
		}
	}
}
