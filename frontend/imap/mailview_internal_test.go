package imap

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestViewSharing: a view shares its arrays with the sessions that join it and copies them
// before it changes them (copy-on-write); a session copies them before it applies a change,
// and shares the view's again once it holds what the view holds, not while a change of its
// own has not come through the feed.
func TestViewSharing(t *testing.T) {
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
	if !view.shared || &view.uids[0] != &v.uids[0] || cap(view.uids) != 3 {
		t.Fatalf("joined a view of 3 messages without sharing its arrays (shared %v, cap %d)", view.shared, cap(view.uids))
	}
	var out bytes.Buffer
	c := &conn{srv: srv, rev2: true, bw: newConnWriter(&out), sel: &selected{
		uids: view.uids, flags: view.flags, modseqs: view.modseqs, shared: view.shared, feed: feed,
		rights: rights("lrswipkxtecda"),
	}}
	s := c.sel
	shares := func() bool { return s.shared && &s.uids[0] == &v.uids[0] && &s.modseqs[0] == &v.modseqs[0] }

	// A new message: the view copies its arrays before it adds it; the session's stay as
	// they were until it takes the change, and then it shares the view's again.
	v.apply(&metadatapb.ChangeBatch{HighestModseq: 4, Changes: []*metadatapb.Change{
		{Kind: metadatapb.ChangeKind_CHANGE_KIND_APPEND, Uid: 4, Modseq: 4},
	}})
	if &v.uids[0] == &s.uids[0] || len(s.uids) != 3 {
		t.Fatalf("the view changed the arrays its session shares: session %v", s.uids)
	}
	c.sendUpdates(true)
	c.bw.Flush()
	if got := out.String(); got != "* 4 EXISTS\r\n" {
		t.Fatalf("updates %q, want * 4 EXISTS", got)
	}
	if !shares() || len(s.uids) != 4 {
		t.Fatalf("after taking every change the session does not share the view's arrays: %v", s.uids)
	}

	// A STORE of the session's own, applied before the feed delivers it (as storeFlags
	// does): the session's arrays are its own until the feed brings the same change.
	s.writable()
	s.flags[0], s.modseqs[0] = []string{`\Flagged`}, 5
	if v.modseqs[0] != 1 || len(v.flags[0]) != 0 {
		t.Fatalf("the session's change reached the view: %v %v", v.modseqs, v.flags)
	}
	out.Reset()
	c.sendUpdates(true)
	if s.shared {
		t.Fatal("the session shares the view while its own change has not come through the feed")
	}
	v.apply(&metadatapb.ChangeBatch{HighestModseq: 5, Changes: []*metadatapb.Change{
		{Kind: metadatapb.ChangeKind_CHANGE_KIND_FLAGS, Uid: 1, Modseq: 5, Flags: []string{`\Flagged`}},
	}})
	c.sendUpdates(true)
	c.bw.Flush()
	if got := out.String(); got != "" {
		t.Fatalf("the session's own change came back as %q", got)
	}
	if !shares() {
		t.Fatal("the session does not share the view's arrays once its change came through the feed")
	}

	// An expunge by another session reaches this one, which shares again after it.
	v.apply(&metadatapb.ChangeBatch{HighestModseq: 6, Changes: []*metadatapb.Change{
		{Kind: metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE, Uid: 2, Modseq: 6},
	}})
	c.sendUpdates(true)
	c.bw.Flush()
	if got := out.String(); !strings.Contains(got, "* 2 EXPUNGE") || !shares() || len(s.uids) != 3 {
		t.Fatalf("expunge: %q, session %v shared %v", got, s.uids, s.shared)
	}
}
