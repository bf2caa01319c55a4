//go:build linux

// Command init is the /init of the initramfs bench/vm/idle-vm.sh boots in a qemu guest: it
// runs the idle-connection scenario (bench/scenario.sh idle: `strata serve`, `strata bench
// users`, `strata bench idle`, the server's PSS from /proc/PID/smaps_rollup) where this
// program, as PID 1 of its own kernel, may raise the descriptor limit past what the host
// allows (100,000 connections need ~100,000 descriptors in the server and as many in the
// load generator).
//
// Two modes:
//
//	init pack OUT STRATA   (on the host) writes OUT, a newc cpio archive (the initramfs
//	                       format, Documentation/driver-api/early-userspace/buffer-format.rst)
//	                       holding this executable as /init and STRATA as /strata.
//	/init                  (PID 1 in the guest) mounts /proc, /sys, /dev and tmpfs on /tmp
//	                       and /data, brings up lo, raises fs.nr_open, RLIMIT_NOFILE, the
//	                       ephemeral port range and the listen backlogs, runs the runs named
//	                       by idlevm.runs= on the kernel command line, prints each report
//	                       between "==== idlevm json NAME" and "==== idlevm end" lines on the
//	                       console, and powers the machine off.
//
// Kernel command line (read from /proc/cmdline): idlevm.runs=plain:10000,plain:100000,tls:10000
// (MODE:CONNECTIONS, in order, each on a fresh `strata serve`), idlevm.settle=30s,
// idlevm.hold=10s, idlevm.parallel=32, idlevm.users=100 (as bench/scenario.sh idle),
// idlevm.messages=0 (messages per INBOX first, as MESSAGES there).
//
// Invariant: whatever fails, PID 1 never returns (the kernel would panic): it reports the
// failure on the console and powers off.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

const (
	strataBin = "/strata"
	imapPort  = 1143
	imapsPort = 1993
	grpcPort  = 1144
	// perSource is the connections per loopback source address, as bench/scenario.sh: one
	// address has ~64,000 ephemeral ports here (ip_local_port_range below), fewer with
	// TIME_WAIT sockets of earlier runs.
	perSource = 25000
	// maxFiles is RLIMIT_NOFILE of the server and of the load generator; fs.nr_open is
	// raised to it first (its default, 1,048,576, is also the ceiling of a raise).
	maxFiles = 1 << 21
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "pack" {
		if err := pack(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "pack:", err)
			os.Exit(1)
		}
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "usage: init pack OUT.cpio STRATA (on the host); as PID 1 of the guest: no arguments")
		os.Exit(2)
	}
	defer powerOff()
	defer func() {
		if r := recover(); r != nil {
			say("panic: %v", r)
		}
	}()
	if err := guest(); err != nil {
		say("FAILED: %v", err)
	}
}

var boot = time.Now()

// say prints a line on the console with the seconds since boot of this program.
func say(format string, args ...any) {
	fmt.Printf("[idlevm %7.1fs] %s\n", time.Since(boot).Seconds(), fmt.Sprintf(format, args...))
}

func powerOff() {
	say("powering off")
	syscall.Sync()
	if err := syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		say("power off: %v", err)
	}
	select {}
}

type run struct {
	tls   bool
	conns int
}

type params struct {
	runs     []run
	settle   string
	hold     string
	parallel int
	messages int
}

// users is the number of accounts the connections are spread over (idlevm.users,
// bench/scenario.sh idle: 100).
var users = 100

func parseCmdline(line string) (params, error) {
	p := params{settle: "30s", hold: "10s", parallel: 32, runs: []run{{conns: 10000}}}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(k, "idlevm.") {
			continue
		}
		var err error
		switch k {
		case "idlevm.runs":
			p.runs = nil
			for _, r := range strings.Split(v, ",") {
				mode, n, _ := strings.Cut(r, ":")
				c, cerr := strconv.Atoi(n)
				if cerr != nil || c <= 0 || (mode != "plain" && mode != "tls") {
					return p, fmt.Errorf("idlevm.runs: %q is not plain:N or tls:N", r)
				}
				p.runs = append(p.runs, run{tls: mode == "tls", conns: c})
			}
		case "idlevm.settle":
			p.settle = v
		case "idlevm.hold":
			p.hold = v
		case "idlevm.parallel":
			p.parallel, err = strconv.Atoi(v)
		case "idlevm.users":
			users, err = strconv.Atoi(v)
		case "idlevm.messages":
			p.messages, err = strconv.Atoi(v)
		default:
			return p, fmt.Errorf("unknown parameter %s", k)
		}
		if err != nil {
			return p, fmt.Errorf("%s: %w", k, err)
		}
	}
	return p, nil
}

