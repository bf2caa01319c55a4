package e2e

import (
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// ackedMessage is what one acknowledged APPEND promised.
type ackedMessage struct {
	uid   uint32
	flags []imap.Flag
	body  []byte
}

// TestCrashKeepsAcknowledgedAppends appends 1,000 messages with flags from several
// clients, SIGKILLs the server while appends are still in flight, restarts it on the same
// data directory and checks that every acknowledged message, its flags, UID, UIDVALIDITY
// and UIDNEXT survived and that new UIDs continue above the old ones.
func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServe(t, dataDir)

	setup := srv.login(t)
	if err := setup.Create("Crash", nil).Wait(); err != nil {
		t.Fatalf("CREATE Crash: %v", err)
	}
	before, err := setup.Select("Crash", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT Crash: %v", err)
	}

	const target, clients = 1000, 4
	var (
		mu    sync.Mutex
		acked = map[uint32]ackedMessage{}
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := 0; w < clients; w++ {
		c := srv.login(t)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := w*1_000_000 + i
				flags := []imap.Flag{imap.FlagSeen}
				if n%3 == 0 {
					flags = append(flags, imap.FlagFlagged, imap.Flag(fmt.Sprintf("$label%d", n%5)))
				}
				body := testMessage(n)
				uid, err := appendMessage(c, "Crash", body, &imap.AppendOptions{Flags: flags})
				if err != nil {
					return // the server was killed under this APPEND: not acknowledged
				}
				mu.Lock()
				acked[uid] = ackedMessage{uid: uid, flags: flags, body: body}
				if len(acked) == target {
					close(stop)
				}
				mu.Unlock()
			}
		}(w)
	}
	<-stop
	srv.kill(syscall.SIGKILL)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d appends acknowledged before SIGKILL", len(acked))

	srv = startServe(t, dataDir)
	c := srv.login(t)
	after, err := c.Select("Crash", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT Crash after restart: %v", err)
	}
	if after.UIDValidity != before.UIDValidity {
		t.Errorf("UIDVALIDITY changed across the crash: %d then %d", before.UIDValidity, after.UIDValidity)
	}
	var maxAcked uint32
	for uid := range acked {
		maxAcked = max(maxAcked, uid)
	}
	if uint32(after.UIDNext) <= maxAcked {
		t.Errorf("UIDNEXT %d is not above the highest acknowledged UID %d", after.UIDNext, maxAcked)
	}
	if int(after.NumMessages) < len(acked) {
		t.Errorf("%d messages after restart, %d were acknowledged", after.NumMessages, len(acked))
	}

	msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH after restart: %v", err)
	}
	seen := map[uint32]bool{}
	section := &imap.FetchItemBodySection{Peek: true}
	var prev uint32
	for _, m := range msgs {
		uid := uint32(m.UID)
		if uid <= prev {
			t.Errorf("UIDs not strictly ascending: %d after %d", uid, prev)
		}
		prev = uid
		seen[uid] = true
		want, ok := acked[uid]
		if !ok {
			continue // in flight at the kill: committed but never acknowledged
		}
		if got := string(m.FindBodySection(section)); got != string(want.body) {
			t.Errorf("UID %d body differs after restart", uid)
		}
		if !sameFlags(m.Flags, want.flags) {
			t.Errorf("UID %d flags %v after restart, want %v", uid, m.Flags, want.flags)
		}
	}
	for uid := range acked {
		if !seen[uid] {
			t.Errorf("acknowledged UID %d is missing after restart", uid)
		}
	}

	uid, err := appendMessage(c, "Crash", testMessage(-1), nil)
	if err != nil {
		t.Fatalf("APPEND after restart: %v", err)
	}
	if uid < uint32(after.UIDNext) || uid <= maxAcked {
		t.Errorf("new UID %d does not continue above the old ones (UIDNEXT was %d)", uid, after.UIDNext)
	}
}

// sameFlags compares the stored flags of a message: \Recent is the session's, not stored
// (RFC 3501 2.3.2), and the first SELECT after the restart sees every message as recent.
func sameFlags(got, want []imap.Flag) bool {
	set := map[imap.Flag]bool{}
	for _, f := range got {
		if f != `\Recent` {
			set[f] = true
		}
	}
	if len(set) != len(want) {
		return false
	}
	for _, f := range want {
		if !set[f] {
			return false
		}
	}
	return true
}
