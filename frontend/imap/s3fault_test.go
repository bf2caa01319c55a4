package imap_test

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/s3test"
	"github.com/strata-mail/strata/internal/testwait"
)

// faultBucket is the bucket of the S3 fault tests.
const faultBucket = "strata-fault"

// startS3Server runs Strata with its bodies in a versitygw bucket, with short S3 timeouts so
// that an outage shows within seconds, and no body cache unless cacheSize is positive.
func startS3Server(t *testing.T, gw *s3test.Server, cacheSize int64) *embedded.Server {
	t.Helper()
	return startServerWith(t, func(cfg *embedded.Config) {
		cfg.S3 = &s3.Config{
			Endpoint: gw.Endpoint, Bucket: faultBucket, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey,
			Insecure: true, Addressing: s3.AddressingPath, Timeout: 2 * time.Second, Retries: 1,
		}
		cfg.BlobCacheSize = -1
		if cacheSize > 0 {
			cfg.BlobCacheSize = cacheSize
		}
	})
}

// faultMessage is the body a fault-test writer appends as its n-th message.
func faultMessage(writer, n int) string {
	return testMessage(fmt.Sprintf("writer %d message %d", writer, n), strings.Repeat(fmt.Sprintf("line %d of writer %d\n", n, writer), 20))
}

// isUnavailable reports whether err is a tagged NO [UNAVAILABLE].
func isUnavailable(err error) bool {
	var imapErr *imap.Error
	return errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeNo && imapErr.Code == imap.ResponseCodeUnavailable
}

