package sortthread

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// The THREAD implementation before the columns (commit 34ee8bc), kept as the reference
// that TestThreadMatchesReference and FuzzThread compare the column one with.

// oldNode is a thread node: a message, or a dummy (Msg nil) standing for a message that is
// referred to but not in the set (RFC 5256 4, REFERENCES step 1).
type oldNode struct {
	Msg      *Message
	Children []*oldNode
	parent   *oldNode
	id       string
	reply    bool // the message's subject was a reply or forward (RFC 5256 2.1)
}

// oldThread groups msgs (given in sequence order) into threads with alg; reply says which
// messages' subjects were replies or forwards (REFERENCES step 5), by index into msgs.
func oldThread(alg Algorithm, msgs []*Message, reply func(i int) bool) []*oldNode {
	switch alg {
	case OrderedSubject:
		return oldOrderedSubject(msgs)
	case Refs:
		return oldReferences(msgs, reply, true)
	default:
		return oldReferences(msgs, reply, false)
	}
}

// oldBySentDate orders messages by sent date, then sequence number (RFC 5256 4: messages
// with equal sent dates are ordered by sequence number).
func oldBySentDate(a, b *Message) int {
	if r := cmp.Compare(a.Date, b.Date); r != 0 {
		return r
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// oldOrderedSubject is RFC 5256 4 ORDEREDSUBJECT: messages sorted by base subject then sent
// date, split into threads of one base subject, the threads sorted by the sent date of
// their oldFirst message; a thread's oldFirst message is the parent of all the others.
func oldOrderedSubject(msgs []*Message) []*oldNode {
	sorted := slices.Clone(msgs)
	slices.SortFunc(sorted, func(a, b *Message) int {
		if r := cmp.Compare(a.Subject, b.Subject); r != 0 {
			return r
		}
		return oldBySentDate(a, b)
	})
	var roots []*oldNode
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].Subject == sorted[i].Subject {
			j++
		}
		root := &oldNode{Msg: sorted[i]}
		for _, m := range sorted[i+1 : j] {
			root.Children = append(root.Children, &oldNode{Msg: m})
		}
		roots = append(roots, root)
		i = j
	}
	slices.SortFunc(roots, func(a, b *oldNode) int { return oldBySentDate(a.Msg, b.Msg) })
	return roots
}

// oldReferences is RFC 5256 4 REFERENCES, steps 1 to 6; with refs, the REFS variant: no
// subject gathering (step 5) and threads ordered by their oldLatest message.
func oldReferences(msgs []*Message, reply func(i int) bool, refs bool) []*oldNode {
	table := make(map[string]*oldNode, len(msgs))
	container := func(id string) *oldNode {
		n := table[id]
		if n == nil {
			n = &oldNode{id: id}
			table[id] = n
		}
		return n
	}
	nodes := make([]*oldNode, len(msgs))
	// Step 1: the message's own container. A message without a Message-ID, or whose id an
	// earlier message already has, gets a unique id of its own (step 1).
	for i, m := range msgs {
		n := table[m.MessageID]
		if m.MessageID == "" || (n != nil && n.Msg != nil) {
			n = &oldNode{id: "\x00" + strconv.Itoa(i)}
		} else if n == nil {
			n = container(m.MessageID)
		}
		n.Msg = m
		n.reply = reply != nil && reply(i)
		nodes[i] = n
	}
	for i, m := range msgs {
		n := nodes[i]
		// Step 1.A: oldLink the oldReferences in their order, keeping existing links and never
		// making a loop.
		var prev *oldNode
		for _, id := range m.References {
			if id == "" {
				continue
			}
			c := container(id)
			if prev != nil && c.parent == nil && !oldWouldLoop(prev, c) {
				oldLink(prev, c)
			}
			prev = c
		}
		// Step 1.B: the last reference becomes the parent, replacing any earlier parent;
		// no oldReferences: no parent. Not when that would make a loop.
		if prev != nil && oldWouldLoop(prev, n) {
			continue
		}
		oldUnlink(n)
		if prev != nil {
			oldLink(prev, n)
		}
	}
	// Step 2: the root set, in a stable order (of oldFirst appearance of each container).
	var roots []*oldNode
	seen := make(map[*oldNode]bool, len(table))
	addRoot := func(n *oldNode) {
		if n.parent == nil && !seen[n] {
			seen[n] = true
			roots = append(roots, n)
		}
	}
	for i, m := range msgs {
		addRoot(nodes[i])
		for _, id := range m.References {
			if c := table[id]; c != nil {
				addRoot(oldRootOf(c))
			}
		}
	}
	// Step 3: oldPrune dummies.
	roots = oldPrune(roots, true)
	// Steps 4 and 6: sort siblings by sent date (a dummy by its oldFirst child's), children
	// before their parents.
	for _, r := range roots {
		oldSortTree(r)
	}
	if refs {
		latestOf := make(map[*oldNode]*Message, len(roots))
		for _, r := range roots {
			latestOf[r] = oldLatest(r)
		}
		slices.SortFunc(roots, func(a, b *oldNode) int { return oldBySentDate(latestOf[a], latestOf[b]) })
		return roots
	}
	slices.SortFunc(roots, func(a, b *oldNode) int { return oldBySentDate(oldFirst(a), oldFirst(b)) })
	// Step 5: gather threads by base subject.
	roots = oldGatherSubjects(roots)
	for _, r := range roots {
		if r.Msg == nil {
			slices.SortFunc(r.Children, func(a, b *oldNode) int { return oldBySentDate(oldFirst(a), oldFirst(b)) })
		}
	}
	slices.SortFunc(roots, func(a, b *oldNode) int { return oldBySentDate(oldFirst(a), oldFirst(b)) })
	return roots
}

