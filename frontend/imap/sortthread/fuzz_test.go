package sortthread

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzThread builds messages from a compact description (one per line: "id refs... |
// subject") and checks the invariants of the package: every algorithm returns each message
// exactly once, whatever loops, duplicates and self-references the ids make, and the
// rendered thread list balances its parentheses; and the answer is the reference's
// (reference_test.go).
func FuzzThread(f *testing.F) {
	f.Add("a|x\nb a|re x\nc a b|x\nd zz|y\ne zz|y")
	f.Add("g h|loop\nh g|loop\ng g|loop\n|x\n|x")
	f.Add("a b c a|s\nb c a|s\nc a b|s")
	f.Fuzz(func(t *testing.T, desc string) {
		var msgs []*Message
		var replies []bool
		for i, line := range strings.Split(desc, "\n") {
			if i >= 200 {
				break
			}
			ids, subject, _ := strings.Cut(line, "|")
			fields := strings.Fields(ids)
			m := &Message{Seq: uint32(i + 1), Date: int64(len(subject) % 3), Subject: strings.TrimPrefix(subject, "re ")}
			if len(fields) > 0 {
				m.MessageID, m.References = fields[0], fields[1:]
			}
			msgs = append(msgs, m)
			replies = append(replies, strings.HasPrefix(subject, "re "))
		}
		for alg := range []Algorithm{OrderedSubject, References, Refs} {
			roots := Thread(Algorithm(alg), msgs, func(i int) bool { return replies[i] })
			seen := make(map[uint32]int)
			var walk func(n *Node, depth int)
			walk = func(n *Node, depth int) {
				if depth > len(msgs)+1 {
					t.Fatalf("algorithm %d: a thread deeper than the messages", alg)
				}
				if n.Msg >= 0 {
					seen[msgs[n.Msg].Seq]++
				} else if len(n.Children) == 0 {
					t.Fatalf("algorithm %d: a dummy without children", alg)
				}
				for _, c := range n.Children {
					walk(c, depth+1)
				}
			}
			for _, r := range roots {
				walk(r, 0)
			}
			for _, m := range msgs {
				if seen[m.Seq] != 1 {
					t.Fatalf("algorithm %d: message %d appears %d times", alg, m.Seq, seen[m.Seq])
				}
			}
			out := string(AppendThreads(nil, roots, func(p int32) uint32 { return msgs[p].Seq }))
			if strings.Count(out, "(") != strings.Count(out, ")") || strings.Count(out, "()") > 0 {
				t.Fatalf("algorithm %d: unbalanced or empty list %q", alg, out)
			}
			if n := len(strings.FieldsFunc(out, func(r rune) bool { return r < '0' || r > '9' })); n != len(msgs) {
				t.Fatalf("algorithm %d: %d numbers in %q for %d messages (%s)", alg, n, out, len(msgs), strconv.Quote(desc))
			}
			if got, want := threadBoth(Algorithm(alg), msgs, func(i int) bool { return replies[i] }); got != want {
				t.Fatalf("algorithm %d: %q, the reference gives %q (%s)", alg, got, want, strconv.Quote(desc))
			}
		}
	})
}
