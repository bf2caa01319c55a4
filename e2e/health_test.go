package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/internal/etcdtest"
	"github.com/strata-mail/strata/internal/s3test"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/replication/directory"
)

// probeClient asks the probes. Its timeout is a failsafe against a probe that hangs (which
// the test then reports as a failure), not a speed assertion.
var probeClient = &http.Client{Timeout: 5 * time.Second}

// probe GETs path (/healthz, /readyz) from a process's --metrics-listen address and returns
// the status code and the body.
func probe(addr, path string) (int, string, error) {
	resp, err := probeClient.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitProbe polls path until it answers code with a body that matches want.
func waitProbe(t testing.TB, addr, path string, code int, want *regexp.Regexp) {
	t.Helper()
	testwait.Until(t, 60*time.Second, func() error {
		got, body, err := probe(addr, path)
		if err != nil {
			return err
		}
		if got != code || !want.MatchString(body) {
			return fmt.Errorf("%s answered %d %q, want %d matching %s", path, got, body, code, want)
		}
		return nil
	})
}

// TestFrontendReadiness runs a `strata frontend` with its bodies in S3 (versitygw, behind a
// proxy that can hang) before any metadata node exists: alive, not ready (no metadata
// leader). Once a group of three is up it is ready; while S3 hangs, and while it is down,
// not ready, naming the blob store, and each probe answers (within the client's failsafe:
// the check is bounded); ready again when S3 is back.
func TestFrontendReadiness(t *testing.T) {
	etcd := etcdtest.Start(t)
	gw := s3test.Start(t, s3test.Options{})
	proxy := s3test.NewProxy(t, gw.Endpoint)
	t.Setenv(s3.EnvAccessKey, gw.AccessKey)
	t.Setenv(s3.EnvSecretKey, gw.SecretKey)
	metrics := freeAddr(t)
	startFrontend(t, "A", etcd, "--blob", "s3", "--s3-endpoint", proxy.Addr, "--s3-bucket", "health",
		"--s3-insecure", "--s3-path-style", "--metrics-listen", metrics)

	waitProbe(t, metrics, "/healthz", 200, regexp.MustCompile(`^ok imap\nok lmtp\nok managesieve\n$`))
	waitProbe(t, metrics, "/readyz", 503, regexp.MustCompile(`^fail metadata-leader: no metadata leader answers: .*\nok blobstore\n$`))

	nodes := []*metaNode{newMetaNode(t, "n1", etcd, clusterNodeFlags...), newMetaNode(t, "n2", etcd, clusterNodeFlags...), newMetaNode(t, "n3", etcd, clusterNodeFlags...)}
	startNodes(t, nodes)
	ready := regexp.MustCompile(`^ok metadata-leader\nok blobstore\n$`)
	waitProbe(t, metrics, "/readyz", 200, ready)

	blobDown := regexp.MustCompile(`^ok metadata-leader\nfail blobstore: .+\n$`)
	proxy.Stall()
	waitProbe(t, metrics, "/readyz", 503, blobDown)
	// Probes go on answering while S3 hangs: each check is bounded, and a check still
	// stuck is not started again.
	for range 3 {
		if code, body, err := probe(metrics, "/readyz"); err != nil || code != 503 {
			t.Fatalf("/readyz while S3 hangs: %d %q %v", code, body, err)
		}
	}
	proxy.Resume()
	waitProbe(t, metrics, "/readyz", 200, ready)

	gw.Stop()
	waitProbe(t, metrics, "/readyz", 503, blobDown)
	gw.Start()
	waitProbe(t, metrics, "/readyz", 200, ready)
}

// TestMetadataReadiness: a metadata node that cannot join (the group's only member, its
// leader, is frozen) is alive but not ready, not being a member; once the leader runs
// again the node joins, catches up with the leader's commit index and is ready.
func TestMetadataReadiness(t *testing.T) {
	etcd := etcdtest.Start(t)
	m1, m2 := freeAddr(t), freeAddr(t)
	n1 := newMetaNode(t, "n1", etcd, append(clusterNodeFlags, "--metrics-listen", m1)...)
	startNodes(t, []*metaNode{n1})
	waitProbe(t, m1, "/readyz", 200, regexp.MustCompile(`^ok raft-member\nok caught-up\n$`))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	setupAccount(t, ctx, newLeaderClient(t, n1)) // entries for n2 to catch up with

	n1.signal(syscall.SIGSTOP)
	n2 := newMetaNode(t, "n2", etcd, append(clusterNodeFlags, "--metrics-listen", m2)...)
	t.Cleanup(func() {
		n2.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("node n2 log:\n%s", tail(n2.logs(), 60))
		}
	})
	n2Ready := n2.start()
	waitProbe(t, m2, "/healthz", 200, regexp.MustCompile(`^ok raft\n`))
	waitProbe(t, m2, "/readyz", 503, regexp.MustCompile(`^fail raft-member: not a member of the group yet\nfail caught-up: .+\n$`))
	n1.signal(syscall.SIGCONT)
	n2.waitReady(n2Ready)
	waitProbe(t, m2, "/readyz", 200, regexp.MustCompile(`^ok raft-member\nok caught-up\n$`))
	if st, err := n2.status(ctx, false); err != nil || st.GetAppliedIndex() == 0 {
		t.Fatalf("n2 ready without having applied anything: %v, %v", st, err)
	}
}

