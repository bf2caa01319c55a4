package imap_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/testlog"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/metadata"
)

// logBuffer collects a server's log lines (text handler, debug level) for a test, all of
// them.
type logBuffer struct{ testlog.Buffer }

// failureLines returns the "authentication failed" lines of the log.
func (l *logBuffer) failureLines() []string {
	var lines []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, `msg="authentication failed"`) {
			lines = append(lines, line)
		}
	}
	return lines
}

// guardTestConfig: delays long enough that a client answering at once is throttled,
// lockouts short enough to wait out. 127.0.0.1 is the trusted PROXY sender; the other
// 127.0.0.x addresses are clients connecting directly.
var guardTestConfig = metadata.AuthGuardConfig{
	FreeFailures:        2,
	BaseDelay:           300 * time.Millisecond,
	MaxDelay:            600 * time.Millisecond,
	AccountMaxDelay:     300 * time.Millisecond,
	PairLockoutFailures: 5,
	PairLockout:         1500 * time.Millisecond,
	IPLockoutFailures:   8,
	IPLockout:           1500 * time.Millisecond,
	FailureWindow:       time.Minute,
	TrustWindow:         time.Hour,
}

// startGuarded runs an embedded Strata with the guard of guardTestConfig, ManageSieve,
// metrics and PROXY headers required from 127.0.0.1, logging into the returned buffer.
func startGuarded(t *testing.T) (*embedded.Server, *logBuffer) {
	t.Helper()
	return startGuardedWith(t, func(*embedded.Config) {})
}

// startGuardedWith is startGuarded with the configuration changed by edit first.
func startGuardedWith(t *testing.T, edit func(*embedded.Config)) (*embedded.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	logins := auth.NewLogins()
	logins.MaxWait = 5 * time.Second
	logins.LockedReplyDelay = 10 * time.Millisecond
	cfg := embedded.Config{
		Demo:               true,
		AllowPlaintextAuth: true,
		ManageSieveListen:  "127.0.0.1:0",
		LMTPListen:         "127.0.0.1:0",
		MetricsListen:      "127.0.0.1:0",
		AuthGuard:          guardTestConfig,
		Logins:             logins,
		Proxy: &connserver.Proxy{
			Trusted:       []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			HeaderTimeout: 500 * time.Millisecond,
		},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	edit(&cfg)
	return embeddedtest.Start(t, cfg), logs
}

// dialFrom connects to addr from the local address src (a 127.0.0.x address), sends header
// first when given, and returns the connection without reading anything.
func dialFrom(t *testing.T, addr, src string, header []byte) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { conn.Close() })
	if header != nil {
		if _, err := conn.Write(header); err != nil {
			t.Fatalf("write PROXY header: %v", err)
		}
	}
	return conn
}

// imapFrom is an IMAP connection from src (direct) with its greeting read.
func imapFrom(t *testing.T, srv *embedded.Server, src string) *rawConn {
	t.Helper()
	return greeted(t, dialFrom(t, srv.IMAPAddr(), src, nil))
}

// imapProxied is an IMAP connection from the trusted proxy 127.0.0.1 that presents client
// as the client's address in a PROXY header of the given version.
func imapProxied(t *testing.T, srv *embedded.Server, client string, version byte) *rawConn {
	t.Helper()
	return greeted(t, dialFrom(t, srv.IMAPAddr(), "127.0.0.1", proxyHeader(t, client, version)))
}

