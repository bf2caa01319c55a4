package imap_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// appendAt appends a raw message (LF line ends turned to CRLF) with an internal date.
func appendAt(t *testing.T, c *imapclient.Client, raw string, internal time.Time) {
	t.Helper()
	msg := strings.ReplaceAll(raw, "\n", "\r\n")
	cmd := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Time: internal})
	if _, err := io.WriteString(cmd, msg); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func day(s string) time.Time {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestSort drives every sort key of RFC 5256 3 and RFC 5957 over four messages that cover
// the edge cases: a missing Date and an unparseable one (sorted by the internal date, RFC
// 5256 2.2), two equal Dates (broken by sequence number, RFC 5256 3), subjects with "Re:",
// "Fwd:", "(fwd)", "[tags]" and RFC 2047 words (RFC 5256 2.1), an RFC 2047 display name
// with an accent (i;unicode-casemap, RFC 5051), and addresses missing.
func TestSort(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendAt(t, c, "From: Zed <bob@x.org>\nTo: Carol <carol@x.org>\nCc: dave@x.org\nSubject: Re: [list] Hello\n"+
		"Date: Thu, 02 Jan 2020 10:00:00 +0000\nMessage-ID: <1@x>\n\n"+strings.Repeat("a", 1000)+"\n", day("2021-01-05"))
	appendAt(t, c, "From: alice <zoe@x.org>\nTo: =?UTF-8?Q?=C3=89mile?= <adam@x.org>\nSubject: =?UTF-8?Q?hello?=\n"+
		"Message-ID: <2@x>\n\n"+strings.Repeat("b", 10)+"\n", day("2020-01-01"))
	appendAt(t, c, "From: bob@x.org\nCc: alice@x.org\nSubject: Fwd: Apple (fwd)\nDate: not a date\nMessage-ID: <3@x>\n\n"+
		strings.Repeat("c", 500)+"\n", day("2020-01-03"))
	appendAt(t, c, "From: Adam <adam@x.org>\nTo: zed@x.org\nSubject: [tag] Re: apple\nDate: Thu, 02 Jan 2020 10:00:00 +0000\n"+
		"Message-ID: <4@x>\n\n"+strings.Repeat("d", 3000)+"\n", day("2019-01-02"))
	rc := loginRaw(t, srv)
	caps := strings.Join(rc.ok("CAPABILITY"), " ")
	for _, cp := range []string{" SORT ", " SORT=DISPLAY ", " THREAD=ORDEREDSUBJECT ", " THREAD=REFERENCES ", " THREAD=REFS ", " ESORT ", " WITHIN "} {
		if !strings.Contains(caps+" ", cp) {
			t.Errorf("CAPABILITY lacks %s: %s", cp, caps)
		}
	}
	rc.ok("SELECT INBOX")
	for _, tc := range []struct{ query, want string }{
		{"SORT (ARRIVAL) UTF-8 ALL", "4 2 3 1"},
		{"SORT (DATE) UTF-8 ALL", "2 1 4 3"},
		{"SORT (REVERSE DATE) UTF-8 ALL", "3 1 4 2"}, // the tie stays in sequence order
		{"SORT (SUBJECT) UTF-8 ALL", "3 4 1 2"},
		{"SORT (FROM) UTF-8 ALL", "4 1 3 2"},
		{"SORT (TO) UTF-8 ALL", "3 2 1 4"},
		{"SORT (CC) UTF-8 ALL", "2 4 3 1"},
		{"SORT (DISPLAYFROM) UTF-8 ALL", "4 2 3 1"},
		{"SORT (DISPLAYTO) UTF-8 ALL", "3 1 2 4"},
		{"SORT (SIZE) UTF-8 ALL", "2 3 1 4"},
		{"SORT (REVERSE SIZE) US-ASCII ALL", "4 1 3 2"},
		{"SORT (SUBJECT DATE) UTF-8 ALL", "4 3 2 1"},
		{"SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "3 4 1 2"},
		{"SORT (REVERSE SUBJECT ARRIVAL) UTF-8 ALL", "2 1 4 3"},
		{"SORT (DATE) UTF-8 SUBJECT apple", "4 3"},
		{"SORT (DATE) UTF-8 2:3", "2 3"},
		{"UID SORT (FROM) UTF-8 NOT FROM zoe", "4 1 3"},
		{"SORT (DATE) UTF-8 OLDER 86400", "2 1 4 3"}, // WITHIN (RFC 5032)
		{"SORT (DATE) UTF-8 YOUNGER 86400", ""},
	} {
		want := "* SORT"
		if tc.want != "" {
			want += " " + tc.want
		}
		if got := rc.ok(tc.query); !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", tc.query, got, want)
		}
	}
	// ESORT (RFC 5267 3.2): MIN and MAX in sort order, ALL in sort order; PARTIAL (RFC 9394).
	for _, tc := range []struct{ query, want string }{
		{"SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL", " MIN 2 MAX 3 COUNT 4 ALL 2,1,4,3"},
		{"UID SORT RETURN () (SIZE) UTF-8 ALL", " UID ALL 2:3,1,4"},
		{"SORT RETURN (PARTIAL 1:2) (DATE) UTF-8 ALL", " PARTIAL (1:2 2,1)"},
		{"SORT RETURN (PARTIAL -1:-2) (DATE) UTF-8 ALL", " PARTIAL (-1:-2 4,3)"},
		{"SORT RETURN (COUNT MIN PARTIAL 5:9) (DATE) UTF-8 ALL", " COUNT 4 MIN 2 PARTIAL (5:9 NIL)"},
		{"SORT RETURN (MIN COUNT) (DATE) UTF-8 LARGER 100000", " COUNT 0"},
	} {
		tag := fmt.Sprintf("x%d", rc.n+1)
		want := `* ESEARCH (TAG "` + tag + `")` + tc.want
		if got := rc.ok(tc.query); !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", tc.query, got, want)
		}
	}
	// RFC 5256 3 and RFC 5530: an unknown key or option is BAD, an unknown charset NO [BADCHARSET].
	rc.expect("SORT (BOGUS) UTF-8 ALL", "BAD")
	rc.expect("SORT (REVERSE) UTF-8 ALL", "BAD")
	rc.expect("SORT () UTF-8 ALL", "BAD")
	rc.expect("SORT (DATE) ALL", "BAD") // the charset is not optional in SORT
	rc.expect("SORT RETURN (SAVE) (DATE) UTF-8 ALL", "BAD")
	rc.expect("SORT (DATE) KOI8-R ALL", "NO [BADCHARSET")
	rc.expect("THREAD BOGUS UTF-8 ALL", "BAD")
	rc.expect("THREAD REFERENCES KOI8-R ALL", "NO [BADCHARSET")
}