func guest() error {
	if err := setup(); err != nil {
		return err
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	p, err := parseCmdline(string(cmdline))
	if err != nil {
		return err
	}
	say("machine: %d CPUs, %s, kernel %s", countCPUs(), memTotal(), kernelRelease())
	if err := seed(p.runs[0]); err != nil {
		return err
	}
	failed := 0
	for i, r := range p.runs {
		if err := idleRun(i, r, p); err != nil {
			say("run %d FAILED: %v", i+1, err)
			failed++
		}
	}
	say("%d of %d runs failed", failed, len(p.runs))
	return nil
}

// setup makes the guest a place to run a server: file systems, lo, and the limits 100,000
// connections need.
func setup() error {
	for _, m := range []struct{ src, dir, fstype, data string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", ""},
		{"tmpfs", "/tmp", "tmpfs", "size=50%"},
		{"tmpfs", "/data", "tmpfs", "size=50%"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(m.src, m.dir, m.fstype, 0, m.data); err != nil && err != syscall.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	for _, s := range []struct{ key, value string }{
		{"fs/nr_open", strconv.Itoa(maxFiles)},
		{"fs/file-max", "4194304"},
		// Ports for the load generator's side of each connection, per source address.
		{"net/ipv4/ip_local_port_range", "1024 65535"},
		// 32 connections are set up at once; a deeper queue costs nothing.
		{"net/core/somaxconn", "65535"},
		{"net/ipv4/tcp_max_syn_backlog", "65535"},
	} {
		if err := os.WriteFile("/proc/sys/"+s.key, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s: %w", s.key, err)
		}
	}
	lim := syscall.Rlimit{Cur: maxFiles, Max: maxFiles}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("RLIMIT_NOFILE %d: %w", maxFiles, err)
	}
	if err := loopbackUp(); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	os.Setenv("PATH", "/")
	os.Setenv("HOME", "/tmp")
	os.Setenv("TMPDIR", "/tmp")
	return nil
}

// loopbackUp sets IFF_UP on lo (SIOCSIFFLAGS, netdevice(7)); the kernel then gives it
// 127.0.0.1/8 itself, so every 127.x.y.z is a local address to connect from.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr [40]byte // struct ifreq: name[16], then the union (flags: a short)
	copy(ifr[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		return e
	}
	flags := binary.LittleEndian.Uint16(ifr[16:]) | syscall.IFF_UP
	binary.LittleEndian.PutUint16(ifr[16:], flags)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		return e
	}
	return nil
}

const (
	dataDir = "/data/run"  // the data of the server of the current run
	seedDir = "/data/seed" // a copy of the data once the users exist
)

var common = []string{"bench", "--user-pattern", "bench%d@example.com", "--password", "bench", "--seed", "1"}

// seed creates the users once, on a server that is then stopped, and keeps a copy of
// its data that every run starts from: under TCG an account's argon2id hash takes seconds
// (over 30 s, the admin call's deadline, when the host is busy), so creating them again for
// each run would take most of the time. `strata bench users` keeps the accounts that exist,
// so a failed attempt is retried.
func seed(r run) error {
	srv, err := startServer(serveArgs(r), "/tmp/strata-seed.log")
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err = command(append(common, "users", "--server", fmt.Sprintf("127.0.0.1:%d", grpcPort), "--users", strconv.Itoa(users),
			"--timeout", "10m"))
		if err == nil || attempt == 10 {
			break
		}
		say("users: attempt %d failed (%v), again", attempt, err)
	}
	srv.stop()
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	return copyTree(dataDir, seedDir)
}

