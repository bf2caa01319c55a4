package metadata

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdSetMarks(account string, marks ...*metadatapb.Mark) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_SetMarks{SetMarks: &metadatapb.SetMarksRequest{Account: account, Marks: marks}}}
}

func mark(key string, set, expires time.Time) *metadatapb.Mark {
	return &metadatapb.Mark{Key: []byte(key), SetUnix: set.Unix(), ExpiresUnix: expires.Unix()}
}

// checkMarks answers CheckMarks at now (zero: the log time) from the harness's FSM.
func (h *harness) checkMarks(account string, now time.Time, keys ...string) []*metadatapb.MarkState {
	h.t.Helper()
	req := &metadatapb.CheckMarksRequest{Account: account}
	if !now.IsZero() {
		req.NowUnix = now.Unix()
	}
	for _, k := range keys {
		req.Keys = append(req.Keys, []byte(k))
	}
	v := h.f.view()
	defer v.close()
	resp, err := v.checkMarks(req)
	if err != nil {
		h.t.Fatalf("check marks %q: %v", keys, err)
	}
	return resp.GetMarks()
}

// markCountOf is the stored count of account's marks.
func (h *harness) markCountOf(account string) uint64 {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	n, _, err := getRaw(v.r, markCountKey(account))
	if err != nil {
		h.t.Fatal(err)
	}
	return decodeUint64(n)
}

// wantMarkTables fails unless the records, both expiry indexes and the count agree on n.
func (h *harness) wantMarkTables(account string, n int) {
	h.t.Helper()
	f, g, i := h.keysWith(prefixMark), h.keysWith(prefixMarkAccountAge), h.keysWith(prefixMarkAge)
	if f != n || g != n || i != n || h.markCountOf(account) != uint64(n) {
		h.t.Fatalf("marks %d, by account expiry %d, by expiry %d, count %d; want %d", f, g, i, h.markCountOf(account), n)
	}
}

// TestMarksSetAndCheck: a set mark is present with its times until it expires; a new mark
// replaces the key's; an expired one removes it; keys are per account; bad requests are
// refused whole; the log alone gives the same state.
func TestMarksSetAndCheck(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdAccount("bob@example.org"))
	t0 := h.now
	h.ok(cmdSetMarks("Alice@Example.org", mark("v1", t0, t0.Add(time.Hour)), mark("d1", t0, t0.Add(2*time.Hour))))
	got := h.checkMarks(alice, time.Time{}, "v1", "d1", "other")
	if !got[0].GetPresent() || got[0].GetSetUnix() != t0.Unix() || got[0].GetExpiresUnix() != t0.Add(time.Hour).Unix() ||
		!got[1].GetPresent() || got[1].GetExpiresUnix() != t0.Add(2*time.Hour).Unix() || got[2].GetPresent() {
		t.Fatalf("check: %v", got)
	}
	if got := h.checkMarks("bob@example.org", time.Time{}, "v1"); got[0].GetPresent() {
		t.Fatalf("alice's mark present for bob: %v", got)
	}
	// At a time past its expiry, a mark is absent even before it is pruned.
	if got := h.checkMarks(alice, t0.Add(time.Hour), "v1", "d1"); got[0].GetPresent() || !got[1].GetPresent() {
		t.Fatalf("check an hour later: %v", got)
	}
	h.wantMarkTables(alice, 2)

	// Replacing keeps one mark of the key with the new times.
	t1 := h.now
	h.ok(cmdSetMarks(alice, mark("v1", t1, t1.Add(3*time.Hour))))
	if got := h.checkMarks(alice, t0.Add(2*time.Hour), "v1"); !got[0].GetPresent() || got[0].GetSetUnix() != t1.Unix() {
		t.Fatalf("replaced mark: %v", got)
	}
	h.wantMarkTables(alice, 2)
	// A mark that expired already removes the key's.
	h.ok(cmdSetMarks(alice, mark("d1", t1, t1.Add(-time.Second))))
	if got := h.checkMarks(alice, time.Time{}, "d1"); got[0].GetPresent() {
		t.Fatalf("mark removed by an expired one still present: %v", got)
	}
	h.wantMarkTables(alice, 1)
	// An expiry past the lifetime is cut to it.
	h.ok(cmdSetMarks(alice, mark("far", h.now, h.now.Add(10*maxMarkLifetime))))
	if got := h.checkMarks(alice, time.Time{}, "far"); got[0].GetExpiresUnix() != h.now.Add(maxMarkLifetime).Unix() {
		t.Fatalf("far mark expires at %d, want %d", got[0].GetExpiresUnix(), h.now.Add(maxMarkLifetime).Unix())
	}

	// Refused whole: unknown accounts, empty and long keys, too many marks.
	h.fails(codes.NotFound, cmdSetMarks("nobody@example.org", mark("k", h.now, h.now.Add(time.Hour))))
	h.fails(codes.NotFound, cmdSetMarks("not an address", mark("k", h.now, h.now.Add(time.Hour))))
	h.fails(codes.InvalidArgument, cmdSetMarks(alice, mark("ok", h.now, h.now.Add(time.Hour)), mark("", h.now, h.now.Add(time.Hour))))
	h.fails(codes.InvalidArgument, cmdSetMarks(alice, mark(string(bytes.Repeat([]byte{'k'}, maxMarkKey+1)), h.now, h.now.Add(time.Hour))))
	var many []*metadatapb.Mark
	for i := range maxMarksPerRequest + 1 {
		many = append(many, mark(fmt.Sprint(i), h.now, h.now.Add(time.Hour)))
	}
	h.fails(codes.InvalidArgument, cmdSetMarks(alice, many...))
	if got := h.checkMarks(alice, time.Time{}, "ok", "0"); got[0].GetPresent() || got[1].GetPresent() {
		t.Fatalf("a refused request left marks: %v", got)
	}
	h.wantMarkTables(alice, 2)
	v := h.f.view()
	if _, err := v.checkMarks(&metadatapb.CheckMarksRequest{Account: "nobody@example.org", Keys: [][]byte{[]byte("k")}}); err == nil {
		t.Error("check of an unknown account answered")
	}
	if _, err := v.checkMarks(&metadatapb.CheckMarksRequest{Account: alice, Keys: [][]byte{nil}}); err == nil {
		t.Error("check of an empty key answered")
	}
	v.close()

	replay := newHarness(t)
	replay.f.ApplyBatch(h.log)
	if !bytes.Equal(replay.digest(), h.digest()) {
		t.Fatal("replayed log has another digest")
	}
}

