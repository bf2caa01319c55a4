package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// lmtpRecipients are the accounts the LMTP clients deliver to: odd messages go to the first,
// even ones to both (one body, two per-recipient replies).
var lmtpRecipients = []string{"u@acme.test", "v@acme.test"}

// lmtpLedger records every per-recipient reply the LMTP clients of TestSystemLMTP got.
type lmtpLedger struct {
	mu sync.Mutex
	// sent maps each recipient to the Message-IDs delivered to it, with the Subject token.
	sent map[string]map[string]string
	// acked holds "recipient Message-ID" of every 250 after DATA.
	acked     map[string]bool
	acks      []ack
	replies   map[int]int // reply code (RCPT refusals and DATA replies) -> count
	temporary int         // 4xx replies, at RCPT or after DATA
	// unknown counts recipients whose DATA reply the client never read (connection lost).
	unknown  int
	retries  int
	failures []string
}

func (l *lmtpLedger) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
}

func (l *lmtpLedger) reply(code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.replies[code]++
	if code/100 == 4 {
		l.temporary++
	}
}

func (l *lmtpLedger) firstAckAfter(t0 time.Time) time.Time {
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

func lmtpSystemMessage(msgID, token string, to []string) []byte {
	return []byte("From: MTA <mta@strata.test>\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: lmtp " + token + "\r\n" +
		"Message-ID: " + msgID + "\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nBody of " + token + ".\r\n")
}

// lmtpClient delivers uniquely numbered messages until stop is closed. Like an MTA it keeps
// a message queued for the recipients that got a 4xx or whose reply was lost, and retries
// them, alternating between the frontends, until each got a 250 (RFC 5321 4.5.4.1); a 5xx
// is a failure of the test.
func lmtpClient(id int, addrs []string, l *lmtpLedger, stop <-chan struct{}) {
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		token := fmt.Sprintf("tok-%d-%d", id, n)
		msgID := fmt.Sprintf("<lmtp-%d-%d@strata.test>", id, n)
		to := lmtpRecipients[:1]
		if n%2 == 0 {
			to = lmtpRecipients
		}
		body := lmtpSystemMessage(msgID, token, to)
		l.mu.Lock()
		for _, rcpt := range to {
			l.sent[rcpt][msgID] = token
		}
		l.mu.Unlock()

		pending := append([]string(nil), to...)
		giveUp := time.Now().Add(40 * time.Second)
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				if time.Now().After(giveUp) {
					l.fail("client %d: %s still undelivered to %v after 40s of retries", id, msgID, pending)
					return
				}
				l.mu.Lock()
				l.retries++
				l.mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
			// Every fifth message loses its first attempt's replies: the connection closes
			// right after the end of the data, as when the MTA's link breaks, and the
			// retry through the other frontend must dedup what the first one committed.
			loseReplies := attempt == 0 && n%5 == 0
			pending = lmtpAttempt(id, addrs[(id+attempt)%len(addrs)], msgID, body, pending, loseReplies, l)
		}
	}
}

// lmtpAttempt runs one LMTP transaction on a fresh connection for the recipients in pending
// and returns those still to be retried.
// With loseReplies the connection is closed as soon as the end of the data is sent.
func lmtpAttempt(id int, addr, msgID string, body []byte, pending []string, loseReplies bool, l *lmtpLedger) []string {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		l.fail("client %d: dial %s: %v", id, addr, err) // the frontends stay up
		return pending
	}
	if loseReplies {
		conn = &closeAfterData{Conn: conn}
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	c.CommandTimeout = 30 * time.Second
	c.SubmissionTimeout = 30 * time.Second
	// classify counts a command's error; a reply code is a 4xx to retry or a 5xx failure,
	// anything else a broken connection (the outcome stays unknown and is retried).
	classify := func(what string, err error) {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			l.reply(se.Code)
			if se.Code/100 != 4 {
				l.fail("client %d: %s %s: %v", id, what, msgID, err)
			}
		}
	}
	if err := c.Hello("mta.strata.test"); err != nil {
		classify("LHLO", err)
		return pending
	}
	if err := c.Mail("mta@strata.test", nil); err != nil {
		classify("MAIL", err)
		return pending
	}
	var rcpts, retry []string
	for _, rcpt := range pending {
		if err := c.Rcpt(rcpt, nil); err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				return pending
			}
			classify("RCPT "+rcpt, err)
			retry = append(retry, rcpt)
			continue
		}
		rcpts = append(rcpts, rcpt)
	}
	if len(rcpts) == 0 {
		c.Quit()
		return retry
	}
	sent := time.Now()
	w, err := c.Data()
	if err != nil {
		classify("DATA", err)
		return pending
	}
	if _, err := w.Write(body); err != nil {
		l.mu.Lock()
		l.unknown += len(rcpts)
		l.mu.Unlock()
		return pending
	}
	// RFC 2033 4.2: one reply per recipient accepted at RCPT, in RCPT order.
	ok, err := w.CloseWithLMTPResponse()
	var perRcpt smtp.LMTPDataError
	errors.As(err, &perRcpt)
	for _, rcpt := range rcpts {
		if _, got := ok[rcpt]; got {
			l.reply(250)
			l.mu.Lock()
			key := rcpt + " " + msgID
			if l.acked[key] {
				l.failures = append(l.failures, fmt.Sprintf("client %d: %s got a second 250 for %s", id, msgID, rcpt))
			}
			l.acked[key] = true
			l.acks = append(l.acks, ack{sent: sent, acked: time.Now()})
			l.mu.Unlock()
			continue
		}
		retry = append(retry, rcpt)
		if se := perRcpt[rcpt]; se != nil {
			classify("DATA reply for "+rcpt, se)
		} else {
			l.mu.Lock()
			l.unknown++
			l.mu.Unlock()
		}
	}
	if err == nil {
		c.Quit()
	}
	return retry
}

