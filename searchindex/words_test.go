package searchindex

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// addChunked adds text to d as mailtext.FoldChunks hands a long text out: pieces of size
// bytes, each after the first repeating the last foldOverlap bytes of the one before
// (AddChunk skips them; Extract asks for none).
func addChunked(d *Doc, s Scope, text []byte, size int) {
	const foldOverlap = 2
	overlap := 0
	for start := 0; start < len(text); {
		end := min(len(text), start+size)
		from := max(0, start-overlap)
		d.AddChunk(s, text[from:end], start-from)
		overlap = foldOverlap
		start = end
	}
	d.EndText()
}

// TestExactAnswers: on random texts (multi-byte runes, separators, words longer than
// MaxWord, texts added whole and in overlapping chunks, one doc reused across messages),
// the index's exact answer to every separator-free needle is the set of messages whose
// text holds it, except those it lists in Verify, which are candidates: through several
// batches, tombstones and a reopen.
func TestExactAnswers(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 51))
	alphabet := []string{"a", "b", "c", "é", "Ж", "会", " ", "\r\n", "\t", "-"}
	texts := map[uint32]map[Scope]string{}
	const account, mailbox = "w@example.org", 3
	uid := uint32(0)
	d := NewDoc()
	for batch := range 4 {
		b := x.NewBatch()
		for range 30 + batch*20 {
			uid++
			texts[uid] = map[Scope]string{}
			d.Reset()
			for _, s := range []Scope{ScopeBody, ScopeSubject} {
				var sb strings.Builder
				for range 5 + r.IntN(60) {
					if r.IntN(40) == 0 {
						sb.WriteString(strings.Repeat("b", MaxWord-2+r.IntN(5))) // around MaxWord
					}
					sb.WriteString(alphabet[r.IntN(len(alphabet))])
				}
				text := sb.String()
				texts[uid][s] = text
				if s == ScopeBody {
					addChunked(d, s, []byte(text), 3+r.IntN(20))
				} else {
					d.Add(s, []byte(text))
				}
			}
			if err := b.Add(account, mailbox, uid, d); err != nil {
				t.Fatal(err)
			}
		}
		commitBatch(t, b, account, mailbox, uid)
	}
	x = removeEveryAndReopen(t, x, dir, account, mailbox, 4, 9, uid, func(dead uint32) { delete(texts, dead) })
	defer x.Close()

	needles := []string{"a", "é", "会", "-", "ab", "bbbb", strings.Repeat("b", MaxWord), strings.Repeat("b", MaxWord+1), "zz"}
	for len(needles) < 300 {
		text := texts[uint32(1+r.IntN(int(uid)))][ScopeBody]
		if text == "" {
			continue
		}
		at := r.IntN(len(text))
		needle := text[at:min(len(text), at+1+r.IntN(6))]
		if strings.ContainsAny(needle, " \r\n\t") {
			continue
		}
		needles = append(needles, needle)
	}
	verified := 0
	for _, needle := range needles {
		for _, scopes := range [][]Scope{{ScopeBody}, {ScopeSubject}, {ScopeBody, ScopeSubject}} {
			res, err := x.Candidates(context.Background(), account, mailbox, Query{Needle: needle, Scopes: scopes})
			if err != nil {
				t.Fatalf("candidates of %q: %v", needle, err)
			}
			if !res.Exact {
				t.Fatalf("answer to %q in %v not exact", needle, scopes)
			}
			var want, sure []uint32
			for u := uint32(1); u <= uid; u++ {
				m, ok := texts[u]
				if !ok {
					continue
				}
				if slices.ContainsFunc(scopes, func(s Scope) bool { return strings.Contains(m[s], needle) }) {
					want = append(want, u)
				}
			}
			for _, u := range res.UIDs {
				if _, found := slices.BinarySearch(res.Verify, u); !found {
					sure = append(sure, u)
				}
			}
			verified += len(res.Verify)
			for _, u := range want {
				if _, found := slices.BinarySearch(res.UIDs, u); !found {
					t.Errorf("%q in %v: match %d not in the answer %v", needle, scopes, u, res.UIDs)
				}
			}
			for _, u := range sure {
				if !slices.Contains(want, u) {
					t.Errorf("%q in %v: %d given as a sure match, text %q", needle, scopes, u, texts[u])
				}
			}
		}
	}
	if verified == 0 {
		t.Error("no message with a word longer than MaxWord was listed to verify")
	}
}