// TestMarksPruning: expired marks go, at most markPruneBatch per command, first expired
// first, the count following; a deleted account takes its marks.
func TestMarksPruning(t *testing.T) {
	h := withAccount(t)
	const n = 100
	var marks []*metadatapb.Mark
	for i := range n {
		marks = append(marks, mark(fmt.Sprintf("key-%03d", i), h.now, h.now.Add(time.Hour+time.Duration(i)*time.Second)))
	}
	h.ok(cmdSetMarks(alice, marks...))
	h.ok(cmdSetMarks(alice, mark("long", h.now, h.now.Add(24*time.Hour))))
	h.wantMarkTables(alice, n+1)
	h.now = h.now.Add(2 * time.Hour)
	h.horizonNow()
	h.ok(cmdCreateMailbox(alice, "One"))
	h.wantMarkTables(alice, n+1-markPruneBatch)
	v := h.f.view()
	_, gone, _ := getRaw(v.r, markKey(alice, []byte("key-000")))
	_, kept, _ := getRaw(v.r, markKey(alice, []byte("key-099")))
	v.close()
	if gone || !kept {
		t.Fatalf("pruned out of order: key-000 present %v, key-099 present %v", gone, kept)
	}
	h.ok(cmdCreateMailbox(alice, "Two"))
	h.wantMarkTables(alice, 1)
	if got := h.checkMarks(alice, time.Time{}, "long"); !got[0].GetPresent() {
		t.Fatalf("unexpired mark pruned: %v", got)
	}
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: alice}}})
	h.wantMarkTables(alice, 0)
	// A recreated account starts without marks.
	h.ok(cmdAccount(alice))
	if got := h.checkMarks(alice, time.Time{}, "long"); got[0].GetPresent() {
		t.Fatalf("recreated account has the old mark: %v", got)
	}
}

