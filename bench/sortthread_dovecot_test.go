package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/dovecottest"
	"github.com/strata-mail/strata/internal/embeddedtest"
)

// The differential test of SORT and THREAD (RFC 5256, RFC 5957): the same generated corpus
// (Corpus: threads, RFC 2047 and raw UTF-8 headers), plus messages for the edge cases (no
// Date, an unparseable Date, no Message-ID, a References loop, a missing parent), is appended
// in the same order with the same internal dates to an in-process `strata serve` and to
// Debian's Dovecot, and every SORT key, with and without REVERSE and in combinations, and
// every THREAD algorithm must answer the same sequence numbers on both.

// dovecotServer is the Dovecot this test binary started (once, on first use), or why not.
var dovecotServer struct {
	once sync.Once
	srv  *dovecottest.Server
	dir  string
	err  error
}

const (
	dovecotUser     = "sorter@example.com"
	dovecotPassword = "sortpass"
)

// startDovecot starts Dovecot once per test binary on a loopback port, as bench/dovecot.sh
// configures it (sdbox mail, passwd-file users, no TLS); TestMain stops it.
func startDovecot(t *testing.T) string {
	t.Helper()
	d := &dovecotServer
	d.once.Do(func() {
		if d.dir, d.err = os.MkdirTemp("", "strata-sort-dovecot-"); d.err != nil {
			return
		}
		d.srv, d.err = dovecottest.Start(d.dir, dovecottest.Options{
			Instance: "strata-sort",
			Users:    []dovecottest.User{{Name: dovecotUser, Password: dovecotPassword}},
		})
	})
	if d.err != nil {
		t.Fatal(d.err)
	}
	return d.srv.IMAPAddr
}

// stopDovecot stops the Dovecot startDovecot started, if any.
func stopDovecot() {
	d := &dovecotServer
	if d.srv != nil {
		d.srv.Stop()
	}
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopDovecot()
	os.Exit(code)
}

// rawIMAP is a line-level IMAP client: it sends a command and returns its untagged lines.
type rawIMAP struct {
	t   *testing.T
	nc  net.Conn
	r   *bufio.Reader
	tag int
}

func dialIMAP(t *testing.T, addr, user, password string) *rawIMAP {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawIMAP{t: t, nc: nc, r: bufio.NewReader(nc)}
	c.line()
	c.run(fmt.Sprintf("LOGIN %q %q", user, password))
	return c
}

func (c *rawIMAP) line() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(time.Minute))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// run sends a command (literal, when not empty, goes after it as a non-synchronizing
// literal, RFC 7888) and returns the untagged responses; anything but OK fails the test.
func (c *rawIMAP) run(cmd string, literal ...[]byte) []string {
	c.t.Helper()
	c.tag++
	tag := fmt.Sprintf("d%d", c.tag)
	out := tag + " " + cmd
	if len(literal) > 0 {
		out += fmt.Sprintf(" {%d+}\r\n%s", len(literal[0]), literal[0])
	}
	if _, err := c.nc.Write([]byte(out + "\r\n")); err != nil {
		c.t.Fatal(err)
	}
	var untagged []string
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				c.t.Fatalf("%s: %s", cmd, l)
			}
			return untagged
		}
		untagged = append(untagged, l)
	}
}