// oldWouldLoop reports whether making child a child of parent would make a loop: child is
// parent or one of its ancestors.
func oldWouldLoop(parent, child *oldNode) bool {
	for p := parent; p != nil; p = p.parent {
		if p == child {
			return true
		}
	}
	return false
}

func oldLink(parent, child *oldNode) {
	child.parent = parent
	parent.Children = append(parent.Children, child)
}

func oldUnlink(n *oldNode) {
	if p := n.parent; p != nil {
		p.Children = slices.DeleteFunc(p.Children, func(c *oldNode) bool { return c == n })
		n.parent = nil
	}
}

func oldRootOf(n *oldNode) *oldNode {
	for n.parent != nil {
		n = n.parent
	}
	return n
}

// oldPrune is RFC 5256 4 step 3 over siblings: a dummy without children goes (3.A); a dummy
// with children is replaced by them (3.B), except a dummy at the root with more than one
// child, which stays.
func oldPrune(siblings []*oldNode, root bool) []*oldNode {
	var out []*oldNode
	for _, n := range siblings {
		n.Children = oldPrune(n.Children, false)
		for _, c := range n.Children {
			c.parent = n
		}
		switch {
		case n.Msg != nil:
			out = append(out, n)
		case len(n.Children) == 0:
		case root && len(n.Children) > 1:
			out = append(out, n)
		default:
			for _, c := range n.Children {
				c.parent = n.parent
			}
			out = append(out, n.Children...)
		}
	}
	return out
}

// oldFirst is the message a node sorts by: its own, or a dummy's oldFirst child's (whose
// children are sorted oldFirst).
func oldFirst(n *oldNode) *Message {
	for n.Msg == nil {
		n = n.Children[0]
	}
	return n.Msg
}

