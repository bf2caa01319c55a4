package sortthread

import (
	"cmp"
	"slices"
	"strconv"
)

// Node is a thread node: a message, or a dummy (Msg nil) standing for a message that is
// referred to but not in the set (RFC 5256 4, REFERENCES step 1).
type Node struct {
	Msg      *Message
	Children []*Node
	parent   *Node
	id       string
	reply    bool // the message's subject was a reply or forward (RFC 5256 2.1)
}

// Algorithm is a THREAD algorithm.
type Algorithm int

// The THREAD algorithms.
const (
	OrderedSubject Algorithm = iota // RFC 5256 4 ORDEREDSUBJECT
	References                      // RFC 5256 4 REFERENCES
	Refs                            // draft-ietf-morg-inthread REFS
)

// AlgorithmByName maps thread-alg atoms (upper case) to algorithms.
var AlgorithmByName = map[string]Algorithm{"ORDEREDSUBJECT": OrderedSubject, "REFERENCES": References, "REFS": Refs}

// Thread groups msgs (given in sequence order) into threads with alg; reply says which
// messages' subjects were replies or forwards (REFERENCES step 5), by index into msgs.
func Thread(alg Algorithm, msgs []*Message, reply func(i int) bool) []*Node {
	switch alg {
	case OrderedSubject:
		return orderedSubject(msgs)
	case Refs:
		return references(msgs, reply, true)
	default:
		return references(msgs, reply, false)
	}
}

// bySentDate orders messages by sent date, then sequence number (RFC 5256 4: messages
// with equal sent dates are ordered by sequence number).
func bySentDate(a, b *Message) int {
	if r := cmp.Compare(a.Date, b.Date); r != 0 {
		return r
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// orderedSubject is RFC 5256 4 ORDEREDSUBJECT: messages sorted by base subject then sent
// date, split into threads of one base subject, the threads sorted by the sent date of
// their first message; a thread's first message is the parent of all the others.
func orderedSubject(msgs []*Message) []*Node {
	sorted := slices.Clone(msgs)
	slices.SortFunc(sorted, func(a, b *Message) int {
		if r := cmp.Compare(a.Subject, b.Subject); r != 0 {
			return r
		}
		return bySentDate(a, b)
	})
	var roots []*Node
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].Subject == sorted[i].Subject {
			j++
		}
		root := &Node{Msg: sorted[i]}
		for _, m := range sorted[i+1 : j] {
			root.Children = append(root.Children, &Node{Msg: m})
		}
		roots = append(roots, root)
		i = j
	}
	slices.SortFunc(roots, func(a, b *Node) int { return bySentDate(a.Msg, b.Msg) })
	return roots
}

// references is RFC 5256 4 REFERENCES, steps 1 to 6; with refs, the REFS variant: no
// subject gathering (step 5) and threads ordered by their latest message.
func references(msgs []*Message, reply func(i int) bool, refs bool) []*Node {
	table := make(map[string]*Node, len(msgs))
	container := func(id string) *Node {
		n := table[id]
		if n == nil {
			n = &Node{id: id}
			table[id] = n
		}
		return n
	}
	nodes := make([]*Node, len(msgs))
	// Step 1: the message's own container. A message without a Message-ID, or whose id an
	// earlier message already has, gets a unique id of its own (step 1).
	for i, m := range msgs {
		n := table[m.MessageID]
		if m.MessageID == "" || (n != nil && n.Msg != nil) {
			n = &Node{id: "\x00" + strconv.Itoa(i)}
		} else if n == nil {
			n = container(m.MessageID)
		}
		n.Msg = m
		n.reply = reply != nil && reply(i)
		nodes[i] = n
	}
	for i, m := range msgs {
		n := nodes[i]
		// Step 1.A: link the references in their order, keeping existing links and never
		// making a loop.
		var prev *Node
		for _, id := range m.References {
			if id == "" {
				continue
			}
			c := container(id)
			if prev != nil && c.parent == nil && !wouldLoop(prev, c) {
				link(prev, c)
			}
			prev = c
		}
		// Step 1.B: the last reference becomes the parent, replacing any earlier parent;
		// no references: no parent. Not when that would make a loop.
		if prev != nil && wouldLoop(prev, n) {
			continue
		}
		unlink(n)
		if prev != nil {
			link(prev, n)
		}
	}
	// Step 2: the root set, in a stable order (of first appearance of each container).
	var roots []*Node
	seen := make(map[*Node]bool, len(table))
	addRoot := func(n *Node) {
		if n.parent == nil && !seen[n] {
			seen[n] = true
			roots = append(roots, n)
		}
	}
	for i, m := range msgs {
		addRoot(nodes[i])
		for _, id := range m.References {
			if c := table[id]; c != nil {
				addRoot(rootOf(c))
			}
		}
	}
	// Step 3: prune dummies.
	roots = prune(roots, true)
	// Steps 4 and 6: sort siblings by sent date (a dummy by its first child's), children
	// before their parents.
	for _, r := range roots {
		sortTree(r)
	}
	if refs {
		latestOf := make(map[*Node]*Message, len(roots))
		for _, r := range roots {
			latestOf[r] = latest(r)
		}
		slices.SortFunc(roots, func(a, b *Node) int { return bySentDate(latestOf[a], latestOf[b]) })
		return roots
	}
	slices.SortFunc(roots, func(a, b *Node) int { return bySentDate(first(a), first(b)) })
	// Step 5: gather threads by base subject.
	roots = gatherSubjects(roots)
	for _, r := range roots {
		if r.Msg == nil {
			slices.SortFunc(r.Children, func(a, b *Node) int { return bySentDate(first(a), first(b)) })
		}
	}
	slices.SortFunc(roots, func(a, b *Node) int { return bySentDate(first(a), first(b)) })
	return roots
}

