// Package e2e runs the built strata binary as a real process and drives it with real
// clients: go-imap v2's imapclient and Python's imaplib.
package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// strataBin is the binary built once by TestMain.
var strataBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	strataBin = filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-o", strataBin, "github.com/strata-mail/strata/cmd/strata")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build strata:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopPostfix()
	removeClusterCerts()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serverProcess is one running `strata serve`.
type serverProcess struct {
	t         *testing.T
	cmd       *exec.Cmd
	imapAddr  string
	grpcAddr  string
	imapsAddr string // "" when serve was started with --imaps-listen ""
	lmtpAddr  string // "" when serve was started with --lmtp-listen ""
	sieveAddr string // ManageSieve; "" when started with --managesieve-listen ""
	exited    chan struct{}
	logMu     sync.Mutex
	log       strings.Builder
}

var sieveLine = regexp.MustCompile(`^ManageSieve on (\S+)`)

var readyLine = regexp.MustCompile(`^Strata is ready\. IMAP on (\S+), admin gRPC on (\S+),(?: IMAPS on (\S+),)?(?: LMTP on (\S+),)?`)

// startServe runs `strata serve` on dataDir with ephemeral loopback ports and waits for
// its ready line.
func startServe(t *testing.T, dataDir string, extraArgs ...string) *serverProcess {
	t.Helper()
	args := append([]string{"serve", "--data", dataDir, "--imap-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--imaps-listen", "127.0.0.1:0", "--lmtp-listen", "127.0.0.1:0", "--managesieve-listen", "127.0.0.1:0", "--log-level", "warn"}, extraArgs...)
	cmd := exec.Command(strataBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{t: t, cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start strata serve: %v", err)
	}
	ready := make(chan [4]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := sieveLine.FindStringSubmatch(sc.Text()); m != nil {
				p.sieveAddr = m[1] // before the ready line, which publishes it
			}
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- [4]string{m[1], m[2], m[3], m[4]}
			}
		}
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	select {
	case addrs := <-ready:
		p.imapAddr, p.grpcAddr, p.imapsAddr, p.lmtpAddr = addrs[0], addrs[1], addrs[2], addrs[3]
	case <-p.exited:
		t.Fatalf("strata serve exited before it was ready:\n%s", p.logs())
	case <-time.After(60 * time.Second):
		p.kill(syscall.SIGKILL)
		t.Fatalf("strata serve not ready after 60s:\n%s", p.logs())
	}
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("strata serve log:\n%s", p.logs())
		}
	})
	return p
}

type lockedWriter struct{ p *serverProcess }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.logMu.Lock()
	defer w.p.logMu.Unlock()
	return w.p.log.Write(b)
}

func (p *serverProcess) logs() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// kill sends sig and waits for the process to exit.
func (p *serverProcess) kill(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// admin runs a `strata` admin command against this server's gRPC endpoint.
func (p *serverProcess) admin(args ...string) (string, error) {
	out, err := exec.Command(strataBin, append(args, "--server", p.grpcAddr)...).CombinedOutput()
	return string(out), err
}

// mustAdmin runs an admin command and fails the test if it fails.
func (p *serverProcess) mustAdmin(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.admin(args...)
	if err != nil {
		t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// login opens an IMAP connection as the demo user.
func (p *serverProcess) login(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(p.imapAddr, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", p.imapAddr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("demo@example.com", "demo").Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// appendMessage APPENDs body to mailbox and returns the assigned UID.
func appendMessage(c *imapclient.Client, mailbox string, body []byte, opts *imap.AppendOptions) (uint32, error) {
	cmd := c.Append(mailbox, int64(len(body)), opts)
	if _, err := cmd.Write(body); err != nil {
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	return uint32(data.UID), nil
}

func testMessage(i int) []byte {
	return []byte(fmt.Sprintf("From: Sender %d <sender%d@example.org>\r\nTo: demo@example.com\r\n"+
		"Subject: message number %d\r\nMessage-ID: <m%d@example.org>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nBody of message %d.\r\n", i, i, i, i, i))
}