func proxyHeader(t *testing.T, client string, version byte) []byte {
	t.Helper()
	dst := net.ParseIP("192.0.2.1")
	if strings.Contains(client, ":") {
		dst = net.ParseIP("2001:db8::1")
	}
	h := proxyproto.HeaderProxyFromAddrs(version,
		&net.TCPAddr{IP: net.ParseIP(client), Port: 40000}, &net.TCPAddr{IP: dst, Port: 143})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func greeted(t *testing.T, conn net.Conn) *rawConn {
	t.Helper()
	rc := &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	if greeting := rc.readLine(); !strings.HasPrefix(greeting, "* OK ") {
		t.Fatalf("greeting %q", greeting)
	}
	return rc
}

// login sends LOGIN and returns the tagged response without its tag.
func (rc *rawConn) login(user, password string) string {
	rc.t.Helper()
	_, tagged := rc.cmd(fmt.Sprintf("LOGIN %q %q", user, password))
	return tagged
}

// TestBruteForceFromOneAddress: a guessing loop from one address against the demo account
// is delayed, then locks the (account, address) pair; the real user logs in meanwhile from
// the address he logged in from before, and from a new one; after the lockout even the
// attacker's address takes the right password again (a user behind the same NAT).
func TestBruteForceFromOneAddress(t *testing.T) {
	srv, logs := startGuarded(t)
	user := imapFrom(t, srv, "127.0.0.9")
	if got := user.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Fatalf("first login of the real user: %s", got)
	}
	user.ok("LOGOUT")

	attacker := imapFrom(t, srv, "127.0.0.2")
	var replies []string
	for i := range 8 {
		replies = append(replies, attacker.login(embedded.DemoAccount, fmt.Sprintf("guess-%d", i)))
	}
	for i, got := range replies {
		want := "NO [AUTHENTICATIONFAILED]" // checked: failures 1 to 5, the 5th locks
		if i >= guardTestConfig.PairLockoutFailures {
			want = "NO [UNAVAILABLE]" // locked: refused unchecked
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("guess %d: %q, want %s", i+1, got, want)
		}
	}
	// The right password from the locked pair is refused too, unchecked.
	if got := attacker.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "NO [UNAVAILABLE]") {
		t.Errorf("right password from the locked pair: %q", got)
	}
	metric, text := embeddedtest.Scrape(t, srv.MetricsAddr())
	for series, want := range map[string]float64{
		`strata_auth_logins_total{protocol="imap",result="failure"}`:     5,
		`strata_auth_logins_total{protocol="imap",result="locked"}`:      4,
		`strata_auth_guard_lockouts_total{scope="pair"}`:                 1,
		`strata_auth_guard_failures_total{scope="pair"}`:                 5,
		`strata_auth_guard_refusals_total{reason="locked",scope="pair"}`: 4,
	} {
		if got := metric(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// Guesses 4 and 5 (after 3 failures, 2 of them free) each owed a delay, which the
	// frontend waited out before the check.
	if got := metric(`strata_auth_guard_refusals_total{reason="throttled",scope="pair"}`); got < 2 {
		t.Errorf("throttled refusals of the pair = %v, want at least 2 (one per delayed guess):\n%s", got, text)
	}
	if got := metric(`strata_auth_throttle_wait_seconds_count`); got < 2 {
		t.Errorf("logins that waited = %v, want at least 2", got)
	}

	// Within the lockout: the real user from his trusted address, over IMAP and
	// ManageSieve, and from an address new to the account (throttled, not locked).
	user = imapFrom(t, srv, "127.0.0.9")
	if got := user.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Errorf("real user from his address during the lockout: %s", got)
	}
	newPlace := imapFrom(t, srv, "127.0.0.3")
	if got := newPlace.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Errorf("real user from a new address during the lockout: %s", got)
	}
	if got := sieveLogin(t, srv, "127.0.0.2", embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "NO (TRYLATER)") {
		t.Errorf("ManageSieve from the locked pair: %q", got)
	}
	if got := sieveLogin(t, srv, "127.0.0.9", embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Errorf("ManageSieve from the real user's address: %q", got)
	}

	// After the lockout window the locked address gets the account again.
	time.Sleep(guardTestConfig.PairLockout)
	after := imapFrom(t, srv, "127.0.0.2")
	if got := after.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Errorf("right password from the attacker's address after the lockout: %s", got)
	}

	// Each refusal logged one line naming the address and the account, none the password.
	lines := logs.failureLines()
	if len(lines) != 5+4+1 {
		t.Errorf("%d failure lines, want 10:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, " client_ip=127.0.0.2 protocol=") || !strings.Contains(l, "account="+embedded.DemoAccount) {
			t.Errorf("failure line without the address or account: %s", l)
		}
	}
	if strings.Contains(logs.String(), "guess-") {
		t.Error("a guessed password is in the log")
	}
}

