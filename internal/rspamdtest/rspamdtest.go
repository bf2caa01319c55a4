// Package rspamdtest runs a real rspamd (Debian package rspamd, 3.4) for tests, with a
// redis-server (Debian package redis-server) behind its Bayes classifier, each from a
// temporary directory with a configuration of its own:
//
//   - the normal worker (/checkv2) and the controller (/learnspam, /learnham, /stat) on
//     loopback ports, the controller with a password and an enable_password and no
//     secure_ip that would let a loopback client in without them;
//   - DNS pointed at a closed loopback port, so network rules fail at once instead of
//     waiting for resolvers the test machine may not have;
//   - Bayes on redis over a unix socket, min_learns and min_tokens at 1 so a single short
//     message is learnt. rspamd 3.4 still accepts backend = "sqlite3", but here it
//     answered learns with success and stored no token, so redis it is.
//
// Start takes a few seconds once rspamd's compiled regular expressions (hyperscan) are
// cached; the first start on a machine compiles them, about a minute, into
// $XDG_CACHE_HOME/strata-test/rspamd-hs, which later starts reuse. Run one rspamd per
// test binary (Shared) and Stop it from TestMain.
package rspamdtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Password is the controller's password and enable_password.
const Password = "strata-test-learn"

// GTUBE is rspamd's Generic Test for Unsolicited Bulk Email: a message whose body holds
// it is rejected.
const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// readyWait bounds the wait for rspamd to listen: a failsafe many times the first start's
// hyperscan compilation on a loaded machine.
const readyWait = 10 * time.Minute

// Server is a running rspamd and its redis.
type Server struct {
	CheckURL      string // the normal worker, for /checkv2
	ControllerURL string // the controller, for learning and /stat
	dir           string
	redisSocket   string
	rspamd, redis *process
}

// process is a child process and the channel closed when it has exited.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the test binary's rspamd, starting it on first use; TestMain calls
// StopShared after the tests.
func Shared() (*Server, error) {
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	return shared, sharedErr
}

// StopShared stops the rspamd Shared started, if any.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Start runs rspamd and redis in a new temporary directory.
func Start() (*Server, error) {
	rspamdPath, err := exec.LookPath("rspamd")
	if err != nil {
		return nil, fmt.Errorf("rspamd is required (Debian package rspamd; .ci/run installs it): %w", err)
	}
	redisPath, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is required (Debian package redis-server; .ci/run installs it): %w", err)
	}
	dir, err := os.MkdirTemp("", "rspamdtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, redisSocket: filepath.Join(dir, "redis.sock")}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	s.redis, err = s.startProcess("redis.log", redisPath, "--port", "0", "--unixsocket", s.redisSocket,
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s.CheckURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	s.ControllerURL = "http://127.0.0.1:" + strconv.Itoa(ports[1])
	hsCache, err := hyperscanCache()
	if err != nil {
		return nil, err
	}
	local := filepath.Join(dir, "local")
	for _, d := range []string{"override.d", "db", "run", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(local, "override.d"), 0o700); err != nil {
		return nil, err
	}
	files := map[string]string{
		"worker-normal.inc": fmt.Sprintf("bind_socket = \"127.0.0.1:%d\";\ncount = 1;\n", ports[0]),
		"worker-controller.inc": fmt.Sprintf("bind_socket = \"127.0.0.1:%d\";\ncount = 1;\npassword = %q;\nenable_password = %q;\nsecure_ip = \"192.0.2.1\";\n",
			ports[1], Password, Password),
		"worker-proxy.inc": "count = 0;\nenabled = false;\n",
		"logging.inc":      "type = \"file\";\nfilename = \"" + filepath.Join(dir, "rspamd.log") + "\";\nlevel = \"info\";\n",
		"options.inc": "hs_cache_dir = \"" + hsCache + "/\";\n" +
			"dns { nameserver = [\"127.0.0.1:1\"]; timeout = 1s; retransmits = 1; }\n",
		"classifier-bayes.conf": "backend = \"redis\";\nservers = \"" + s.redisSocket + "\";\nmin_learns = 1;\nmin_tokens = 1;\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(local, "override.d", name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	if err := waitRedis(s.redisSocket); err != nil {
		return nil, err
	}
	// -f: foreground; -i: allow running as root, as CI does.
	s.rspamd, err = s.startProcess("rspamd.out", rspamdPath, "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
		"--var", "LOCAL_CONFDIR="+local, "--var", "DBDIR="+filepath.Join(dir, "db"),
		"--var", "RUNDIR="+filepath.Join(dir, "run"), "--var", "LOGDIR="+filepath.Join(dir, "log"))
	if err != nil {
		return nil, fmt.Errorf("start rspamd: %w", err)
	}
	if err := s.waitReady(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// startProcess starts a command in a process group of its own (rspamd forks workers),
// its output to a file in the directory.
func (s *Server) startProcess(logName, path string, args ...string) (*process, error) {
	out, err := os.Create(filepath.Join(s.dir, logName))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	p := &process{cmd: exec.Command(path, args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Stop ends rspamd and redis (their process groups) and removes the directory.
func (s *Server) Stop() {
	for _, p := range []*process{s.rspamd, s.redis} {
		if p == nil {
			continue
		}
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.exited
		}
	}
	os.RemoveAll(s.dir)
}

// Log returns rspamd's log, for a failing test to show.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "rspamd.log"))
	return string(b)
}

// waitReady polls both workers' /ping until they answer, or rspamd exits.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(readyWait)
	for time.Now().Before(deadline) {
		if pingOK(s.CheckURL) && pingOK(s.ControllerURL) {
			return nil
		}
		select {
		case <-s.rspamd.exited:
			out, _ := os.ReadFile(filepath.Join(s.dir, "rspamd.out"))
			return fmt.Errorf("rspamd exited before listening:\n%s\n%s", out, s.Log())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("rspamd not listening after %v:\n%s", readyWait, s.Log())
}

func pingOK(base string) bool {
	resp, err := http.Get(base + "/ping")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freePorts returns n loopback TCP ports free a moment ago (rspamd's configuration needs
// numbers, not port 0).
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// hyperscanCache is the directory kept across runs for rspamd's compiled expressions.
func hyperscanCache() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "strata-test", "rspamd-hs")
	return dir, os.MkdirAll(dir, 0o700)
}

// waitRedis waits until redis answers PING on socket.
func waitRedis(socket string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := redisCommand(socket, "PING"); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("redis-server not answering: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Learns returns how many messages the Bayes classifier learnt as spam (or ham): the
// counters rspamd keeps in redis (hash RS, fields learns_spam and learns_ham).
func (s *Server) Learns(spam bool) (int, error) {
	field := "learns_ham"
	if spam {
		field = "learns_spam"
	}
	reply, err := redisCommand(s.redisSocket, "HGET RS "+field)
	if err != nil || reply == "" {
		return 0, err
	}
	return strconv.Atoi(reply)
}

// redisCommand sends one inline command and returns a simple, integer or bulk reply ("" for
// nil).
func redisCommand(socket, command string) (string, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case line == "$-1":
		return "", nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redis: bad bulk length %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case strings.HasPrefix(line, "+"), strings.HasPrefix(line, ":"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New("redis: " + line[1:])
	}
	return "", fmt.Errorf("redis: unexpected reply %q", line)
}
