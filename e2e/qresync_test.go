package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/testwait"
)

// TestQResyncAcrossFrontends: a client on frontend A of a 3-node cluster remembers the
// mailbox (UIDVALIDITY, HIGHESTMODSEQ) and disconnects; through frontend B messages are
// flagged, expunged and appended, the metadata leader is SIGKILLed and more changes follow
// under the new leader; back on A, SELECT (QRESYNC ...) (RFC 7162 3.2.5) tells exactly what
// changed: VANISHED (EARLIER) for the expunged UIDs, FETCH for the changed flags, the new
// EXISTS, and UID FETCH (CHANGEDSINCE ... VANISHED) agrees.
func TestQResyncAcrossFrontends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd, nodes := startVoters(t, ctx)
	addClusterAccount(t, etcd)
	blobDir := t.TempDir() // one filesystem blob store for both frontends of this machine
	feA := startFrontend(t, "A", etcd, "--blob-dir", blobDir)
	feB := startFrontend(t, "B", etcd, "--blob-dir", blobDir)

	// The frontends learn the metadata nodes from etcd just after they start.
	for _, fe := range []*frontendProcess{feA, feB} {
		testwait.Until(t, 30*time.Second, func() error {
			c, _, err := dialSystem(fe.imapAddr, "INBOX", nil)
			if err != nil {
				return fmt.Errorf("frontend %s: %w", fe.name, err)
			}
			c.Close()
			return nil
		})
	}
	mustOK := func(c *rawIMAP, line string) []string {
		t.Helper()
		rep := c.cmd(line)
		if !rep.ok() {
			t.Fatalf("%.60s: %s", line, rep)
		}
		return rep.untagged
	}
	writer := dialRaw(t, feB.imapAddr, "u@acme.test", "pw")
	for i := range 5 {
		mustOK(writer, "APPEND INBOX "+lit(string(systemMessage(fmt.Sprintf("<qresync-%d@strata.test>", i)))))
	}
	mustOK(writer, "SELECT INBOX")

	a := dialRaw(t, feA.imapAddr, "u@acme.test", "pw")
	mustOK(a, "ENABLE QRESYNC")
	sel := mustOK(a, "SELECT INBOX")
	uidValidity := matchNumber(t, sel, `UIDVALIDITY (\d+)`)
	known := matchNumber(t, sel, `HIGHESTMODSEQ (\d+)`)
	mustOK(a, "LOGOUT")

	// While A is away: B flags 2, expunges 3, appends one; the leader dies; B flags 4.
	mustOK(writer, `UID STORE 2 +FLAGS.SILENT (\Flagged)`)
	mustOK(writer, `UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	mustOK(writer, "UID EXPUNGE 3")
	mustOK(writer, "APPEND INBOX "+lit(string(systemMessage("<qresync-new@strata.test>"))))
	leader := leaderOf(t, ctx, nodes)
	leader.signal(syscall.SIGKILL)
	testwait.Until(t, 60*time.Second, func() error {
		if rep := writer.cmd(`UID STORE 4 +FLAGS.SILENT ($Later)`); !rep.ok() {
			return fmt.Errorf("no STORE succeeded after the leader %s was killed: %s", leader.id, rep)
		}
		return nil
	})
	t.Logf("leader %s killed; changes went on under the new leader", leader.id)

	a = dialRaw(t, feA.imapAddr, "u@acme.test", "pw")
	mustOK(a, "ENABLE QRESYNC")
	got := mustOK(a, fmt.Sprintf("SELECT INBOX (QRESYNC (%d %d 1:5))", uidValidity, known))
	fetches := linesMatching(got, " FETCH ")
	if !slices.Contains(got, "* VANISHED (EARLIER) 3") || !slices.Contains(got, "* 5 EXISTS") || len(fetches) != 2 ||
		!strings.Contains(fetches[0], `UID 2 FLAGS (\Flagged)`) || !strings.Contains(fetches[1], `UID 4 FLAGS ($Later)`) {
		t.Fatalf("SELECT (QRESYNC) on frontend A after the changes on B and a leader change: %q", got)
	}
	got = mustOK(a, fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", known))
	if len(got) != 4 || got[0] != "* VANISHED (EARLIER) 3" {
		t.Fatalf("UID FETCH (CHANGEDSINCE VANISHED): %q (want VANISHED, then 2, 4 and the new message)", got)
	}
}

func matchNumber(t *testing.T, lines []string, re string) uint64 {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(strings.Join(lines, "\n"))
	if m == nil {
		t.Fatalf("no %s in %q", re, lines)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

func linesMatching(lines []string, sub string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}