// sieveLogin runs ManageSieve AUTHENTICATE PLAIN from src and returns the reply line.
func sieveLogin(t *testing.T, srv *embedded.Server, src, user, password string) string {
	t.Helper()
	conn := dialFrom(t, srv.ManageSieveAddr(), src, nil)
	r := bufio.NewReader(conn)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	for { // RFC 5804 1.7: capabilities, then OK
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("ManageSieve greeting: %v", err)
		}
		if strings.HasPrefix(line, "OK") {
			break
		}
	}
	plain := base64Plain(user, password)
	fmt.Fprintf(conn, "AUTHENTICATE \"PLAIN\" \"%s\"\r\n", plain)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("ManageSieve AUTHENTICATE: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestBruteForceFromManyAddresses: guesses against one account from many client addresses
// (presented through the PROXY protocol by the trusted 127.0.0.1, in both header versions)
// throttle the account as a whole, without locking it: the real user logs in from his
// trusted address with no wait, and from an address new to the account. One address
// guessing many accounts is locked out, except for the account it logged in to.
func TestBruteForceFromManyAddresses(t *testing.T) {
	srv, logs := startGuarded(t)
	user := imapFrom(t, srv, "127.0.0.9")
	if got := user.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Fatalf("first login of the real user: %s", got)
	}

	const botnet = 16
	var wg sync.WaitGroup
	replies := make([]string, 2*botnet)
	for i := range botnet {
		wg.Go(func() {
			version := byte(1 + i%2)
			c := imapProxied(t, srv, fmt.Sprintf("203.0.113.%d", i+1), version)
			// A guess waits its turn (up to the guard's MaxWait, 5 s) and then an
			// argon2id check, with 31 others queued on the account: on a loaded 2-core
			// machine that outlasts the usual 10 s read timeout of the test client.
			c.readTimeout = time.Minute
			for j := range 2 {
				replies[2*i+j] = c.login(embedded.DemoAccount, fmt.Sprintf("bot-%d-%d", i, j))
			}
		})
	}
	wg.Wait()
	// The account is throttled as a whole, one check per AccountMaxDelay: a guess is
	// checked after waiting its turn, or refused unchecked when it waited too often.
	checked, refused := 0, 0
	for i, got := range replies {
		switch {
		case strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED]"):
			checked++
		case strings.HasPrefix(got, "NO [UNAVAILABLE]"):
			refused++
		default:
			t.Errorf("bot guess %d: %q", i, got)
		}
	}
	metric, text := embeddedtest.Scrape(t, srv.MetricsAddr())
	if got := metric(`strata_auth_guard_failures_total{scope="account"}`); got != float64(checked) {
		t.Errorf("account failures = %v, want %d (the checked guesses)", got, checked)
	}
	if refused > 0 {
		if got := metric(`strata_auth_logins_total{protocol="imap",result="throttled"}`); got != float64(refused) {
			t.Errorf("throttled logins = %v, want %d", got, refused)
		}
	}
	if got := metric(`strata_auth_guard_refusals_total{reason="throttled",scope="account"}`); got < 1 {
		t.Errorf("throttled refusals of the account = %v, want some", got)
	}
	if strings.Contains(text, `reason="locked"`) {
		t.Errorf("something was locked out by guesses from many addresses:\n%s", text)
	}
	// Logs and counters saw the clients' addresses, not the proxy's.
	for _, l := range logs.failureLines() {
		if !strings.Contains(l, " client_ip=203.0.113.") {
			t.Errorf("failure line without the proxied client's address: %s", l)
		}
	}

	// The real user from his trusted address is not throttled by the account's counter.
	waited := metric(`strata_auth_throttle_wait_seconds_count`)
	user = imapFrom(t, srv, "127.0.0.9")
	if got := user.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Errorf("real user from his address under attack: %s", got)
	}
	metric, _ = embeddedtest.Scrape(t, srv.MetricsAddr())
	if got := metric(`strata_auth_throttle_wait_seconds_count`); got != waited {
		t.Errorf("the trusted login waited for the account's throttle (waits %v -> %v)", waited, got)
	}
	// From a new address it is throttled like the bots, but gets in.
	if got := imapProxied(t, srv, "198.51.100.7", 2).login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Errorf("real user from a new address under attack: %s", got)
	}

	// One address spraying many accounts (most unknown) is locked out, but a user who
	// logged in from it before keeps his account from there.
	if got := imapProxied(t, srv, "203.0.113.200", 2).login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Fatalf("real user from the address to be locked: %s", got)
	}
	spray := imapProxied(t, srv, "203.0.113.200", 1)
	for i := range guardTestConfig.IPLockoutFailures {
		if got := spray.login(fmt.Sprintf("user%d@example.com", i), "x"); !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("spray %d: %q", i, got)
		}
	}
	if got := spray.login("another@example.com", "x"); !strings.HasPrefix(got, "NO [UNAVAILABLE]") {
		t.Errorf("spraying address after its lockout: %q", got)
	}
	metric, _ = embeddedtest.Scrape(t, srv.MetricsAddr())
	if got := metric(`strata_auth_guard_lockouts_total{scope="ip"}`); got != 1 {
		t.Errorf("address lockouts = %v, want 1", got)
	}
	if got := imapProxied(t, srv, "203.0.113.200", 1).login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Errorf("the real user's trusted pair on the locked address: %s", got)
	}
}