// TestDocDistinct: a doc holds each word once, whatever the repeats, and Reset empties
// it.
func TestDocDistinct(t *testing.T) {
	d := NewDoc()
	text := strings.Repeat("abcd abcd xyz ", 5000)
	addChunked(d, ScopeBody, []byte(text), 1000)
	d.Add(ScopeSubject, []byte("abcd"))
	// body: abcd, xyz; subject: abcd
	if d.Words() != 3 {
		t.Fatalf("doc of %d words, want 3", d.Words())
	}
	d.Reset()
	if d.Words() != 0 || d.long != 0 {
		t.Fatalf("reset doc holds %d words", d.Words())
	}
}

// FuzzPostingChunkRoundTrip: the chunk decoder decodes what appendChunk encodes (the
// fuzzed bytes read as UID gaps), less the tombstoned UIDs, and never panics on the bytes
// themselves.
func FuzzPostingChunkRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3})
	f.Add(appendChunk(nil, []uint32{1, 5, 300, 70000, 1 << 31}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, chunk []byte) {
		r := &reader{ctx: context.Background(), dead: map[uint32]bool{7: true}}
		_, _ = r.appendChunk(nil, chunk)
		// Read the bytes as ascending UIDs and round-trip them.
		var uids []uint32
		prev := uint32(0)
		for i := 0; i+2 <= len(chunk) && len(uids) < 64; i += 2 {
			prev += uint32(binary.BigEndian.Uint16(chunk[i:])) + 1
			if prev == 7 {
				continue
			}
			uids = append(uids, prev)
		}
		got, err := r.appendChunk(nil, appendChunk(nil, uids))
		if err != nil || !slices.Equal(got, uids) {
			t.Fatalf("round trip of %v = %v, %v", uids, got, err)
		}
	})
}

// crashBatches is how many batches the child of TestCrashResume commits per flush.
const crashBatches = 25

