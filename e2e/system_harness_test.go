package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/internal/s3test"
)

// frontendProcess is one `strata frontend`; restart runs it again with the same arguments
// (the same ports, when they were given rather than ephemeral).
type frontendProcess struct {
	name     string
	args     []string
	imapAddr string
	lmtpAddr string // "" when started with --lmtp-listen ""
	// sieveAddr is where ManageSieve listens, "" when started with --managesieve-listen "";
	// set before the ready line.
	sieveAddr string

	mu     sync.Mutex // guards cmd and exited
	cmd    *exec.Cmd
	exited chan struct{}
	logMu  sync.Mutex
	log    strings.Builder
}

var frontendReadyLine = regexp.MustCompile(`^Strata frontend is ready\. IMAP on ([^\s,]+)(?:, LMTP on (\S+))?`)

// startFrontend runs `strata frontend` with ephemeral loopback IMAP and LMTP ports (extraArgs
// may name others), finding the metadata nodes through etcd, and waits for its ready line.
func startFrontend(t testing.TB, name, etcd string, extraArgs ...string) *frontendProcess {
	t.Helper()
	args := append([]string{"frontend", "--imap-listen", "127.0.0.1:0", "--lmtp-listen", "127.0.0.1:0", "--managesieve-listen", "127.0.0.1:0", "--etcd", etcd, "--spool-dir", t.TempDir(),
		"--allow-plaintext-auth", "--log-level", "info"}, append(clusterTLSArgs(t, "frontend", name), extraArgs...)...)
	p := &frontendProcess{name: name, args: args}
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("frontend %s log:\n%s", name, tail(p.logs(), 60))
		}
	})
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs the process and waits for its ready line.
func (p *frontendProcess) start() error {
	cmd := exec.Command(strataBin, p.args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = frontendLog{p}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start strata frontend %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := sieveLine.FindStringSubmatch(sc.Text()); m != nil && p.sieveAddr == "" {
				p.sieveAddr = m[1] // before the ready line, which publishes it
			}
			if m := frontendReadyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1:]
			}
		}
	}()
	go func() { cmd.Wait(); close(exited) }()
	select {
	case addrs := <-ready:
		if p.imapAddr == "" { // a restart binds the same ports; clients may be reading these
			p.imapAddr, p.lmtpAddr = addrs[0], addrs[1]
		}
		return nil
	case <-exited:
		return fmt.Errorf("strata frontend %s exited before it was ready:\n%s", p.name, tail(p.logs(), 60))
	case <-time.After(60 * time.Second):
		return fmt.Errorf("strata frontend %s not ready after 60s:\n%s", p.name, tail(p.logs(), 60))
	}
}

// signal sends sig; for SIGKILL it waits for the exit.
func (p *frontendProcess) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-exited
	}
}

// waitExit waits for the process to exit (after a SIGTERM: once it has drained) and
// returns its exit code; the bound is a failsafe against a drain that hangs.
func (p *frontendProcess) waitExit(t testing.TB) int {
	t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("strata frontend %s has not exited:\n%s", p.name, tail(p.logs(), 60))
	}
	return cmd.ProcessState.ExitCode()
}

type frontendLog struct{ p *frontendProcess }

func (w frontendLog) Write(b []byte) (int, error) {
	w.p.logMu.Lock()
	defer w.p.logMu.Unlock()
	return w.p.log.Write(b)
}

func (p *frontendProcess) logs() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// errKind sorts an IMAP client error into what the acceptance criteria allow.
type errKind int

const (
	errOther       errKind = iota
	errUnavailable         // NO [UNAVAILABLE] (RFC 5530 3): try again later
	errDisconnect          // the connection broke: reconnect and continue
)

func classifyIMAPError(err error) errKind {
	var imapErr *imap.Error
	if errors.As(err, &imapErr) {
		if imapErr.Type == imap.StatusResponseTypeNo && imapErr.Code == imap.ResponseCodeUnavailable {
			return errUnavailable
		}
		if imapErr.Type == imap.StatusResponseTypeBye {
			return errDisconnect
		}
		return errOther
	}
	var netErr net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &netErr) {
		return errDisconnect
	}
	// go-imap formats some read errors into its own text ("cannot read tag: ..."), losing
	// the wrapped error: a reset connection is then only recognisable by its message.
	if msg := err.Error(); strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "broken pipe") {
		return errDisconnect
	}
	return errOther
}

