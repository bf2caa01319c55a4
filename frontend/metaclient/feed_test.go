package metaclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/embedded"
	imapserver "github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// startFrontend serves IMAP on 127.0.0.1 with its own metaclient over the group, as a
// separate `strata frontend` process would, and bodies in the shared blobDir.
func startFrontend(t testing.TB, g *group, blobDir string) string {
	t.Helper()
	blobs, err := fs.New(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	srv := imapserver.NewServer(imapserver.Config{
		Metadata:       metadatapb.NewMetadataClient(newClient(t, g.nodes())),
		Blobs:          blobs,
		SpoolDir:       t.TempDir(),
		Logger:         quietLogger(),
		TrustLoopback:  true,
		MaxMessageSize: 1 << 20,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shut down frontend: %v", err)
		}
		if err := <-served; !errors.Is(err, imapserver.ErrServerClosed) {
			t.Errorf("frontend serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// event is an unsolicited response an IDLE session received, and when.
type event struct {
	text string
	at   time.Time
}

// idler is a session selected on INBOX that records its unilateral responses.
type idler struct {
	*imapclient.Client
	events chan event
}

func newIdler(t testing.TB, addr string) *idler {
	t.Helper()
	w := &idler{events: make(chan event, 1000)}
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Expunge: func(seq uint32) { w.events <- event{fmt.Sprintf("EXPUNGE %d", seq), time.Now()} },
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					w.events <- event{fmt.Sprintf("EXISTS %d", *data.NumMessages), time.Now()}
				}
			},
			Fetch: func(msg *imapclient.FetchMessageData) {
				buf, err := msg.Collect()
				if err != nil {
					w.events <- event{"FETCH error " + err.Error(), time.Now()}
					return
				}
				flags := slices.DeleteFunc(buf.Flags, func(f imap.Flag) bool { return f == `\Recent` })
				w.events <- event{fmt.Sprintf("FETCH %d %v", buf.SeqNum, flags), time.Now()}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.Client = c
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return w
}

// expect waits for the next event, checks it and returns when it arrived.
func (w *idler) expect(t testing.TB, want string) time.Time {
	t.Helper()
	select {
	case got := <-w.events:
		if got.text != want {
			t.Fatalf("event %q, want %q", got.text, want)
		}
		return got.at
	case <-time.After(testWait):
		t.Fatalf("no event, want %q", want)
	}
	return time.Time{}
}

func loginClient(t testing.TB, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// appendMessage appends a small message to INBOX and returns when the command was sent
// and when its OK arrived.
func appendMessage(t testing.TB, c *imapclient.Client, n int) (sent, ok time.Time) {
	t.Helper()
	sent = time.Now()
	msg := strings.ReplaceAll(fmt.Sprintf("From: a@example.org\nTo: demo@example.com\nSubject: %d\nMessage-ID: <%d@example.org>\n\nbody %d\n", n, n, n), "\n", "\r\n")
	cmd := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := io.WriteString(cmd, msg); err != nil {
		t.Fatalf("append %d: write: %v", n, err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("append %d: close: %v", n, err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append %d: %v", n, err)
	}
	return sent, time.Now()
}

// twoFrontends starts a group, the demo account and two frontends sharing one blob directory.
func twoFrontends(t testing.TB) (*group, string, string) {
	g := startGroup(t)
	c := newClient(t, g.nodes())
	createDemo(t, metadatapb.NewMetadataClient(c))
	blobDir := t.TempDir()
	return g, startFrontend(t, g, blobDir), startFrontend(t, g, blobDir)
}

// TestChangeFeedAcrossFrontendsAndFailover has a session IDLE on frontend A while frontend
// B appends, stores and expunges; then the leader is killed while A is still in IDLE, and
// every later change still arrives, in order, with none skipped.
func TestChangeFeedAcrossFrontendsAndFailover(t *testing.T) {
	g, addrA, addrB := twoFrontends(t)
	a := newIdler(t, addrA)
	b := loginClient(t, addrB)
	idle, err := a.Idle()
	if err != nil {
		t.Fatal(err)
	}
	appendMessage(t, b, 1)
	a.expect(t, "EXISTS 1")
	appendMessage(t, b, 2)
	a.expect(t, "EXISTS 2")
	if err := b.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	a.expect(t, `FETCH 1 [\Deleted]`)
	if err := b.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	a.expect(t, "EXPUNGE 1")

	old := g.leader()
	g.kill(old)
	start := time.Now()
	// B's first write waits for the new leader (NO [UNAVAILABLE] is not expected: the
	// metaclient retries within the command's deadline).
	appendMessage(t, b, 3)
	t.Logf("killed leader %s; first APPEND after it took %s; new leader %s", old.id, time.Since(start), g.leader().id)
	a.expect(t, "EXISTS 2")
	for n := 4; n <= 6; n++ {
		appendMessage(t, b, n)
		a.expect(t, fmt.Sprintf("EXISTS %d", n-1))
	}
	if err := b.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	a.expect(t, `FETCH 2 [\Seen]`)
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := a.Mailbox().NumMessages; n != 5 {
		t.Errorf("session A counts %d messages, want 5", n)
	}
}

// TestChangeFeedLatency measures, over 200 APPENDs through frontend B, the time from B's
// APPEND OK (the commit is acknowledged) to the untagged EXISTS on an IDLE session of
// frontend A. Run with -v to see the percentiles; nothing is asserted about them.
func TestChangeFeedLatency(t *testing.T) {
	const samples = 200
	_, addrA, addrB := twoFrontends(t)
	a := newIdler(t, addrA)
	b := loginClient(t, addrB)
	idle, err := a.Idle()
	if err != nil {
		t.Fatal(err)
	}
	latencies := make([]time.Duration, 0, samples)
	endToEnd := make([]time.Duration, 0, samples)
	early := 0
	for n := 1; n <= samples; n++ {
		sent, committed := appendMessage(t, b, n)
		seen := a.expect(t, fmt.Sprintf("EXISTS %d", n))
		endToEnd = append(endToEnd, seen.Sub(sent))
		d := seen.Sub(committed)
		if d < 0 {
			// A's EXISTS came before B's tagged OK was read: the feed beat the response.
			early++
			d = 0
		}
		latencies = append(latencies, d)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(latencies)
	slices.Sort(endToEnd)
	pct := func(d []time.Duration, p int) time.Duration { return d[(len(d)*p+99)/100-1] }
	t.Logf("APPEND OK on B to EXISTS on A, %d samples: p50 %s, p90 %s, p99 %s, max %s (%d EXISTS arrived before the APPEND OK, counted as 0)",
		samples, pct(latencies, 50), pct(latencies, 90), pct(latencies, 99), latencies[len(latencies)-1], early)
	t.Logf("APPEND sent to B to EXISTS on A, %d samples: p50 %s, p90 %s, p99 %s, max %s",
		samples, pct(endToEnd, 50), pct(endToEnd, 90), pct(endToEnd, 99), endToEnd[len(endToEnd)-1])
}
