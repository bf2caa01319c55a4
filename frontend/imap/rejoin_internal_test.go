package imap

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestSessionRejoinsView: a session shares its view's messages from SELECT; once it has
// applied the changes its feed delivered (on its own arrays, as the view keeps them apart),
// it shares the view's again, but not while a change of its own has not come through the
// feed (selected.rejoin).
func TestSessionRejoinsView(t *testing.T) {
	srv := NewServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	v := newMailView(srv, viewKey{owner: "demo@example.com", mailboxID: 1, user: "demo@example.com"})
	v.addPage(&metadatapb.ListMessagesResponse{
		Mailbox: &metadatapb.Mailbox{UidValidity: 1, UidNext: 4, HighestModseq: 3, Messages: 3},
		Uids:    []uint32{1, 2, 3}, Modseqs: []uint64{1, 2, 3},
		Flags: []*metadatapb.FlagSet{{}, {Flags: []string{`\Seen`}}, {}},
	}, true)
	v.mu.Lock()
	v.loaded = true
	v.checkReadyLocked()
	v.mu.Unlock()

	view, feed, err := v.join(t.Context(), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c := &conn{srv: srv, rev2: true, bw: newConnWriter(&out), sel: &selected{
		msgs: view.msgs, feed: feed, rights: rights("lrswipkxtecda"),
	}}
	s := c.sel
	shares := func() bool {
		return s.msgs.len() == v.msgs.len() && s.msgs.sharedChunks(&v.msgs) == len(v.msgs.chunks)
	}
	if !shares() {
		t.Fatal("a joining session does not share the view's messages")
	}
	update := func(want string) {
		t.Helper()
		out.Reset()
		c.sendUpdates(true)
		c.bw.Flush()
		if got := out.String(); got != want {
			t.Fatalf("updates %q, want %q", got, want)
		}
	}

	// A new message: the session appends it to arrays of its own, then shares the view's.
	v.apply(&metadatapb.ChangeBatch{HighestModseq: 4, Changes: []*metadatapb.Change{
		{Kind: metadatapb.ChangeKind_CHANGE_KIND_APPEND, Uid: 4, Modseq: 4},
	}})
	update("* 4 EXISTS\r\n")
	if !shares() {
		t.Fatal("after taking every change the session does not share the view's messages")
	}

	// A STORE of the session's own, applied before the feed delivers it (as storeFlags
	// does): no sharing until the feed brings the same change, which then sends nothing.
	s.msgs.setFlags(0, []string{`\Flagged`}, 5)
	if v.msgs.modseq(0) != 1 {
		t.Fatalf("the session's change reached the view: %s", describeMsgs(&v.msgs))
	}
	update("")
	if shares() {
		t.Fatal("the session shares the view while its own change has not come through the feed")
	}
	v.apply(&metadatapb.ChangeBatch{HighestModseq: 5, Changes: []*metadatapb.Change{
		{Kind: metadatapb.ChangeKind_CHANGE_KIND_FLAGS, Uid: 1, Modseq: 5, Flags: []string{`\Flagged`}},
	}})
	update("")
	if !shares() {
		t.Fatal("the session does not share the view's messages once its change came through the feed")
	}

	// Another session's expunge and flag change reach this one, which shares again after.
	v.apply(&metadatapb.ChangeBatch{HighestModseq: 7, Changes: []*metadatapb.Change{
		{Kind: metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE, Uid: 2, Modseq: 6},
		{Kind: metadatapb.ChangeKind_CHANGE_KIND_FLAGS, Uid: 3, Modseq: 7, Flags: []string{`\Seen`}},
	}})
	update("* 2 EXPUNGE\r\n* 2 FETCH (FLAGS (\\Seen))\r\n")
	if !shares() || s.msgs.len() != 3 || !strings.Contains(describeMsgs(&s.msgs), "Seen") {
		t.Fatalf("after an expunge: shares %v, %s", shares(), describeMsgs(&s.msgs))
	}
}