// wouldLoop reports whether making child a child of parent would make a loop: child is
// parent or one of its ancestors.
func wouldLoop(parent, child *Node) bool {
	for p := parent; p != nil; p = p.parent {
		if p == child {
			return true
		}
	}
	return false
}

func link(parent, child *Node) {
	child.parent = parent
	parent.Children = append(parent.Children, child)
}

func unlink(n *Node) {
	if p := n.parent; p != nil {
		p.Children = slices.DeleteFunc(p.Children, func(c *Node) bool { return c == n })
		n.parent = nil
	}
}

func rootOf(n *Node) *Node {
	for n.parent != nil {
		n = n.parent
	}
	return n
}

// prune is RFC 5256 4 step 3 over siblings: a dummy without children goes (3.A); a dummy
// with children is replaced by them (3.B), except a dummy at the root with more than one
// child, which stays.
func prune(siblings []*Node, root bool) []*Node {
	var out []*Node
	for _, n := range siblings {
		n.Children = prune(n.Children, false)
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

// first is the message a node sorts by: its own, or a dummy's first child's (whose
// children are sorted first).
func first(n *Node) *Message {
	for n.Msg == nil {
		n = n.Children[0]
	}
	return n.Msg
}

// latest is the message of a thread with the latest sent date (REFS).
func latest(n *Node) *Message {
	var best *Message
	var walk func(*Node)
	walk = func(n *Node) {
		if n.Msg != nil && (best == nil || bySentDate(best, n.Msg) < 0) {
			best = n.Msg
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(n)
	return best
}

// sortTree sorts every set of siblings below n by sent date, deepest first (step 6).
func sortTree(n *Node) {
	for _, c := range n.Children {
		sortTree(c)
	}
	slices.SortFunc(n.Children, func(a, b *Node) int { return bySentDate(first(a), first(b)) })
}

// gatherSubjects is RFC 5256 4 step 5: threads at the root with the same base subject are
// merged.
func gatherSubjects(roots []*Node) []*Node {
	subjects := make(map[string]*Node)
	isReply := func(n *Node) bool { return n.Msg != nil && n.reply }
	// 5.B, 5.C: the container each base subject is kept with.
	for _, r := range roots {
		s := first(r).Subject
		if s == "" {
			continue
		}
		old := subjects[s]
		if old == nil || (r.Msg == nil && old.Msg != nil) || (old.Msg != nil && r.Msg != nil && isReply(old) && !isReply(r)) {
			subjects[s] = r
		}
	}
	// 5.D: merge the others into it.
	gone := make(map[*Node]bool)
	for _, r := range roots {
		s := first(r).Subject
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
			link(t, r)
		case r.Msg == nil: // r is a dummy: the kept message goes under it
			gone[t] = true
			link(r, t)
			subjects[s] = r
			continue
		case !isReply(t) && isReply(r): // r replies to the kept one
			link(t, r)
		default: // both replies, or neither: a new dummy holds both
			d := &Node{}
			gone[t] = true
			link(d, t)
			link(d, r)
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

// AppendThreads appends the thread-lists of roots (RFC 5256 5: thread-list = "("
// (thread-members / thread-nested) ")"; thread-members = nz-number *(SP nz-number) [SP
// thread-nested]; thread-nested = 2*thread-list), each message written as num gives it and a
// dummy as nothing: a chain of only children is one list, and two or more children are
// nested lists.
func AppendThreads(b []byte, roots []*Node, num func(*Message) uint32) []byte {
	for _, r := range roots {
		b = appendMembers(append(b, '('), r, num)
		b = append(b, ')')
	}
	return b
}

func appendMembers(b []byte, n *Node, num func(*Message) uint32) []byte {
	first := true
	for {
		if n.Msg != nil {
			if !first {
				b = append(b, ' ')
			}
			b = strconv.AppendUint(b, uint64(num(n.Msg)), 10)
			first = false
		}
		switch len(n.Children) {
		case 0:
			return b
		case 1:
			n = n.Children[0]
			continue
		}
		if !first {
			b = append(b, ' ')
		}
		for _, c := range n.Children {
			b = appendMembers(append(b, '('), c, num)
			b = append(b, ')')
		}
		return b
	}
}