// oldLatest is the message of a thread with the oldLatest sent date (REFS).
func oldLatest(n *oldNode) *Message {
	var best *Message
	var walk func(*oldNode)
	walk = func(n *oldNode) {
		if n.Msg != nil && (best == nil || oldBySentDate(best, n.Msg) < 0) {
			best = n.Msg
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(n)
	return best
}

// oldSortTree sorts every set of siblings below n by sent date, deepest oldFirst (step 6).
func oldSortTree(n *oldNode) {
	for _, c := range n.Children {
		oldSortTree(c)
	}
	slices.SortFunc(n.Children, func(a, b *oldNode) int { return oldBySentDate(oldFirst(a), oldFirst(b)) })
}

// oldGatherSubjects is RFC 5256 4 step 5: threads at the root with the same base subject are
// merged.
func oldGatherSubjects(roots []*oldNode) []*oldNode {
	subjects := make(map[string]*oldNode)
	isReply := func(n *oldNode) bool { return n.Msg != nil && n.reply }
	// 5.B, 5.C: the container each base subject is kept with.
	for _, r := range roots {
		s := oldFirst(r).Subject
		if s == "" {
			continue
		}
		old := subjects[s]
		if old == nil || (r.Msg == nil && old.Msg != nil) || (old.Msg != nil && r.Msg != nil && isReply(old) && !isReply(r)) {
			subjects[s] = r
		}
	}
	// 5.D: merge the others into it.
	gone := make(map[*oldNode]bool)
	for _, r := range roots {
		s := oldFirst(r).Subject
		if s == "" {
			continue
		}
		t := subjects[s]
		if t == r || gone[r] {
			continue
		}
		switch {
		case t.Msg == nil && r.Msg == nil: // both dummies
			for _, c := range r.Children {
				c.parent = t
			}
			t.Children = append(t.Children, r.Children...)
		case t.Msg == nil: // the kept one is a dummy: r goes under it
			oldLink(t, r)
		case r.Msg == nil: // r is a dummy: the kept message goes under it
			gone[t] = true
			oldLink(r, t)
			subjects[s] = r
			continue
		case !isReply(t) && isReply(r): // r replies to the kept one
			oldLink(t, r)
		default: // both replies, or neither: a new dummy holds both
			d := &oldNode{}
			gone[t] = true
			oldLink(d, t)
			oldLink(d, r)
			subjects[s] = d
			roots = append(roots, d)
		}
		gone[r] = true
	}
	out := roots[:0:0]
	for _, r := range roots {
		if !gone[r] {
			out = append(out, r)
		}
	}
	return out
}

// asNodes turns old threads into Nodes, a message's position being its Seq-1 (the tests
// number their messages from 1 in order), so that AppendThreads renders both.
func asNodes(roots []*oldNode) []*Node {
	out := make([]*Node, len(roots))
	for i, r := range roots {
		out[i] = &Node{Msg: -1, Children: asNodes(r.Children)}
		if r.Msg != nil {
			out[i].Msg = int32(r.Msg.Seq - 1)
		}
	}
	return out
}

// threadBoth renders the threads of msgs by alg with the column implementation and the
// reference one.
func threadBoth(alg Algorithm, msgs []*Message, reply func(int) bool) (got, want string) {
	roots := Thread(alg, msgs, reply)
	got = string(AppendThreads(nil, roots, func(p int32) uint32 { return msgs[p].Seq }))
	want = string(AppendThreads(nil, asNodes(oldThread(alg, msgs, reply)), func(p int32) uint32 { return msgs[p].Seq }))
	return got, want
}

// TestThreadMatchesReference: the column THREAD answers exactly what the implementation
// before it answered, for every algorithm, on mailboxes with threads, shared subjects,
// duplicate and missing Message-IDs, references to absent messages and loops.
func TestThreadMatchesReference(t *testing.T) {
	for _, n := range []int{0, 1, 2, 50, 3000, 20_000} { // 20,000: root sets past sortNodes' radix bound
		msgs, replies := benchMessages(n)
		rng := rand.New(rand.NewPCG(uint64(n), 9))
		for i, m := range msgs {
			switch rng.IntN(10) {
			case 0:
				m.MessageID = ""
			case 1:
				m.MessageID = msgs[rng.IntN(i+1)].MessageID // a duplicate
			case 2:
				m.References = append(m.References, "absent"+strconv.Itoa(rng.IntN(20)), "")
			case 3:
				if i+1 < len(msgs) {
					m.References = append(m.References, msgs[i+1+rng.IntN(len(msgs)-i-1)].MessageID) // a later one: loops
				}
			case 4:
				m.Subject = ""
			}
			m.Date = int64(rng.IntN(n + 1)) // ties
		}
		for _, alg := range []Algorithm{OrderedSubject, References, Refs} {
			got, want := threadBoth(alg, msgs, func(i int) bool { return replies[i] })
			if got != want {
				t.Fatalf("%d messages, algorithm %d:\n got %.300s\nwant %.300s", n, alg, got, want)
			}
		}
	}
}