// serveArgs are the flags of `strata serve` in bench/scenario.sh strata_for_idle.
func serveArgs(r run) []string {
	args := []string{"serve", "--data", dataDir,
		"--imap-listen", fmt.Sprintf("127.0.0.1:%d", imapPort), "--grpc-listen", fmt.Sprintf("127.0.0.1:%d", grpcPort),
		"--managesieve-listen", "", "--lmtp-listen", "", "--no-demo", "--log-level", "warn",
		"--max-connections", strconv.Itoa(r.conns + 100),
		// Each account's sessions: the default, 100, is the host scenario's 10,000 over 100
		// users; 100,000 need 1,000 each.
		"--max-connections-per-account", strconv.Itoa((r.conns+users-1)/users + 100),
		// TCG makes an argon2id hash (19 MiB, t=2) take seconds, and a 100,000-connection
		// run longer than the default 5 minutes: with the default each user's password
		// would be hashed again every 5 minutes. The cache holds every user either way.
		"--auth-cache-ttl", "24h",
		"--imaps-listen", ""}
	if r.tls {
		args[len(args)-1] = fmt.Sprintf("127.0.0.1:%d", imapsPort)
	}
	return args
}

// idleRun is one `bench/scenario.sh idle` run: a `strata serve` with --max-connections
// above the run's, on a fresh copy of the seed's data (the users), optionally MESSAGES per
// INBOX, then `strata bench idle` with the scenario's flags.
func idleRun(i int, r run, p params) error {
	name := fmt.Sprintf("strata-%d", r.conns)
	if r.tls {
		name = fmt.Sprintf("strata-tls-%d", r.conns)
	}
	say("run %d: %s: %d connections in IDLE (%s)", i+1, name, r.conns, loadavg())
	if err := os.RemoveAll(dataDir); err != nil {
		return err
	}
	if err := copyTree(seedDir, dataDir); err != nil {
		return err
	}
	srv, err := startServer(serveArgs(r), "/tmp/"+name+".log")
	if err != nil {
		return err
	}
	defer srv.stop()
	if p.messages > 0 {
		if err := command(append(common, "populate", "--addr", fmt.Sprintf("127.0.0.1:%d", imapPort), "--users", strconv.Itoa(users),
			"--messages", strconv.Itoa(p.messages), "--max-size", "4096", "--label", "strata")); err != nil {
			return err
		}
	}
	port := imapPort
	if r.tls {
		port = imapsPort
	}
	// Warm-up: each user logs in once, one at a time, so that the measured run finds every
	// password in the authentication cache. Without it the run's first 32 LOGINs verify 32
	// argon2id hashes at once on 2 emulated CPUs, each takes longer than the metadata call's
	// deadline, and those sessions fail ("authenticate: outcome unknown"), which on the
	// host, 100 times faster, does not happen. One at a time each verification gets both
	// CPUs; a failed pass (a verification past the deadline on a busy host) is repeated,
	// the users already cached cost nothing then.
	for attempt := 1; ; attempt++ {
		err := command(append(common, "idle", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--users", strconv.Itoa(users),
			"--connections", strconv.Itoa(users), "--parallel", "1", "--settle", "1s", "--hold", "1s",
			"--pid", strconv.Itoa(srv.cmd.Process.Pid), "--timeout", "10m", "--label", "warm-up", "--tls="+strconv.FormatBool(r.tls),
			"--insecure-skip-verify"))
		if err == nil {
			break
		}
		if attempt == 5 {
			return fmt.Errorf("warm-up: %w", err)
		}
		say("warm-up: attempt %d failed (%v), again", attempt, err)
	}
	jsonFile := "/tmp/idle-" + name + ".json"
	bargs := append(common, "idle", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--users", strconv.Itoa(users),
		"--connections", strconv.Itoa(r.conns), "--parallel", strconv.Itoa(p.parallel), "--settle", p.settle, "--hold", p.hold,
		"--pid", strconv.Itoa(srv.cmd.Process.Pid), "--timeout", "10m", "--label", name, "--json", jsonFile)
	if r.conns > perSource {
		var src []string
		for a := 1; (a-1)*perSource < r.conns; a++ {
			src = append(src, fmt.Sprintf("127.0.0.%d", a))
		}
		bargs = append(bargs, "--source-ips", strings.Join(src, ","))
	}
	if r.tls {
		bargs = append(bargs, "--tls", "--insecure-skip-verify")
	}
	stopWatch := watch(srv.cmd.Process.Pid)
	err = command(bargs)
	stopWatch()
	say("after %s: %s", name, loadavg())
	if js, rerr := os.ReadFile(jsonFile); rerr == nil {
		fmt.Printf("==== idlevm json %s\n%s\n==== idlevm end\n", name, bytes.TrimSpace(js))
	}
	if err != nil {
		return fmt.Errorf("strata bench idle: %w", err)
	}
	return nil
}

type server struct {
	cmd    *exec.Cmd
	exited chan error
}