// TestSortLimit checks that a SORT over more messages than the configured bound is refused
// NO [LIMIT] (RFC 5530 3).
func TestSortLimit(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.MaxSortMessages = 2 })
	c := login(t, srv)
	for i := range 3 {
		appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.expect("SORT (DATE) UTF-8 ALL", "NO [LIMIT]")
	rc.expect("THREAD REFERENCES UTF-8 ALL", "NO [LIMIT]")
	if got := rc.ok("SORT (DATE) UTF-8 1:2"); !slices.Equal(got, []string{"* SORT 1 2"}) {
		t.Errorf("SORT over 2 messages = %q", got)
	}
}

// TestThread drives THREAD=ORDEREDSUBJECT, REFERENCES and REFS (RFC 5256 4) over a mailbox
// with a reply by References and one by In-Reply-To, a grandchild, a missing parent shared by
// two messages (a dummy that stays at the root, step 3.B), a References loop (step 1.B
// refuses the link that closes it), and a reply with neither Message-ID nor references that
// subject gathering (step 5) puts under its thread.
func TestThread(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	msgs := []string{
		"Message-ID: <a@x>\nSubject: Meeting\n",
		"Message-ID: <b@x>\nReferences: <a@x>\nSubject: Re: Meeting\n",
		"Message-ID: <c@x>\nIn-Reply-To: <a@x>\nSubject: RE: meeting\n",
		"Message-ID: <d@x>\nReferences: <a@x> <b@x>\nSubject: Re: Re: Meeting\n",
		"Message-ID: <e@x>\nReferences: <zz@x>\nSubject: Other\n",
		"Message-ID: <f@x>\nReferences: <zz@x>\nSubject: Re: Other\n",
		"Message-ID: <g@x>\nReferences: <h@x>\nSubject: Loop\n",
		"Message-ID: <h@x>\nReferences: <g@x>\nSubject: Re: Loop\n",
		"Subject: Re: Meeting\n",
	}
	for i, m := range msgs {
		date := day("2020-03-01").AddDate(0, 0, i)
		appendAt(t, c, "From: a@x.org\nDate: "+date.Format(time.RFC1123Z)+"\n"+m+"\nbody\n", date)
	}
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	threadQueries := []struct{ query, want string }{
		{"THREAD ORDEREDSUBJECT UTF-8 ALL", "(1 (2)(3)(4)(9))(5 6)(7 8)"},
		{"THREAD REFERENCES UTF-8 ALL", "(1 (2 4)(3)(9))((5)(6))(8 7)"},
		{"THREAD REFS UTF-8 ALL", "(1 (2 4)(3))((5)(6))(8 7)(9)"},
		{"UID THREAD REFERENCES UTF-8 NOT SUBJECT loop", "(1 (2 4)(3)(9))((5)(6))"},
		{"THREAD REFERENCES UTF-8 1,4", "(1 4)"},
		{"THREAD REFERENCES UTF-8 SUBJECT nothing", ""},
		{"SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "8 7 9 4 3 2 1 6 5"}, // LOOP < MEETING < OTHER
	}
	for _, tc := range threadQueries {
		want := "* " + strings.Fields(strings.TrimPrefix(tc.query, "UID "))[0]
		if tc.want != "" {
			want += " " + tc.want
		}
		if got := rc.ok(tc.query); !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", tc.query, got, want)
		}
	}
}