// TestCrashResume: a process writing the WAL-less index is killed (SIGKILL) in the middle
// of its batches; the store it leaves opens, its mailbox state covers exactly the postings
// that survived (a prefix of the batches: those flushed), and indexing resumes from that
// state.
func TestCrashResume(t *testing.T) {
	if dir := os.Getenv("STRATA_SEARCHINDEX_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCrashResume$")
	cmd.Env = append(os.Environ(), "STRATA_SEARCHINDEX_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	committed := 0
	for sc.Scan() {
		if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed ")); err == nil {
			committed = n
		}
		if sc.Text() == "done" {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if committed != crashCommits {
		t.Fatalf("child committed %d batches before the kill, want %d", committed, crashCommits)
	}

	x, err := Open(dir)
	if err != nil {
		t.Fatalf("open after SIGKILL: %v", err)
	}
	defer x.Close()
	st, ok, err := x.State(crashAccount, 1)
	if err != nil || !ok {
		t.Fatalf("state after SIGKILL: %v, %v", ok, err)
	}
	// The batches after the last flush were in the memtable only.
	survived := int(st.LastUID) / crashPerBatch
	if survived != crashCommits/crashBatches*crashBatches || int(st.LastUID)%crashPerBatch != 0 {
		t.Fatalf("state after SIGKILL covers UID %d: %d batches of %d committed, %d flushed", st.LastUID, survived, committed, crashCommits/crashBatches*crashBatches)
	}
	ctx := context.Background()
	check := func(upTo int) {
		t.Helper()
		for batch := 0; batch < upTo+crashBatches; batch++ {
			res, err := x.Candidates(ctx, crashAccount, 1, Query{Needle: fmt.Sprintf("batch%dx", batch), Scopes: []Scope{ScopeBody}})
			if err != nil {
				t.Fatal(err)
			}
			var want []uint32
			if batch < upTo {
				for k := range crashPerBatch {
					want = append(want, uint32(batch*crashPerBatch+k+1))
				}
			}
			if !slices.Equal(res.UIDs, want) {
				t.Fatalf("batch%d: candidates %v, want %v (state at UID %d)", batch, res.UIDs, want, st.LastUID)
			}
		}
	}
	check(survived)
	// Resume from the state, as the indexer does, and the index is whole again.
	for batch := survived; batch < committed+2; batch++ {
		if err := writeCrashBatch(x, batch); err != nil {
			t.Fatal(err)
		}
	}
	st, _, _ = x.State(crashAccount, 1)
	check(committed + 2)
}

const (
	crashAccount  = "crash@example.org"
	crashPerBatch = 4
	crashCommits  = 3*crashBatches + crashBatches/2 // the child's batches
)

// writeCrashBatch commits batch number n: crashPerBatch messages holding "batchN" and
// the mailbox state that covers them.
func writeCrashBatch(x *Index, n int) error {
	b := x.NewBatch()
	d := NewDoc()
	for k := range crashPerBatch {
		d.Reset()
		d.Add(ScopeBody, []byte(fmt.Sprintf("batch%dx message %d", n, k)))
		if err := b.Add(crashAccount, 1, uint32(n*crashPerBatch+k+1), d); err != nil {
			return err
		}
	}
	if err := b.SetState(crashAccount, 1, MailboxState{UIDValidity: 1, LastUID: uint32((n + 1) * crashPerBatch), Docs: uint32((n + 1) * crashPerBatch)}); err != nil {
		return err
	}
	return b.Commit()
}

// crashChild writes crashCommits batches, flushing every crashBatches of them (as full
// memtables would), reports each commit on stdout, and waits to be killed.
func crashChild(dir string) {
	x, err := Open(dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for n := range crashCommits {
		if err := writeCrashBatch(x, n); err != nil {
			fmt.Println("write:", err)
			os.Exit(1)
		}
		if (n+1)%crashBatches == 0 {
			if err := x.db.Flush(); err != nil {
				fmt.Println("flush:", err)
				os.Exit(1)
			}
		}
		fmt.Printf("committed %d\n", n+1)
	}
	fmt.Println("done")
	select {}
}

// TestCachedDictionaryFollowsCommits: exact answers, word candidates and FUZZY read the
// cached dictionary of a scope, and each sees the words a later batch adds (vocab.go).
func TestCachedDictionaryFollowsCommits(t *testing.T) {
	x, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	const account, mailbox = "c@example.org", 7
	add := func(uid uint32, text string) {
		b := x.NewBatch()
		d := NewDoc()
		d.Add(ScopeBody, []byte(text))
		if err := b.Add(account, mailbox, uid, d); err != nil {
			t.Fatal(err)
		}
		commitBatch(t, b, account, mailbox, uid)
	}
	ask := func(fuzzy bool, needle string) []uint32 {
		q := Query{Needle: needle, Scopes: []Scope{ScopeBody}}
		var res *Result
		var err error
		if fuzzy {
			res, err = x.Fuzzy(context.Background(), account, mailbox, q)
		} else {
			res, err = x.Candidates(context.Background(), account, mailbox, q)
		}
		if err != nil {
			t.Fatal(err)
		}
		return res.UIDs
	}
	add(1, "alpha beta")
	for round, want := range [][]uint32{{1}, {1, 2}} {
		if round == 1 {
			add(2, "beta gamma")
		}
		for _, c := range []struct {
			fuzzy  bool
			needle string
			want   []uint32
		}{
			{false, "beta", want},
			{false, "gamm", want[1:]},
			{false, "ta gam", want[1:]},
			{true, "gamma", want[1:]},
		} {
			if got := ask(c.fuzzy, c.needle); !slices.Equal(got, c.want) {
				t.Errorf("round %d: %q (fuzzy %v) answered %v, want %v", round, c.needle, c.fuzzy, got, c.want)
			}
		}
	}
}
