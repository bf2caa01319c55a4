package imap

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// msgListOf returns a list of messages with the UIDs uids (ascending), MODSEQ 1 and no flags.
func msgListOf(uids ...uint32) msgList {
	var l msgList
	for _, uid := range uids {
		l.append(uid, 1, nil)
	}
	return l
}

// describeMsgs renders a list as "uid:flag,flag@modseq ..." for comparisons.
func describeMsgs(l *msgList) string {
	parts := make([]string, l.len())
	for i, uid := range l.uids(0) {
		parts[i] = fmt.Sprintf("%d:%s@%d", uid, strings.Join(l.flags(i), ","), l.modseq(i))
	}
	return strings.Join(parts, " ")
}

// TestMsgListCopyOnWrite: a list shared from another reads the same messages, and neither
// sees a change the other makes afterwards: flags, removal, insertion, appends on both sides.
func TestMsgListCopyOnWrite(t *testing.T) {
	var view msgList
	for uid := uint32(1); uid <= 5; uid++ {
		view.append(uid*10, uint64(uid), []string{`\Seen`})
	}
	const before = `10:\Seen@1 20:\Seen@2 30:\Seen@3 40:\Seen@4 50:\Seen@5`
	session := view.share()
	if got := describeMsgs(&session); got != before {
		t.Fatalf("shared list = %q", got)
	}

	view.setFlags(1, []string{`\Flagged`}, 6)
	view.remove([]int{0, 3})
	i, _ := view.search(25)
	view.insert(i, 25, 7, nil)
	view.append(60, 8, []string{"$Work"})
	if got, want := describeMsgs(&view), `20:\Flagged@6 25:@7 30:\Seen@3 50:\Seen@5 60:$Work@8`; got != want {
		t.Fatalf("view = %q, want %q", got, want)
	}
	if got := describeMsgs(&session); got != before {
		t.Fatalf("the view's changes reached the session: %q", got)
	}

	later := view.share() // shared again, after the view's own copy
	session.append(70, 9, []string{`\Deleted`})
	session.setFlags(0, nil, 10)
	session.remove([]int{2})
	if got, want := describeMsgs(&session), `10:@10 20:\Seen@2 40:\Seen@4 50:\Seen@5 70:\Deleted@9`; got != want {
		t.Fatalf("session = %q, want %q", got, want)
	}
	view.append(80, 11, []string{`\Deleted`})
	if got, want := describeMsgs(&later), `20:\Flagged@6 25:@7 30:\Seen@3 50:\Seen@5 60:$Work@8`; got != want {
		t.Fatalf("second session = %q, want %q", got, want)
	}
	if got, want := describeMsgs(&view), `20:\Flagged@6 25:@7 30:\Seen@3 50:\Seen@5 60:$Work@8 80:\Deleted@11`; got != want {
		t.Fatalf("view = %q, want %q", got, want)
	}
}

// TestMsgListConcurrentAppend: a session reads its shared list while the view appends to
// the same last chunk, as the view's feed and a session's FETCH do on their own goroutines
// (go test -race makes a shared write a failure).
func TestMsgListConcurrentAppend(t *testing.T) {
	var view msgList
	for uid := uint32(1); uid <= 100; uid++ {
		view.append(uid, 1, nil)
	}
	session := view.share()
	var wg sync.WaitGroup
	wg.Go(func() {
		for uid := uint32(101); uid <= 3000; uid++ {
			view.append(uid, 2, []string{fmt.Sprintf("$K%d", uid%7)})
		}
	})
	for range 50 {
		for i := range session.len() {
			if session.uid(i) != uint32(i+1) || session.modseq(i) != 1 || len(session.flags(i)) != 0 {
				t.Fatalf("message %d of the session changed", i)
			}
		}
	}
	wg.Wait()
	session.append(101, 3, []string{`\Seen`}) // its own chunk now
	if view.uid(100) != 101 || view.modseq(100) != 2 || session.modseq(100) != 3 {
		t.Fatalf("appends after sharing mixed up: view %d@%d, session @%d", view.uid(100), view.modseq(100), session.modseq(100))
	}
}

// TestMsgListCompactSets: a list whose messages keep getting new flag sets holds no more
// than about twice the sets in use plus minSetsToCompact, and compaction keeps every
// message's flags.
func TestMsgListCompactSets(t *testing.T) {
	var l msgList
	for uid := uint32(1); uid <= 100; uid++ {
		l.append(uid, 1, []string{`\Seen`})
	}
	other := l.share()
	const changes = 20 * minSetsToCompact
	for k := range changes {
		i := k % 100
		l.setFlags(i, []string{fmt.Sprintf("$K%d", k)}, uint64(k+2))
		l.compactSets()
		if len(l.sets.list) > 2*100+minSetsToCompact+1 {
			t.Fatalf("after %d changes %d flag sets for 100 messages", k+1, len(l.sets.list))
		}
	}
	for i := range 100 {
		k := changes - 1 - (changes-1-i)%100 // the last change of message i
		if got := l.flags(i); len(got) != 1 || got[0] != fmt.Sprintf("$K%d", k) || l.modseq(i) != uint64(k+2) {
			t.Fatalf("message %d: %v@%d, want $K%d", i, got, l.modseq(i), k)
		}
	}
	for i := range 100 {
		if got := other.flags(i); len(got) != 1 || got[0] != `\Seen` {
			t.Fatalf("the list shared before changed: message %d %v", i, got)
		}
	}
}

