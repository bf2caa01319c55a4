package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/internal/testwait"
)

// appendAck is an APPEND answered OK, with when the OK arrived.
type appendAck struct {
	body    []byte
	ackedAt time.Time
}

// appendLoad APPENDs distinct messages through addr as u@acme.test from several clients
// until stop is closed, recording every acknowledged one by Message-ID.
type appendLoad struct {
	mu       sync.Mutex
	acked    map[string]appendAck
	failures []error
	wg       sync.WaitGroup
}

func startAppendLoad(t *testing.T, login func(*testing.T) *imapclient.Client, clients int, stop <-chan struct{}) *appendLoad {
	l := &appendLoad{acked: map[string]appendAck{}}
	for w := range clients {
		c := login(t)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("<w%d-%d@backup.test>", w, i)
				body := []byte(fmt.Sprintf("From: w%d@acme.test\r\nTo: u@acme.test\r\nSubject: load %d of writer %d\r\nMessage-ID: %s\r\n\r\nBody %d of writer %d, %s.\r\n",
					w, i, w, id, i, w, bytes.Repeat([]byte("x"), 200+i%300)))
				if _, err := appendMessage(c, "INBOX", body, nil); err != nil {
					l.mu.Lock()
					l.failures = append(l.failures, fmt.Errorf("APPEND %s: %w", id, err))
					l.mu.Unlock()
					return
				}
				l.mu.Lock()
				l.acked[id] = appendAck{body: body, ackedAt: time.Now()}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// ackedBefore returns the messages acknowledged before t0.
func (l *appendLoad) ackedBefore(t0 time.Time) map[string][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]byte{}
	for id, m := range l.acked {
		if m.ackedAt.Before(t0) {
			out[id] = m.body
		}
	}
	return out
}

// fetchAllBodies returns every message of INBOX by Message-ID.
func fetchAllBodies(t *testing.T, c *imapclient.Client) map[string][]byte {
	t.Helper()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err != nil {
		t.Fatalf("FETCH 1:* BODY.PEEK[]: %v", err)
	}
	out := map[string][]byte{}
	for _, m := range msgs {
		body := m.FindBodySection(whole)
		out[parseHeaderField(body, "Message-ID")] = body
	}
	return out
}

var backupLine = regexp.MustCompile(`backup (\S+) in \S+: (\d+) messages, (\d+) bodies \((\d+) bytes, (\d+) new\)`)

// runBackup runs `strata backup` with args and returns the backup's ID, bodies and new bodies.
func runBackup(t *testing.T, args ...string) (id string, bodies, copied int) {
	t.Helper()
	out, err := exec.Command(strataBin, append([]string{"backup"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("strata backup: %v\n%s", err, out)
	}
	m := backupLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("strata backup printed no summary:\n%s", out)
	}
	bodies, _ = strconv.Atoi(string(m[3]))
	copied, _ = strconv.Atoi(string(m[5]))
	t.Logf("strata backup:\n%s", out)
	return string(m[1]), bodies, copied
}

// TestBackupRestoreUnderLoad backs up a 3-node cluster (S3 bodies) while clients APPEND
// through a frontend, restores the backup into a new `strata serve` data directory, and
// finds there, byte for byte through IMAP FETCH, every message whose APPEND was answered
// OK before the backup started. A second backup into the same directory copies only the
// new bodies; a third goes to another bucket of the S3 service.
func TestBackupRestoreUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bc := startBlobCluster(t, ctx, "strata-backup-src", "1h")
	s3Args := []string{"--blob", "s3", "--s3-endpoint", bc.gw.Endpoint, "--s3-bucket", bc.bucket, "--s3-insecure", "--s3-path-style"}
	admin := append([]string{"--etcd", bc.etcd}, adminTLSArgs(t)...)

	stop := make(chan struct{})
	load := startAppendLoad(t, bc.login, 4, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	for len(load.ackedBefore(time.Now())) < 200 {
		time.Sleep(50 * time.Millisecond)
	}
	dir := t.TempDir()
	started := time.Now()
	id, bodies, copied := runBackup(t, slices.Concat([]string{"--to", dir}, admin, s3Args)...)
	want := load.ackedBefore(started)
	duringBackup := len(load.ackedBefore(time.Now())) - len(want)
	close(stop)
	load.wg.Wait()
	if len(load.failures) > 0 {
		t.Fatalf("APPENDs failed: %v", load.failures)
	}
	t.Logf("backup %s: %d messages acknowledged before it started, %d during it; %d bodies, %d copied", id, len(want), duringBackup, bodies, copied)
	if bodies < len(want) || copied != bodies {
		t.Errorf("first backup: %d bodies, %d copied; want at least %d, all copied", bodies, copied, len(want))
	}
	if _, err := os.Stat(filepath.Join(dir, id, "manifest.json")); err != nil {
		t.Fatal(err)
	}

	// A second backup of the same installation copies only what the first lacks.
	_, bodies2, copied2 := runBackup(t, slices.Concat([]string{"--to", dir}, admin, s3Args)...)
	if bodies2 < bodies || copied2 != bodies2-bodies {
		t.Errorf("second backup: %d bodies, %d copied; want the %d not in the first (%d)", bodies2, copied2, bodies2-bodies, bodies)
	}
	// To another bucket of the same S3 service.
	s3ID, _, _ := runBackup(t, slices.Concat([]string{"--to", "s3://strata-backup-dst/nightly"}, admin, s3Args)...)
	if _, err := os.Stat(bc.gw.ObjectPath("strata-backup-dst", "nightly/"+s3ID+"/manifest.json")); err != nil {
		t.Errorf("the s3:// backup's manifest: %v", err)
	}

	// Restore the first backup into a new `strata serve` data directory.
	data := t.TempDir()
	out, err := exec.Command(strataBin, "restore", "--from", dir, "--backup", id, "--data", data).CombinedOutput()
	if err != nil {
		t.Fatalf("strata restore: %v\n%s", err, out)
	}
	t.Logf("strata restore:\n%s", out)
	srv := startServe(t, data)
	c, err := imapclient.DialInsecure(srv.imapAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("u@acme.test", "pw").Wait(); err != nil {
		t.Fatalf("LOGIN to the restored server: %v", err)
	}
	got := fetchAllBodies(t, c)
	missing := 0
	for msgID, body := range want {
		if g, ok := got[msgID]; !ok || !bytes.Equal(g, body) {
			if missing++; missing <= 5 {
				t.Errorf("message %s acknowledged before the backup: restored %d bytes (present %v), want %d", msgID, len(g), ok, len(body))
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d messages acknowledged before the backup are missing or differ after the restore", missing, len(want))
	}
	t.Logf("restored server holds %d messages; all %d acknowledged before the backup are there byte for byte", len(got), len(want))

	// Restore the s3:// backup (taken after the load stopped: it holds every acknowledged
	// message) as the first node of a new cluster, with its own etcd and a new bucket for
	// the bodies; two new nodes join it and a frontend serves the mail.
	etcd2 := etcdtest.Start(t)
	r1 := newMetaNode(t, "r1", etcd2, clusterNodeFlags...)
	restored := []string{"--blob", "s3", "--s3-endpoint", bc.gw.Endpoint, "--s3-bucket", "strata-restored", "--s3-insecure", "--s3-path-style"}
	out, err = exec.Command(strataBin, slices.Concat([]string{"restore", "--from", "s3://strata-backup-dst/nightly", "--data", r1.dataDir,
		"--for", "metadata", "--node-id", "r1", "--raft-advertise", r1.raftAddr}, restored)...).CombinedOutput()
	if err != nil {
		t.Fatalf("strata restore --for metadata: %v\n%s", err, out)
	}
	t.Logf("strata restore --for metadata:\n%s", out)
	startNodes(t, []*metaNode{r1})
	joiners := []*metaNode{newMetaNode(t, "r2", etcd2, clusterNodeFlags...), newMetaNode(t, "r3", etcd2, clusterNodeFlags...)}
	startNodes(t, joiners)
	waitVoters(t, ctx, append(joiners, r1), "r1", "r2", "r3")
	fe := startFrontend(t, "R", etcd2, restored...)
	var rc *imapclient.Client
	testwait.Until(t, 30*time.Second, func() error {
		var err error
		if rc, err = imapclient.DialInsecure(fe.imapAddr, nil); err != nil {
			return err
		}
		if err = rc.Login("u@acme.test", "pw").Wait(); err != nil {
			rc.Close()
		}
		return err
	})
	defer rc.Close()
	all := load.ackedBefore(time.Now())
	got = fetchAllBodies(t, rc)
	for msgID, body := range all {
		if !bytes.Equal(got[msgID], body) {
			t.Fatalf("restored cluster: message %s: %d bytes, want %d", msgID, len(got[msgID]), len(body))
		}
	}
	t.Logf("restored cluster (3 voters) serves all %d acknowledged messages byte for byte", len(all))
}