// ledger records what the IMAP clients of the system test were told.
type ledger struct {
	mu             sync.Mutex
	acked          map[string]uint32 // Message-ID -> UID of an APPEND answered OK
	unknown        map[string]bool   // Message-IDs of APPENDs whose outcome the client never learned
	targeted       map[string]bool   // Message-IDs STORE \Deleted + UID EXPUNGE was tried on
	expunged       map[string]bool   // Message-IDs whose UID EXPUNGE was answered OK
	acks           []ack
	stores         int
	unavailable    int
	unavailableOps map[string]int // what was answered NO [UNAVAILABLE], by client and command
	disconnects    int
	failures       []string
}

func newLedger() *ledger {
	return &ledger{acked: map[string]uint32{}, unknown: map[string]bool{}, targeted: map[string]bool{}, expunged: map[string]bool{}, unavailableOps: map[string]int{}}
}

// noteError counts an allowed error or records a failure; it reports whether the connection
// must be dropped.
func (l *ledger) noteError(who, what string, err error) (reconnect bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch classifyIMAPError(err) {
	case errUnavailable:
		l.unavailable++
		l.unavailableOps[who+" "+what]++
		return false
	case errDisconnect:
		l.disconnects++
		return true
	default:
		l.failures = append(l.failures, fmt.Sprintf("%s: %s: %v", who, what, err))
		return true
	}
}

// firstAckAfter returns when the first APPEND sent after t0 was answered OK, zero if none.
func (l *ledger) firstAckAfter(t0 time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, a := range l.acks {
		if a.sent.After(t0) && (first.IsZero() || a.acked.Before(first)) {
			first = a.acked
		}
	}
	return first
}

func systemMessage(msgID string) []byte {
	return []byte("From: Writer <writer@strata.test>\r\nTo: u@acme.test\r\nSubject: system test\r\n" +
		"Message-ID: " + msgID + "\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nBody of " + msgID + ".\r\n")
}

// dialSystem connects to addr, logs in as u@acme.test and selects mailbox.
func dialSystem(addr, mailbox string, opts *imapclient.Options) (*imapclient.Client, *imap.SelectData, error) {
	return dialAs(addr, "u@acme.test", mailbox, opts)
}