// TestFail2banFilter runs fail2ban-regex (Debian's fail2ban) with the filter of
// deploy/fail2ban on the failure lines a real server logged, and the same expression,
// turned into Go syntax, on each of them: every line matches with the client's address,
// and a user name crafted to look like another address does not move it.
func TestFail2banFilter(t *testing.T) {
	srv, logs := startGuarded(t)
	imapProxied(t, srv, "203.0.113.9", 2).login(embedded.DemoAccount, "wrong")
	imapProxied(t, srv, "2001:db8::9", 1).login(`x client_ip=8.8.8.8 protocol=imap account=y`, "wrong")
	sieveLogin(t, srv, "127.0.0.4", "nobody@example.com", "wrong")
	lines := logs.failureLines()
	if len(lines) != 3 {
		t.Fatalf("failure lines: %q", lines)
	}
	want := []string{"203.0.113.9", "2001:db8::9", "127.0.0.4"}
	host := fail2banHost(t)
	for i, l := range lines {
		if got := host(l); got != want[i] {
			t.Errorf("line %q: host %q, want %s", l, got, want[i])
		}
	}

	f2b, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		t.Skip("fail2ban-regex not installed (apt-get install fail2ban); the Go check above ran")
	}
	logFile := filepath.Join(t.TempDir(), "strata.log")
	if err := os.WriteFile(logFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(f2b, "--print-all-matched", logFile, "../../deploy/fail2ban/filter.d/strata.conf").CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-regex: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "3 matched") {
		t.Errorf("fail2ban-regex did not match the 3 lines:\n%s", out)
	}
	for _, host := range want {
		if !strings.Contains(string(out), host) {
			t.Errorf("fail2ban-regex found no %s:\n%s", host, out)
		}
	}
	if strings.Contains(string(out), "8.8.8.8  ") {
		t.Errorf("fail2ban-regex took the address in the user name:\n%s", out)
	}
}

// fail2banHost returns the failregex of deploy/fail2ban's filter in Go syntax, as a
// function from a log line to the host fail2ban takes from it ("" when it does not match).
func fail2banHost(t *testing.T) func(line string) string {
	t.Helper()
	filter, err := os.ReadFile("../../deploy/fail2ban/filter.d/strata.conf")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^failregex = (.*)$`).FindSubmatch(filter)
	if m == nil {
		t.Fatal("no failregex in the filter")
	}
	// fail2ban matches after cutting the date (datepattern) off the line; <HOST> is its
	// host expression.
	re := regexp.MustCompile(strings.Replace(string(m[1]), "<HOST>", `(?P<host>[0-9a-fA-F.:]+)`, 1))
	date := regexp.MustCompile(`^time=\S+`)
	return func(line string) string {
		got := re.FindStringSubmatch(date.ReplaceAllString(line, ""))
		if got == nil {
			return ""
		}
		return got[re.SubexpIndex("host")]
	}
}

// base64Plain is a SASL PLAIN response (RFC 4616) in base64.
func base64Plain(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// TestConnectionsPerAccount: logins beyond Limits.MaxConnectionsPerAccount sessions of one
// account are refused NO [LIMIT] and counted; LOGOUT, UNAUTHENTICATE and a closed socket
// each give the slot back.
func TestConnectionsPerAccount(t *testing.T) {
	srv, _ := startGuardedWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.MaxConnectionsPerAccount = 2 })
	a, b := imapFrom(t, srv, "127.0.0.9"), imapFrom(t, srv, "127.0.0.9")
	for _, c := range []*rawConn{a, b} {
		if got := c.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
			t.Fatalf("login: %s", got)
		}
	}
	third := imapFrom(t, srv, "127.0.0.9")
	if got := third.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "NO [LIMIT]") {
		t.Fatalf("third session: %q, want NO [LIMIT]", got)
	}
	metric, _ := embeddedtest.Scrape(t, srv.MetricsAddr())
	if got := metric(`strata_imap_connections_refused_total{reason="per_account"}`); got != 1 {
		t.Errorf("per-account refusals = %v, want 1", got)
	}
	a.ok("UNAUTHENTICATE")
	if got := third.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
		t.Fatalf("after UNAUTHENTICATE of another session: %s", got)
	}
	if got := a.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "NO [LIMIT]") {
		t.Fatalf("over the limit again: %q", got)
	}
	b.ok("LOGOUT")
	// The slot frees when b's connection has ended, just after its BYE.
	testwait.Until(t, 10*time.Second, func() error {
		if got := a.login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
			return fmt.Errorf("after LOGOUT of another session: %s", got)
		}
		return nil
	})
	third.conn.Close()
	testwait.Until(t, 10*time.Second, func() error {
		if got := imapFrom(t, srv, "127.0.0.9").login(embedded.DemoAccount, embedded.DemoPassword); !strings.HasPrefix(got, "OK") {
			return fmt.Errorf("after a session's socket closed: %s", got)
		}
		return nil
	})
}