// TestMetadataStopDeregisters: SIGTERM on the leader of three hands leadership over, then
// withdraws the node's etcd registration (in that order, while its gRPC port still
// redirects), then stops raft, and exits 0; the registry no longer lists it.
func TestMetadataStopDeregisters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	etcd, nodes := startVoters(t, ctx)
	var leader *metaNode
	for _, n := range nodes {
		if st, err := n.status(ctx, false); err == nil && st.GetState() == "Leader" {
			leader = n
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	leader.signal(syscall.SIGTERM)
	if code := leader.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, tail(leader.logs(), 30))
	}
	logs := leader.logs()
	handed, withdrew, stopped := strings.Index(logs, "handed over raft leadership"), strings.Index(logs, "withdrew etcd registration"), strings.Index(logs, "raft node stopped")
	if handed < 0 || withdrew < handed || stopped < withdrew {
		t.Fatalf("shutdown steps at %d (leadership), %d (registration), %d (raft); want them in that order:\n%s", handed, withdrew, stopped, tail(logs, 30))
	}
	client, err := directory.Dial(etcd)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	registered, err := directory.New(client, nil).Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range registered {
		if n.ID == leader.id {
			t.Fatalf("%s is still registered after it stopped: %+v", leader.id, registered)
		}
	}
	if len(registered) != 2 {
		t.Fatalf("registered nodes %+v, want the two others", registered)
	}
}

