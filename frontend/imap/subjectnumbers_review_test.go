package imap_test

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
)

var tagField = regexp.MustCompile(`\(TAG "[^"]*"\) `)

// TestSortSubjectNumbersESortReview (review of subjnum24): ESORT (RFC 5267 3) and
// CONTEXT=SORT (RFC 5267 4) by SUBJECT on a mailbox whose messages all have subject
// numbers answer what the frontend without a cache answers from the strings: RETURN ALL,
// PARTIAL of REVERSE SUBJECT, a SORT (DATE) context opened after a SUBJECT sort warmed
// the numbers (its messages carry no subject string), a SUBJECT context, and their
// ADDTO updates after another session appends new subjects (first and last in order).
func TestSortSubjectNumbersESortReview(t *testing.T) {
	queries := []string{
		"UID SORT (SUBJECT) UTF-8 ALL",
		"UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL",
		"SORT RETURN (PARTIAL 1:20) (REVERSE SUBJECT) UTF-8 ALL",
		"UID SORT RETURN (MIN MAX COUNT) (SUBJECT DATE) UTF-8 ALL",
		"UID SORT RETURN (UPDATE PARTIAL 1:15) (DATE) UTF-8 ALL",
		"UID SORT RETURN (UPDATE PARTIAL 1:15) (SUBJECT) UTF-8 ALL",
		"UID SORT RETURN (UPDATE PARTIAL 1:15) (REVERSE SUBJECT ARRIVAL) UTF-8 ALL",
	}
	answers := func(srv *embedded.Server) []string {
		rc := prepareSortMailboxWith(t, srv, 31, func(int) bool { return false })
		var out []string
		keep := func(lines []string) {
			for _, line := range lines {
				if strings.HasPrefix(line, "* SORT") || strings.HasPrefix(line, "* ESEARCH") {
					if !strings.Contains(line, "ADDTO") && !strings.Contains(line, "REMOVEFROM") {
						line = tagField.ReplaceAllString(line, "") // the tags after the NOOPs differ
					}
					out = append(out, line)
				}
			}
		}
		for _, q := range queries {
			keep(rc.ok(q))
		}
		raws := sortCorpus(30, 32)
		for i := 0; i < len(raws); i += 3 {
			raws[i] = strings.Replace(raws[i], "Subject: ", fmt.Sprintf("Subject: %c%02d ", "az"[i%2], i), 1)
		}
		appendSortCorpus(t, srv, "INBOX", raws, func(int) bool { return false })
		for seen := false; !seen; {
			lines := rc.ok("NOOP")
			keep(lines)
			seen = slices.Contains(lines, "* 641 EXISTS")
			if !seen {
				time.Sleep(10 * time.Millisecond)
			}
		}
		time.Sleep(200 * time.Millisecond)
		keep(rc.ok("NOOP")) // the last updates
		for _, q := range queries[:4] {
			keep(rc.ok(q))
		}
		return out
	}
	imap.SetSortColumnMin(t, math.MaxInt64)
	want := answers(startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.SortCacheMessages = -1 }))
	imap.SetSortColumnMin(t, 1)
	before := imap.SubjectOrdersRead()
	got := answers(startServer(t))
	if !slices.ContainsFunc(want, func(l string) bool { return strings.Contains(l, "ADDTO") }) {
		t.Fatalf("no ADDTO update among %d answers", len(want))
	}
	slices.Sort(got) // updates may come in other NOOPs
	slices.Sort(want)
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("answer %d\n numbers: %.400s\n strings: %.400s", i, got[i], want[i])
			}
		}
		t.Fatalf("%d answers, want %d", len(got), len(want))
	}
	if imap.SubjectOrdersRead() == before {
		t.Error("no subject order read: the numbers path was not taken")
	}
}