// TestSortKeysDerived checks the messages stored before sort keys were kept: the same
// messages appended through the metadata service without SortKeys (as an older frontend
// stored them) sort and thread exactly as those appended through IMAP, their keys derived
// from the stored envelope and header.
func TestSortKeysDerived(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminCreateMailbox(t, srv, embedded.DemoAccount, "old")
	box, err := srv.Metadata().GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Name: "old"})
	if err != nil {
		t.Fatal(err)
	}
	c := login(t, srv)
	raws := []string{
		"Message-ID: <a@x>\nSubject: Meeting\nFrom: Zoe <z@x.org>\n",
		"Message-ID: <b@x>\nReferences: <a@x>\nSubject: Re: Meeting\nFrom: =?UTF-8?Q?=C3=89lodie?= <e@x.org>\n",
		"Message-ID: <c@x>\nIn-Reply-To: <b@x>\nSubject: [x] Fwd: other\nFrom: a@x.org\n",
		"Subject: Re: Meeting\nDate: garbage\n",
	}
	for i, r := range raws {
		date := day("2020-03-01").AddDate(0, 0, len(raws)-i)
		raw := "Date: " + date.Format(time.RFC1123Z) + "\n" + r + "\nbody\n"
		appendAt(t, c, raw, date)
		msg := []byte(strings.ReplaceAll(raw, "\n", "\r\n"))
		structure, err := message.Parse(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		structure.SortKeys = nil
		if _, err := srv.Metadata().Append(ctx, &metadatapb.AppendRequest{
			RequestId: embedded.NewRequestID(), Account: embedded.DemoAccount, MailboxId: box.GetId(),
			Messages: []*metadatapb.NewMessage{{BlobKey: blobstore.Key("example", sha256.Sum256(msg)), Size: uint64(len(msg)),
				InternalDateUnix: date.Unix(), Structure: structure}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	rc := loginRaw(t, srv)
	for _, q := range []string{"THREAD REFERENCES UTF-8 ALL", "THREAD ORDEREDSUBJECT UTF-8 ALL", "SORT (SUBJECT DATE) UTF-8 ALL",
		"SORT (DISPLAYFROM) UTF-8 ALL", "SORT (REVERSE ARRIVAL) UTF-8 ALL", "SORT (DATE) UTF-8 ALL"} {
		rc.ok("SELECT INBOX")
		want := rc.ok(q)
		rc.ok("SELECT old")
		if got := rc.ok(q); !slices.Equal(got, want) || len(want) != 1 {
			t.Errorf("%s: derived keys %q, ingested keys %q", q, got, want)
		}
	}
}

// TestSortLimits: a SORT or THREAD whose search matches more messages than
// Limits.MaxSortMessages, or whose keys take longer to read than Limits.SortTimeout, ends
// NO [LIMIT] (RFC 5530 3) and the session goes on: a narrower SORT answers, and so do other
// commands. A SortTimeout of 1ns has passed before the first key is read (sort.go
// fillSortKeys checks the deadline before each batch), so no machine is fast enough to
// beat it, and a refused command caches no key that would let the next one skip the check.
func TestSortLimits(t *testing.T) {
	started := func(edit func(*embedded.Config)) *rawConn {
		srv := startServerWith(t, edit)
		c := login(t, srv)
		for i := range 3 {
			appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("subject %d", i), "body"))
		}
		c.Logout().Wait()
		rc := loginRaw(t, srv)
		rc.ok("SELECT INBOX")
		return rc
	}
	ordering := []string{"SORT (SUBJECT) UTF-8 ALL", "UID SORT (DATE) UTF-8 ALL", "SORT RETURN (COUNT) (ARRIVAL) UTF-8 ALL",
		"THREAD REFERENCES UTF-8 ALL", "UID THREAD ORDEREDSUBJECT UTF-8 ALL"}

	rc := started(func(cfg *embedded.Config) { cfg.IMAPLimits.MaxSortMessages = 2 })
	for _, cmd := range ordering {
		rc.expect(cmd, "NO [LIMIT] More than 2 messages to order")
	}
	if got := rc.ok("SORT (REVERSE SUBJECT) UTF-8 1:2"); !slices.Equal(got, []string{"* SORT 2 1"}) {
		t.Errorf("SORT of 2 messages under the bound: %q", got)
	}
	if got := rc.ok("THREAD ORDEREDSUBJECT UTF-8 2:3"); !slices.Equal(got, []string{"* THREAD (2)(3)"}) {
		t.Errorf("THREAD of 2 messages under the bound: %q", got)
	}

	rc = started(func(cfg *embedded.Config) { cfg.IMAPLimits.SortTimeout = time.Nanosecond })
	for _, cmd := range ordering {
		rc.expect(cmd, "NO [LIMIT] Ordering took longer than 1ns")
	}
	if got := rc.ok("SEARCH ALL"); !slices.Equal(got, []string{"* SEARCH 1 2 3"}) {
		t.Errorf("SEARCH after the refused SORTs: %q", got)
	}
	if got := rc.ok("FETCH 3 (UID)"); !slices.Equal(got, []string{"* 3 FETCH (UID 3)"}) {
		t.Errorf("FETCH after the refused SORTs: %q", got)
	}
	rc.expect("SORT (SUBJECT) UTF-8 ALL", "NO [LIMIT] Ordering took longer than 1ns")
}