// startServer starts `strata serve` and waits for its "Strata is ready" line (as
// bench/scenario.sh start_strata), copying its log to logFile.
func startServer(args []string, logFile string) (*server, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	s := &server{cmd: exec.Command(strataBin, args...), exited: make(chan error, 1)}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Minute) // TCG: many times slower than the host's 30 s
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logFile)
		if bytes.Contains(b, []byte("Strata is ready")) {
			say("strata serve is ready, pid %d", s.cmd.Process.Pid)
			return s, nil
		}
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("strata serve exited (%v):\n%s", err, b)
		case <-time.After(200 * time.Millisecond):
		}
	}
	s.cmd.Process.Kill()
	b, _ := os.ReadFile(logFile)
	return nil, fmt.Errorf("strata serve not ready after 5 minutes:\n%s", b)
}

// stop ends the server (SIGTERM, SIGKILL after 2 minutes) and shows the end of its log
// (warnings and errors only, --log-level warn).
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		say("strata serve exited: %v", err)
	case <-time.After(2 * time.Minute):
		s.cmd.Process.Kill()
		say("strata serve killed after 2 minutes: %v", <-s.exited)
	}
	if b, _ := os.ReadFile(s.cmd.Stdout.(*os.File).Name()); len(b) > 0 {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		say("server log (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// copyTree copies the directory tree src to dst (regular files and directories: a
// stopped server's data).
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case info.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		default:
			return fmt.Errorf("copy %s: not a regular file or directory", path)
		}
	})
}

// command runs /strata ARGS with its output on the console, each line prefixed by the time.
func command(args []string) error {
	say("$ strata %s", strings.Join(args, " "))
	cmd := exec.Command(strataBin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			say("  %s", sc.Text())
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	return err
}

// watch prints, every 30 s until stopped, what the guest holds: TCP sockets, the server's
// RSS, and the guest's free memory, to follow a slow run on the console.
func watch(pid int) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				say("watch: %s; server %s, Pss %s; %s; %s", sockstat(), serverRSS(pid), serverPSS(pid), memLine("MemAvailable"), loadavg())
			}
		}
	}()
	return func() { close(quit); <-finished }
}

func sockstat() string {
	b, _ := os.ReadFile("/proc/net/sockstat")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "TCP:") {
			return strings.TrimSpace(l)
		}
	}
	return "TCP: ?"
}

func serverRSS(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return "VmRSS: ?"
}

// serverPSS is the Pss line of /proc/PID/smaps_rollup, what `strata bench idle` measures.
func serverPSS(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Pss:") {
			return strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	return "?"
}

func memLine(key string) string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return key + ": ?"
}

func memTotal() string { return memLine("MemTotal") }

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load ?"
	}
	return "load " + strings.Join(f[:3], " ")
}

func countCPUs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "processor") {
			n++
		}
	}
	return n
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// pack writes the initramfs: a newc cpio archive (buffer-format.rst: "070701", thirteen
// 8-digit hexadecimal fields, the name with its NUL padded to 4 bytes, the data padded to
// 4 bytes, and a last entry named TRAILER!!!) of the directories the guest mounts on,
// /dev/console (the kernel opens it for PID 1's standard descriptors), /init and /strata.
func pack(out, strata string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	ino := 1
	entry := func(name string, mode uint32, rdevMajor, rdevMinor int, data []byte) error {
		hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
		ino++
		if _, err := w.WriteString(hdr + name + "\x00"); err != nil {
			return err
		}
		if err := pad(w, len(hdr)+len(name)+1); err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		return pad(w, len(data))
	}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "data"} {
		if err := entry(d, syscall.S_IFDIR|0o755, 0, 0, nil); err != nil {
			return err
		}
	}
	if err := entry("dev/console", syscall.S_IFCHR|0o600, 5, 1, nil); err != nil {
		return err
	}
	for _, e := range []struct{ name, path string }{{"init", self}, {"strata", strata}} {
		data, err := os.ReadFile(e.path)
		if err != nil {
			return err
		}
		if err := entry(filepath.Base(e.name), syscall.S_IFREG|0o755, 0, 0, data); err != nil {
			return err
		}
	}
	if err := entry("TRAILER!!!", 0, 0, 0, nil); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// pad writes the zeros that bring an n-byte field of the archive to a multiple of 4.
func pad(w io.Writer, n int) error {
	_, err := w.Write(make([]byte, (4-n%4)%4))
	return err
}