// TestFrontendDrain: SIGTERM on a frontend. /readyz answers 503 at once and the listeners
// close; a session in IDLE and one waiting between commands are told BYE [UNAVAILABLE]
// with the hint to reconnect; an idle LMTP session is told 421, a ManageSieve one BYE
// (TRYLATER); an APPEND whose message is arriving is completed and answered, then told
// BYE; and the process exits 0.
func TestFrontendDrain(t *testing.T) {
	etcd := etcdtest.Start(t)
	startNodes(t, []*metaNode{newMetaNode(t, "n1", etcd, clusterNodeFlags...)})
	addClusterAccount(t, etcd)
	metrics := freeAddr(t)
	fe := startFrontend(t, "A", etcd, "--blob-dir", t.TempDir(), "--metrics-listen", metrics, "--drain-timeout", "1m")
	waitProbe(t, metrics, "/readyz", 200, regexp.MustCompile(`^ok metadata-leader\nok blobstore\n$`))

	idler := dialIdle(t, fe.imapAddr, "u@acme.test", "pw")
	waiter := dialRaw(t, fe.imapAddr, "u@acme.test", "pw")
	appender := dialRaw(t, fe.imapAddr, "u@acme.test", "pw")
	msg := string(testMessage(1))
	appender.write(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", len(msg)))
	if l := appender.readLine(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("APPEND: %q", l)
	}
	appender.write(msg[:len(msg)/2])
	lmtpConn := dialLine(t, fe.lmtpAddr)
	lmtpConn.expect("220 ")
	lmtpConn.send("LHLO mx.test")
	for l := lmtpConn.expect("250"); strings.HasPrefix(l, "250-"); l = lmtpConn.expect("250") {
	}
	sieve := dialLine(t, fe.sieveAddr)
	for l := sieve.expect(""); !strings.HasPrefix(l, "OK"); l = sieve.expect("") {
	}

	fe.signal(syscall.SIGTERM)
	const bye = "* BYE [UNAVAILABLE] Server shutting down, reconnect to continue"
	if l := idler.readLine(); l != bye {
		t.Fatalf("in IDLE: %q, want %q", l, bye)
	}
	if l := idler.readLine(); !strings.HasPrefix(l, "i1 OK") {
		t.Fatalf("the IDLE after its BYE: %q", l)
	}
	if l := waiter.readLine(); l != bye {
		t.Fatalf("between commands: %q, want %q", l, bye)
	}
	lmtpConn.expect("421 4.3.0 ")
	sieve.expect(`BYE (TRYLATER) "Server shutting down, reconnect to continue"`)

	// The APPEND holds the drain open: meanwhile the frontend is unready, alive, and
	// accepts no connection.
	waitProbe(t, metrics, "/readyz", 503, regexp.MustCompile(`^fail draining: `))
	waitProbe(t, metrics, "/healthz", 200, regexp.MustCompile(`^ok imap\n`))
	if c, err := net.Dial("tcp", fe.imapAddr); err == nil {
		c.Close()
		t.Fatal("the IMAP listener still accepts while draining")
	}
	appender.write(msg[len(msg)/2:] + "\r\n")
	if l := appender.readLine(); !strings.HasPrefix(l, "a1 OK [APPENDUID ") {
		t.Fatalf("APPEND across the drain: %q", l)
	}
	if l := appender.readLine(); l != bye {
		t.Fatalf("after the APPEND: %q, want %q", l, bye)
	}
	if code := fe.waitExit(t); code != 0 {
		t.Fatalf("exit code %d after the drain:\n%s", code, tail(fe.logs(), 30))
	}
}

// TestServeHealthAndDrain: `strata serve` answers both kinds of readiness at once and
// drains like a frontend on SIGTERM, then exits 0.
func TestServeHealthAndDrain(t *testing.T) {
	metrics := freeAddr(t)
	srv := startServe(t, t.TempDir(), "--metrics-listen", metrics)
	waitProbe(t, metrics, "/readyz", 200, regexp.MustCompile(`^ok metadata\nok blobstore\n$`))
	waitProbe(t, metrics, "/healthz", 200, regexp.MustCompile(`^ok grpc\nok raft\nok imap\nok imaps\nok lmtp\nok managesieve\n$`))
	idler := dialIdle(t, srv.imapAddr, "demo@example.com", "demo")
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if l := idler.readLine(); l != "* BYE [UNAVAILABLE] Server shutting down, reconnect to continue" {
		t.Fatalf("in IDLE: %q", l)
	}
	srv.kill(syscall.SIGTERM) // waits for the exit
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after the drain:\n%s", code, srv.logs())
	}
}

// dialIdle logs in to addr, selects INBOX and starts IDLE with the tag i1.
func dialIdle(t *testing.T, addr, user, pass string) *rawIMAP {
	t.Helper()
	c := dialRaw(t, addr, user, pass)
	if rep := c.cmd("SELECT INBOX"); !rep.ok() {
		t.Fatalf("SELECT: %s", rep)
	}
	c.write("i1 IDLE\r\n")
	if l := c.readLine(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	return c
}

// lineConn is a line-based client for LMTP and ManageSieve.
type lineConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &lineConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *lineConn) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads one line and fails unless it starts with prefix.
func (c *lineConn) expect(prefix string) string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	l, err := c.r.ReadString('\n')
	l = strings.TrimRight(l, "\r\n")
	if err != nil || !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("read %q (%v), want %q...", l, err, prefix)
	}
	return l
}

// write sends raw bytes: a command without waiting for its reply, part of a literal.
func (c *rawIMAP) write(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}