// TestMarksEviction: an account full of marks makes room for a new one by dropping the one
// that expires first.
func TestMarksEviction(t *testing.T) {
	h := withAccount(t)
	base := h.now
	for start := 0; start < maxMarksPerAccount; start += maxMarksPerRequest {
		var marks []*metadatapb.Mark
		for i := start; i < min(start+maxMarksPerRequest, maxMarksPerAccount); i++ {
			// key-0 expires last, key-1 first.
			expires := base.Add(time.Hour + time.Duration(i)*time.Second)
			if i == 0 {
				expires = base.Add(48 * time.Hour)
			}
			marks = append(marks, mark(fmt.Sprintf("key-%d", i), base, expires))
		}
		h.ok(cmdSetMarks(alice, marks...))
	}
	h.wantMarkTables(alice, maxMarksPerAccount)
	h.ok(cmdSetMarks(alice, mark("new", h.now, h.now.Add(time.Hour))))
	h.wantMarkTables(alice, maxMarksPerAccount)
	got := h.checkMarks(alice, time.Time{}, "new", "key-0", "key-1", "key-2")
	if !got[0].GetPresent() || !got[1].GetPresent() || got[2].GetPresent() || !got[3].GetPresent() {
		t.Fatalf("after eviction new, key-0, key-1, key-2: %v", got)
	}
	// Replacing a mark of a full account evicts nothing.
	h.ok(cmdSetMarks(alice, mark("key-2", h.now, h.now.Add(time.Hour))))
	if got := h.checkMarks(alice, time.Time{}, "key-3"); !got[0].GetPresent() {
		t.Fatalf("replacing a mark evicted another: %v", got)
	}
	h.wantMarkTables(alice, maxMarksPerAccount)
}

// TestMarksSurviveSnapshot: marks and their indexes travel in a snapshot; the restored
// replica answers them and prunes them like the source.
func TestMarksSurviveSnapshot(t *testing.T) {
	src := withAccount(t)
	src.ok(cmdSetMarks(alice, mark("v1", src.now, src.now.Add(time.Hour)), mark("d1", src.now, src.now.Add(3*time.Hour))))
	dst := newHarness(t)
	restoreSnapshot(t, src.f, dst.f)
	if !bytes.Equal(src.digest(), dst.digest()) {
		t.Fatal("restored state differs")
	}
	dst.index, dst.now = src.index, src.now
	if got := dst.checkMarks(alice, time.Time{}, "v1", "d1"); !got[0].GetPresent() || !got[1].GetPresent() {
		t.Fatalf("marks on the restored replica: %v", got)
	}
	dst.now = dst.now.Add(2 * time.Hour)
	dst.horizonNow()
	dst.ok(cmdCreateMailbox(alice, "Later"))
	dst.wantMarkTables(alice, 1)
	if got := dst.checkMarks(alice, time.Time{}, "v1", "d1"); got[0].GetPresent() || !got[1].GetPresent() {
		t.Fatalf("after pruning on the restored replica: %v", got)
	}
}

// TestServiceMarks: SetMarks and CheckMarks over gRPC: a write needs a request ID; a check answers per key in order, at the given time or the log time.
func TestServiceMarks(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	now := time.Now()
	set := &metadatapb.SetMarksRequest{Account: alice, Marks: []*metadatapb.Mark{
		{Key: []byte("a"), SetUnix: now.Unix(), ExpiresUnix: now.Add(time.Hour).Unix()},
	}}
	_, err := c.SetMarks(s.ctx(), set)
	wantCode(t, err, codes.InvalidArgument) // no request_id
	set.RequestId = s.reqID()
	must(c.SetMarks(s.ctx(), set))
	got := must(c.CheckMarks(s.ctx(), &metadatapb.CheckMarksRequest{Account: "ALICE@example.org", Keys: [][]byte{[]byte("b"), []byte("a")}})).GetMarks()
	if len(got) != 2 || got[0].GetPresent() || !got[1].GetPresent() || got[1].GetSetUnix() != now.Unix() || got[1].GetExpiresUnix() != now.Add(time.Hour).Unix() {
		t.Fatalf("check: %v", got)
	}
	later := must(c.CheckMarks(s.ctx(), &metadatapb.CheckMarksRequest{Account: alice, Keys: [][]byte{[]byte("a")}, NowUnix: now.Add(time.Hour).Unix()})).GetMarks()
	if later[0].GetPresent() {
		t.Fatalf("check at the expiry: %v", later)
	}
	_, err = c.CheckMarks(s.ctx(), &metadatapb.CheckMarksRequest{Account: "nobody@example.org", Keys: [][]byte{[]byte("a")}})
	wantCode(t, err, codes.NotFound)
	_, err = c.CheckMarks(s.ctx(), &metadatapb.CheckMarksRequest{Account: alice, Keys: [][]byte{bytes.Repeat([]byte{'k'}, maxMarkKey+1)}})
	wantCode(t, err, codes.InvalidArgument)
	_, err = c.SetMarks(s.ctx(), &metadatapb.SetMarksRequest{RequestId: s.reqID(), Account: "nobody@example.org", Marks: set.Marks})
	wantCode(t, err, codes.NotFound)
}