// answer returns the one untagged response of cmd that starts with prefix.
func (c *rawIMAP) answer(cmd, prefix string) string {
	c.t.Helper()
	for _, l := range c.run(cmd) {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	c.t.Fatalf("%s: no %s response", cmd, prefix)
	return ""
}

// edgeMessages are the RFC 5256 edge cases added to the corpus.
var edgeMessages = []string{
	"From: Nobody <nobody@example.org>\r\nSubject: Re: no date at all\r\nMessage-ID: <edge1@x>\r\n\r\nx\r\n",
	"From: =?UTF-8?Q?=C3=89lodie?= <elodie@example.org>\r\nDate: yesterday-ish\r\nSubject: [list] Fwd: unparseable date (fwd)\r\nMessage-ID: <edge2@x>\r\n\r\nx\r\n",
	"From: a@example.org\r\nDate: Mon, 1 Jan 2018 00:00:00 +0000\r\nSubject: [Fwd: wrapped]\r\n\r\nno Message-ID\r\n",
	"From: a@example.org\r\nDate: Mon, 1 Jan 2018 00:00:00 +0000\r\nSubject: loop one\r\nMessage-ID: <loopA@x>\r\nReferences: <loopB@x>\r\n\r\nx\r\n",
	"From: a@example.org\r\nDate: Mon, 1 Jan 2018 00:00:00 +0000\r\nSubject: Re: loop one\r\nMessage-ID: <loopB@x>\r\nReferences: <loopA@x>\r\n\r\nx\r\n",
	"From: b@example.org\r\nDate: Tue, 2 Jan 2018 00:00:00 +0000\r\nSubject: orphan\r\nMessage-ID: <orph1@x>\r\nReferences: <lost@x>\r\n\r\nx\r\n",
	"From: c@example.org\r\nDate: Wed, 3 Jan 2018 00:00:00 +0000\r\nSubject: Re: orphan\r\nMessage-ID: <orph2@x>\r\nIn-Reply-To: <lost@x>\r\n\r\nx\r\n",
}

// differentialQueries are the SORT and THREAD commands both servers answer.
var differentialQueries = func() []string {
	var q []string
	keys := []string{"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
	for _, k := range keys {
		q = append(q, "SORT ("+k+") UTF-8 ALL", "SORT (REVERSE "+k+") UTF-8 ALL")
	}
	q = append(q,
		"SORT (SUBJECT DATE) UTF-8 ALL",
		"SORT (REVERSE SUBJECT REVERSE DATE) UTF-8 ALL",
		"SORT (FROM REVERSE SIZE) UTF-8 ALL",
		"SORT (DISPLAYTO ARRIVAL) UTF-8 ALL",
		"SORT (CC SUBJECT REVERSE ARRIVAL) UTF-8 ALL",
		"SORT (DATE) UTF-8 SUBJECT "+SearchWord,
		"THREAD ORDEREDSUBJECT UTF-8 ALL",
		"THREAD REFERENCES UTF-8 ALL",
		"THREAD REFS UTF-8 ALL",
		"THREAD REFERENCES UTF-8 NOT SUBJECT "+SearchWord,
	)
	return q
}()

func TestSortThreadAgainstDovecot(t *testing.T) {
	dovecotAddr := startDovecot(t)
	srv := embeddedtest.Start(t, embedded.Config{Demo: true, AllowPlaintextAuth: true})
	strata := dialIMAP(t, srv.IMAPAddr(), embedded.DemoAccount, embedded.DemoPassword)
	dovecot := dialIMAP(t, dovecotAddr, dovecotUser, dovecotPassword)
	// A mailbox of its own on Dovecot, so that the test can run again against the same one.
	box := fmt.Sprintf("sort%d", time.Now().UnixNano())
	strata.run("CREATE " + box)
	dovecot.run("CREATE " + box)

	corpus := Corpus{Seed: 5256, MaxSize: 64 << 10}
	const n = 400
	var msgs [][]byte
	for i := range n {
		msgs = append(msgs, corpus.Message(1, i))
		if i%60 == 0 {
			msgs = append(msgs, []byte(edgeMessages[(i/60)%len(edgeMessages)]))
		}
	}
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, m := range msgs {
		// Internal dates that repeat, so ARRIVAL has ties broken by sequence number.
		internal := base.Add(time.Duration((i*7919)%97) * time.Hour).Format("02-Jan-2006 15:04:05 -0700")
		for _, c := range []*rawIMAP{strata, dovecot} {
			c.run(fmt.Sprintf("APPEND %s () %q", box, internal), m)
		}
	}
	strata.run("SELECT " + box)
	dovecot.run("SELECT " + box)
	for _, q := range differentialQueries {
		prefix := "* " + strings.Fields(q)[0]
		got, want := strata.answer(q, prefix), dovecot.answer(q, prefix)
		if got != want {
			t.Errorf("%s:\nstrata:  %s\ndovecot: %s", q, got, want)
		}
	}
	compareSearches(t, srv, box, strata, dovecot) // search_dovecot_test.go
}