// closeAfterData closes the connection once a write ends with the end of the data
// (RFC 5321 4.1.1.4: CRLF.CRLF), before any reply can be read.
type closeAfterData struct{ net.Conn }

func (c *closeAfterData) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil && bytes.HasSuffix(b, []byte("\r\n.\r\n")) {
		c.Conn.Close()
	}
	return n, err
}

// TestSystemLMTP is issue 12's cluster acceptance test: LMTP clients deliver through both
// frontends of a three-node metadata group while the test SIGKILLs the leader and restarts
// it, and every fifth message loses its first attempt's replies to a closed connection.
// Every recipient that got 250 holds the message exactly once; a 4xx or a lost reply is
// retried like an MTA does (through the other frontend), and the retries dedup, so in the end
// every message is in every recipient's INBOX exactly once; no reply is a 5xx.
func TestSystemLMTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	etcd, nodes := startVoters(t, ctx)
	addClusterAccount(t, etcd)
	clusterAdmin(t, etcd, "user", "add", lmtpRecipients[1], "--password", "pw")

	feA, feB := startS3Frontends(t, etcd, "strata-lmtp")
	if feA.lmtpAddr == "" || feB.lmtpAddr == "" {
		t.Fatalf("frontends without LMTP: %q, %q", feA.lmtpAddr, feB.lmtpAddr)
	}
	addrs := []string{feA.lmtpAddr, feB.lmtpAddr}

	l := &lmtpLedger{sent: map[string]map[string]string{}, acked: map[string]bool{}, replies: map[int]int{}}
	for _, rcpt := range lmtpRecipients {
		l.sent[rcpt] = map[string]string{}
	}
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for i := range 4 { // two starting on each frontend
		clients.Add(1)
		go func() { defer clients.Done(); lmtpClient(i, addrs, l, stop) }()
	}
	stopClients := sync.OnceFunc(func() { close(stop); clients.Wait() })
	t.Cleanup(stopClients)
	time.Sleep(3 * time.Second)

	leader := leaderOf(t, ctx, nodes)
	killedAt := time.Now()
	leader.signal(syscall.SIGKILL)
	var firstOK time.Time
	for waitUntil := time.Now().Add(30 * time.Second); firstOK.IsZero(); time.Sleep(5 * time.Millisecond) {
		if firstOK = l.firstAckAfter(killedAt); firstOK.IsZero() && time.Now().After(waitUntil) {
			t.Fatal("no LMTP delivery sent after the leader's SIGKILL was answered 250 within 30s")
		}
	}
	t.Logf("LMTP delivery unavailable after SIGKILL of leader %s: %v", leader.id, firstOK.Sub(killedAt).Round(time.Millisecond))
	time.Sleep(time.Second)
	leader.waitReady(leader.start())
	time.Sleep(2 * time.Second)
	stopClients()

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Errorf("LMTP clients saw %d failures (5xx, unexpected 250s, unreachable frontends): %v", len(l.failures), l.failures)
	}
	delivered := 0
	for _, rcpt := range lmtpRecipients {
		got, err := fetchMessageIDsAs(feB.imapAddr, rcpt, "INBOX")
		if err != nil {
			t.Fatalf("UID FETCH of %s's INBOX: %v", rcpt, err)
		}
		delivered += len(got.uids)
		for _, mid := range sortedKeys(l.sent[rcpt]) {
			uids := got.byMID[mid]
			switch {
			case l.acked[rcpt+" "+mid] && len(uids) != 1:
				t.Errorf("%s got 250 for %s but holds it %d times: UIDs %v", rcpt, mid, len(uids), uids)
			case !l.acked[rcpt+" "+mid] && len(uids) > 1:
				t.Errorf("%s never got 250 for %s but holds it %d times: UIDs %v", rcpt, mid, len(uids), uids)
			case !l.acked[rcpt+" "+mid]:
				// Only when a client gave up, which is a failure reported above.
				t.Errorf("%s never got 250 for %s (in INBOX %d times)", rcpt, mid, len(uids))
			}
			for _, uid := range uids {
				if want := "lmtp " + l.sent[rcpt][mid]; got.subjects[uid] != want {
					t.Errorf("%s UID %d (%s) has Subject %q, want %q", rcpt, uid, mid, got.subjects[uid], want)
				}
			}
		}
		for _, mid := range sortedKeys(got.byMID) {
			if _, sent := l.sent[rcpt][mid]; !sent {
				t.Errorf("%s's INBOX holds %s (UIDs %v), which no client delivered to it", rcpt, mid, got.byMID[mid])
			}
		}
	}
	t.Logf("LMTP: %d recipient deliveries answered 250 (%d distinct), %d 4xx replies, %d replies lost with the connection, "+
		"%d retries; replies by code %v; %d messages in the INBOXes",
		len(l.acks), len(l.acked), l.temporary, l.unknown, l.retries, l.replies, delivered)
}