// dialAs connects to addr, logs in as user (password pw) and selects mailbox.
func dialAs(addr, user, mailbox string, opts *imapclient.Options) (*imapclient.Client, *imap.SelectData, error) {
	c, err := imapclient.DialInsecure(addr, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Login(user, "pw").Wait(); err != nil {
		c.Close()
		return nil, nil, err
	}
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, sel, nil
}

// imapWriter APPENDs to INBOX through one frontend until stop is closed; it flags every
// third message it appended and expunges every fifth (STORE +FLAGS \Deleted, UID EXPUNGE).
func imapWriter(id int, addr string, l *ledger, stop <-chan struct{}) {
	who := fmt.Sprintf("writer %d", id)
	var c *imapclient.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	drop := func() {
		c.Close()
		c = nil
	}
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		if c == nil {
			var err error
			if c, _, err = dialSystem(addr, "INBOX", nil); err != nil {
				l.noteError(who, "connect", err)
				c = nil
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		msgID := fmt.Sprintf("<sys-%d-%d@strata.test>", id, n)
		sent := time.Now()
		uid, err := appendMessage(c, "INBOX", systemMessage(msgID), nil)
		if err != nil {
			l.mu.Lock()
			l.unknown[msgID] = true
			l.mu.Unlock()
			if l.noteError(who, "APPEND", err) {
				drop()
			}
			continue
		}
		l.mu.Lock()
		l.acked[msgID] = uid
		l.acks = append(l.acks, ack{sent: sent, acked: time.Now()})
		l.mu.Unlock()

		set := imap.UIDSetNum(imap.UID(uid))
		switch {
		case n%5 == 0:
			l.mu.Lock()
			l.targeted[msgID] = true
			l.mu.Unlock()
			err = c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
			if err == nil {
				err = c.UIDExpunge(set).Close()
				if err == nil {
					l.mu.Lock()
					l.expunged[msgID] = true
					l.mu.Unlock()
				}
			}
		case n%3 == 0:
			err = c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
			if err == nil {
				l.mu.Lock()
				l.stores++
				l.mu.Unlock()
			}
		}
		if err != nil && l.noteError(who, "STORE/EXPUNGE", err) {
			drop()
		}
	}
}

// idleWatcher keeps a client in IDLE on one mailbox of one frontend and tracks the message
// count its untagged EXISTS responses announce, with when each arrived.
type idleWatcher struct {
	addr, mailbox string
	l             *ledger

	mu         sync.Mutex
	exists     uint32
	reachedAt  map[uint32]time.Time // when exists first reached each count
	changed    chan struct{}        // closed and replaced at every change of exists
	reconnects int
}

func newIdleWatcher(addr, mailbox string, l *ledger) *idleWatcher {
	return &idleWatcher{addr: addr, mailbox: mailbox, l: l, reachedAt: map[uint32]time.Time{}, changed: make(chan struct{})}
}

func (w *idleWatcher) set(n uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for i := w.exists + 1; i <= n; i++ {
		if _, ok := w.reachedAt[i]; !ok {
			w.reachedAt[i] = now
		}
	}
	w.exists = n
	close(w.changed)
	w.changed = make(chan struct{})
}

// run stays in IDLE until stop is closed, reconnecting (and counting it) when the
// connection breaks.
func (w *idleWatcher) run(stop <-chan struct{}) {
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				w.set(*d.NumMessages)
			}
		},
	}}
	for first := true; ; first = false {
		if !first {
			w.mu.Lock()
			w.reconnects++
			w.mu.Unlock()
		}
		c, sel, err := dialSystem(w.addr, w.mailbox, opts)
		if err != nil {
			w.l.noteError("idle watcher", "connect", err)
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		w.set(sel.NumMessages)
		idle, err := c.Idle()
		if err != nil {
			w.l.noteError("idle watcher", "IDLE", err)
			c.Close()
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		select {
		case <-stop:
			idle.Close()
			idle.Wait()
			c.Logout().Wait()
			c.Close()
			return
		case <-c.Closed():
			w.l.noteError("idle watcher", "IDLE", io.EOF)
		}
	}
}

// waitExists waits until the watcher has seen at least n messages and returns when the
// count first reached n (which may precede the APPEND's OK on the other frontend).
func (w *idleWatcher) waitExists(n uint32, timeout time.Duration) (time.Time, bool) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		exists, changed, at := w.exists, w.changed, w.reachedAt[n]
		w.mu.Unlock()
		if exists >= n {
			return at, true
		}
		select {
		case <-changed:
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// mailboxContents is what a UID FETCH of every message's Message-ID and Subject returned.
type mailboxContents struct {
	uids     []uint32
	byMID    map[string][]uint32
	subjects map[uint32]string
}

// fetchMessageIDs SELECTs mailbox on addr as u@acme.test and returns each message's UID and
// Message-ID, retrying on allowed errors for up to a minute.
func fetchMessageIDs(addr, mailbox string) (*mailboxContents, error) {
	return fetchMessageIDsAs(addr, "u@acme.test", mailbox)
}

// fetchMessageIDsAs is fetchMessageIDs logged in as user.
func fetchMessageIDsAs(addr, user, mailbox string) (*mailboxContents, error) {
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID", "Subject"}, Peek: true}
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := func() (*mailboxContents, error) {
			c, sel, err := dialAs(addr, user, mailbox, nil)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			res := &mailboxContents{byMID: map[string][]uint32{}, subjects: map[uint32]string{}}
			if sel.NumMessages == 0 {
				return res, nil
			}
			msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
				UID: true, BodySection: []*imap.FetchItemBodySection{section},
			}).Collect()
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				uid := uint32(m.UID)
				res.uids = append(res.uids, uid)
				header := m.FindBodySection(section)
				mid := parseHeaderField(header, "Message-ID")
				res.byMID[mid] = append(res.byMID[mid], uid)
				res.subjects[uid] = parseHeaderField(header, "Subject")
			}
			return res, nil
		}()
		if err == nil || classifyIMAPError(err) == errOther || time.Now().After(deadline) {
			return got, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// parseHeaderField returns the value of the first unfolded field name in header.
func parseHeaderField(header []byte, name string) string {
	for _, line := range bytes.Split(header, []byte("\r\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), name) {
			return strings.TrimSpace(string(v))
		}
	}
	return ""
}

// sortedKeys is for stable failure messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// modseqMonitor samples the mailbox's HIGHESTMODSEQ and UIDNEXT on the leader (linearizable
// reads) and records any decrease.
type modseqMonitor struct {
	mu         sync.Mutex
	samples    int
	highest    uint64
	uidNext    uint32
	violations []string
}

func (m *modseqMonitor) observe(modseq uint64, uidNext uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples++
	if modseq < m.highest {
		m.violations = append(m.violations, fmt.Sprintf("HIGHESTMODSEQ went from %d to %d", m.highest, modseq))
	}
	if uidNext < m.uidNext {
		m.violations = append(m.violations, fmt.Sprintf("UIDNEXT went from %d to %d", m.uidNext, uidNext))
	}
	m.highest, m.uidNext = max(m.highest, modseq), max(m.uidNext, uidNext)
}

// sampleUntil calls get every 100ms until stop is closed; get's errors (a leader change) are
// skipped.
func (m *modseqMonitor) sampleUntil(stop <-chan struct{}, get func(context.Context) (uint64, uint32, error)) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		modseq, uidNext, err := get(ctx)
		cancel()
		if err == nil {
			m.observe(modseq, uidNext)
		}
	}
}