// TestS3OutageDuringAppendAndFetch appends continuously from four sessions while the S3
// server is stopped and started again: APPENDs during the outage answer NO [UNAVAILABLE] and
// commit nothing, FETCH of a body answers NO [UNAVAILABLE] and its session goes on, and
// service resumes by itself. Afterwards the mailbox holds exactly the acknowledged messages,
// each with its body (no metadata points at a missing body).
func TestS3OutageDuringAppendAndFetch(t *testing.T) {
	gw := s3test.Start(t, s3test.Options{})
	srv := startS3Server(t, gw, 0)

	// A message appended before the outage and never read, so no cache could answer for it.
	reader := login(t, srv)
	early := appendMessage(t, reader, "INBOX", faultMessage(99, 0))
	if _, err := reader.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT: %v", err)
	}

	const writers = 4
	var (
		mu        sync.Mutex
		acked     = map[imap.UID]string{}
		refused   atomic.Int64 // NO [UNAVAILABLE]
		outage    atomic.Bool
		resumedOK atomic.Int64 // acknowledged after S3 came back
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	acked[early] = faultMessage(99, 0)
	for w := range writers {
		c := login(t, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				msg := faultMessage(w, n)
				wasDown := outage.Load()
				cmd := c.Append("INBOX", int64(len(msg)), nil)
				io.WriteString(cmd, msg)
				cmd.Close()
				data, err := cmd.Wait()
				switch {
				case err == nil:
					mu.Lock()
					acked[data.UID] = msg
					mu.Unlock()
					if !wasDown && !outage.Load() && refused.Load() > 0 {
						resumedOK.Add(1)
					}
				case isUnavailable(err):
					refused.Add(1)
					time.Sleep(50 * time.Millisecond)
				default:
					t.Errorf("writer %d APPEND %d: %v", w, n, err)
					return
				}
			}
		}()
	}

	time.Sleep(time.Second)
	outage.Store(true)
	gw.Stop()
	waitFor(t, 30*time.Second, "an APPEND refused with NO [UNAVAILABLE]", func() bool { return refused.Load() > 0 })

	_, err := reader.Fetch(imap.UIDSetNum(early), &imap.FetchOptions{
		UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if !isUnavailable(err) {
		t.Fatalf("UID FETCH BODY[] during the outage: %v, want NO [UNAVAILABLE]", err)
	}
	if err := reader.Noop().Wait(); err != nil {
		t.Fatalf("NOOP after the refused FETCH: %v", err)
	}

	gw.Start()
	outage.Store(false)
	waitFor(t, 30*time.Second, "an APPEND acknowledged after S3 returned", func() bool { return resumedOK.Load() > 0 })
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d APPENDs acknowledged, %d refused with NO [UNAVAILABLE]", len(acked), refused.Load())

	checkMailbox(t, login(t, srv), acked)
	// The reader's session, which saw a refused FETCH, reads the early message now.
	msgs, err := reader.Fetch(imap.UIDSetNum(early), &imap.FetchOptions{
		UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil || len(msgs) != 1 || string(msgs[0].FindBodySection(&imap.FetchItemBodySection{Peek: true})) != acked[early] {
		t.Fatalf("UID FETCH %d after the outage: %d messages, %v", early, len(msgs), err)
	}
}

// checkMailbox checks that INBOX holds exactly the messages of want, by UID, and that the
// body of each is served whole and hashes to the appended bytes.
func checkMailbox(t *testing.T, c *imapclient.Client, want map[imap.UID]string) {
	t.Helper()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	if int(sel.NumMessages) != len(want) {
		t.Errorf("INBOX holds %d messages, %d were acknowledged", sel.NumMessages, len(want))
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, BodySection: []*imap.FetchItemBodySection{whole},
	}).Collect()
	if err != nil {
		t.Fatalf("UID FETCH 1:* BODY.PEEK[]: %v", err)
	}
	seen := map[imap.UID]bool{}
	for _, m := range msgs {
		seen[m.UID] = true
		body, ok := want[m.UID]
		if !ok {
			t.Errorf("UID %d is in the mailbox but its APPEND was not acknowledged", m.UID)
			continue
		}
		if got := m.FindBodySection(whole); sha256.Sum256(got) != sha256.Sum256([]byte(body)) {
			t.Errorf("UID %d: body of %d bytes does not match the %d appended", m.UID, len(got), len(body))
		}
	}
	for uid := range want {
		if !seen[uid] {
			t.Errorf("acknowledged UID %d is missing", uid)
		}
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, timeout, func() error {
		if !cond() {
			return fmt.Errorf("no %s yet", what)
		}
		return nil
	})
}

// TestS3StallAnswersUnavailable stalls the S3 connection (the server accepts but never
// answers): APPEND and FETCH answer NO [UNAVAILABLE] once the store's deadline passes.
func TestS3StallAnswersUnavailable(t *testing.T) {
	gw := s3test.Start(t, s3test.Options{})
	proxy := s3test.NewProxy(t, gw.Endpoint)
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.S3 = &s3.Config{
			Endpoint: proxy.Addr, Bucket: faultBucket, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey,
			Insecure: true, Addressing: s3.AddressingPath, Timeout: time.Second, Retries: -1,
		}
		cfg.BlobCacheSize = -1
	})
	rc := loginRaw(t, srv)
	msg := testMessage("stall", "before the stall")
	rc.write(fmt.Sprintf("a1 APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	if _, tagged := rc.until("a1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("APPEND before the stall: %s", tagged)
	}
	rc.ok("SELECT INBOX")
	proxy.Stall()
	other := testMessage("stall", "during the stall")
	rc.write(fmt.Sprintf("a2 APPEND INBOX {%d+}\r\n%s\r\n", len(other), other))
	if _, tagged := rc.until("a2"); !strings.HasPrefix(tagged, "NO [UNAVAILABLE]") {
		t.Fatalf("APPEND during the stall: %s, want NO [UNAVAILABLE]", tagged)
	}
	rc.expect("FETCH 1 BODY.PEEK[]", "NO [UNAVAILABLE]")
	proxy.Resume()
	untagged := rc.ok("FETCH 1 BODY.PEEK[]")
	if !contains(untagged, "before the stall") {
		t.Fatalf("FETCH after the stall: %q", untagged)
	}
	if untagged, _ := rc.cmd("STATUS INBOX (MESSAGES)"); !contains(untagged, "MESSAGES 1)") {
		t.Fatalf("the refused APPEND was committed: %q", untagged)
	}
}

// TestS3CorruptBodyNotServed changes the bytes of a stored object: FETCH BODY[] never delivers
// the whole literal (the connection closes short of it), and with a body cache nothing of it
// is cached and served later either.
func TestS3CorruptBodyNotServed(t *testing.T) {
	gw := s3test.Start(t, s3test.Options{})
	srv := startS3Server(t, gw, 1<<20)
	// Large enough that the store's reader delivers it in many reads, the last of them
	// without its end: only a read past the last byte sees the hash check fail.
	msg := testMessage("corrupt", strings.Repeat("filler line\n", 30000)+"the original body")
	appendMessage(t, login(t, srv), "INBOX", msg)
	object := gw.ObjectPath(faultBucket, blobstore.Key(embedded.DemoTenant, sha256.Sum256([]byte(msg))))
	damaged := strings.Replace(msg, "original", "ORIGINAL", 1)
	if err := os.WriteFile(object, []byte(damaged), 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		got, complete := fetchRaw(t, srv)
		if complete {
			t.Fatalf("attempt %d: FETCH BODY[] served the corrupt body whole (%d bytes)", attempt, len(got))
		}
		if strings.Contains(got, "ORIGINAL body") {
			t.Fatalf("attempt %d: the end of the corrupt body reached the client (%d bytes)", attempt, len(got))
		}
	}
}

// fetchRaw logs in on a plain socket, selects INBOX and sends FETCH 1 BODY.PEEK[]; it returns
// what followed the literal's announcement until the server closed the connection, and
// whether the literal arrived whole.
func fetchRaw(t *testing.T, srv *embedded.Server) (string, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "a LOGIN %s %s\r\nb SELECT INBOX\r\nc FETCH 1 BODY.PEEK[]\r\nd LOGOUT\r\n", embedded.DemoAccount, embedded.DemoPassword)
	var size int
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("before the literal: %v", err)
		}
		if strings.HasPrefix(line, "* 1 FETCH (BODY[] {") {
			fmt.Sscanf(line[len("* 1 FETCH (BODY[] "):], "{%d}", &size)
			break
		}
		if strings.HasPrefix(line, "c ") {
			t.Fatalf("FETCH ended before a literal: %q", line)
		}
	}
	rest, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			t.Fatalf("the connection stayed open after a cut literal: %q", rest)
		}
	}
	return string(rest), len(rest) >= size+len(")\r\n") && strings.Contains(string(rest[size:]), "c OK")
}