// TestConsistentPage: the view takes a ListMessages page only when it is well formed, in
// either flags form.
func TestConsistentPage(t *testing.T) {
	sets := []*metadatapb.FlagSet{{}, {Flags: []string{`\Seen`}}}
	for _, tc := range []struct {
		name string
		page *metadatapb.ListMessagesResponse
		want bool
	}{
		{"empty", &metadatapb.ListMessagesResponse{}, true},
		{"dictionary", &metadatapb.ListMessagesResponse{Uids: []uint32{5, 6}, Modseqs: []uint64{1, 2}, FlagSets: sets, FlagSetIndexes: []uint32{1, 0}}, true},
		{"per message", &metadatapb.ListMessagesResponse{Uids: []uint32{5, 6}, Modseqs: []uint64{1, 2}, Flags: sets}, true},
		{"index past the sets", &metadatapb.ListMessagesResponse{Uids: []uint32{5, 6}, Modseqs: []uint64{1, 2}, FlagSets: sets, FlagSetIndexes: []uint32{1, 2}}, false},
		{"an index short", &metadatapb.ListMessagesResponse{Uids: []uint32{5, 6}, Modseqs: []uint64{1, 2}, FlagSets: sets, FlagSetIndexes: []uint32{1}}, false},
		{"no flags", &metadatapb.ListMessagesResponse{Uids: []uint32{5, 6}, Modseqs: []uint64{1, 2}}, false},
		{"both forms", &metadatapb.ListMessagesResponse{Uids: []uint32{5, 6}, Modseqs: []uint64{1, 2}, Flags: sets, FlagSets: sets, FlagSetIndexes: []uint32{1, 0}}, false},
		{"a modseq short", &metadatapb.ListMessagesResponse{Uids: []uint32{5, 6}, Modseqs: []uint64{1}, Flags: sets}, false},
		{"not ascending", &metadatapb.ListMessagesResponse{Uids: []uint32{6, 6}, Modseqs: []uint64{1, 2}, Flags: sets}, false},
		{"at or below after", &metadatapb.ListMessagesResponse{Uids: []uint32{4, 6}, Modseqs: []uint64{1, 2}, Flags: sets}, false},
		{"more without messages", &metadatapb.ListMessagesResponse{More: true}, false},
	} {
		if got := consistentPage(tc.page, 4); got != tc.want {
			t.Errorf("%s: consistentPage = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestViewAddPageForms: a view loads the same messages and keyword counts from pages with a
// flag-set dictionary as from pages with a flag set per message (a metadata service that
// predates the dictionary).
func TestViewAddPageForms(t *testing.T) {
	flags := [][]string{nil, {`\Seen`}, {`\Seen`, "$Work"}, {"$Work", "$Home"}}
	mb := &metadatapb.Mailbox{UidValidity: 7, UidNext: 101, HighestModseq: 50, Messages: 100}
	var pages [2][]*metadatapb.ListMessagesResponse
	for first := uint32(1); first <= 100; first += 30 {
		perMessage := &metadatapb.ListMessagesResponse{Mailbox: mb}
		dictionary := &metadatapb.ListMessagesResponse{Mailbox: mb}
		for _, f := range flags {
			dictionary.FlagSets = append(dictionary.FlagSets, &metadatapb.FlagSet{Flags: f})
		}
		for uid := first; uid < first+30 && uid <= 100; uid++ {
			k := uid * 7 % uint32(len(flags))
			for _, p := range []*metadatapb.ListMessagesResponse{perMessage, dictionary} {
				p.Uids = append(p.Uids, uid)
				p.Modseqs = append(p.Modseqs, uint64(uid%50))
			}
			perMessage.Flags = append(perMessage.Flags, &metadatapb.FlagSet{Flags: flags[k]})
			dictionary.FlagSetIndexes = append(dictionary.FlagSetIndexes, k)
		}
		pages[0] = append(pages[0], perMessage)
		pages[1] = append(pages[1], dictionary)
	}
	var got [2]string
	for form, ps := range pages {
		v := &mailView{keywords: map[string]int{}}
		for k, p := range ps {
			if !consistentPage(p, uint32(30*k)) {
				t.Fatalf("form %d page %d inconsistent", form, k)
			}
			v.addPage(p, k == 0)
		}
		got[form] = fmt.Sprintf("%s keywords %v", describeMsgs(&v.msgs), v.keywords)
		if len(v.msgs.sets.list) != len(flags) {
			t.Errorf("form %d: %d flag sets, want %d", form, len(v.msgs.sets.list), len(flags))
		}
	}
	if got[0] != got[1] {
		t.Fatalf("per message:\n%s\ndictionary:\n%s", got[0], got[1])
	}
	if !strings.Contains(got[1], "keywords map[$Home:25 $Work:50]") {
		t.Fatalf("keywords: %s", got[1])
	}
}