// check compares what INBOX holds (got) with what the clients were told: UIDs from APPENDUID
// (RFC 4315 3) never handed out twice, UIDs ascending, every acknowledged APPEND there once
// under its UID unless its UID EXPUNGE was acknowledged, nothing no client appended. The
// caller holds no lock on l.
func (l *ledger) check(t *testing.T, got *mailboxContents) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	owner := map[uint32]string{}
	for mid, uid := range l.acked {
		if other, dup := owner[uid]; dup {
			t.Errorf("UID %d was acknowledged for both %s and %s", uid, other, mid)
		}
		owner[uid] = mid
	}

	// INBOX holds every acknowledged APPEND once under its UID, less the ones expunged.
	for i := 1; i < len(got.uids); i++ {
		if got.uids[i] <= got.uids[i-1] {
			t.Fatalf("UIDs not strictly ascending at %d: %d after %d", i, got.uids[i], got.uids[i-1])
		}
	}
	for _, mid := range sortedKeys(l.acked) {
		uids := got.byMID[mid]
		switch {
		case l.expunged[mid]:
			if len(uids) != 0 {
				t.Errorf("%s was expunged (UID STORE +FLAGS \\Deleted and UID EXPUNGE of its APPENDUID %d OK) but is in INBOX as %v", mid, l.acked[mid], uids)
			}
		case l.targeted[mid]:
			if len(uids) > 1 || len(uids) == 1 && uids[0] != l.acked[mid] {
				t.Errorf("%s (UID %d, expunge outcome unknown) is in INBOX as %v", mid, l.acked[mid], uids)
			}
		case len(uids) != 1 || uids[0] != l.acked[mid]:
			t.Errorf("acknowledged APPEND %s (UID %d) is in INBOX as %v", mid, l.acked[mid], uids)
		}
	}
	for _, mid := range sortedKeys(got.byMID) {
		uids := got.byMID[mid]
		if _, acked := l.acked[mid]; !acked && !l.unknown[mid] {
			t.Errorf("INBOX holds %s (UIDs %v), which no client appended", mid, uids)
		}
		if len(uids) > 1 {
			t.Errorf("%s is in INBOX %d times: %v", mid, len(uids), uids)
		}
	}
}

// startS3Frontends starts an S3 gateway and two `strata frontend` processes, A and B, that
// find the metadata nodes through etcd and store bodies in bucket of the gateway, whose
// keys they inherit from the test's environment.
func startS3Frontends(t *testing.T, etcd, bucket string) (feA, feB *frontendProcess) {
	t.Helper()
	blobs := s3test.Start(t, s3test.Options{})
	t.Setenv(s3.EnvAccessKey, blobs.AccessKey)
	t.Setenv(s3.EnvSecretKey, blobs.SecretKey)
	s3Args := []string{"--blob", "s3", "--s3-endpoint", blobs.Endpoint, "--s3-bucket", bucket, "--s3-insecure", "--s3-path-style"}
	return startFrontend(t, "A", etcd, s3Args...), startFrontend(t, "B", etcd, s3Args...)
}
