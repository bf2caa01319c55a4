package sortthread

import (
	"cmp"
	"math/bits"
	"slices"
	"strconv"
)

// Node is a thread node: a message (Msg, its position in the Columns' Rows), or a dummy
// (Msg -1) standing for a message that is referred to but not in the set (RFC 5256 4,
// REFERENCES step 1).
type Node struct {
	Msg int32
	// key is the rank, in (sent date, position) order (threader.rank), of the message the
	// node sorts by (first): its own, or for a dummy its first child's once its children
	// are sorted. Ranks are distinct per message, so siblings, whose first messages
	// differ, have distinct keys and sort by them as by their sent dates.
	key      int32
	Children []*Node
	gone     bool // merged into another thread (step 5)
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
// messages' subjects were replies or forwards (REFERENCES step 5), by index into msgs. A
// node's Msg is its message's index in msgs.
func Thread(alg Algorithm, msgs []*Message, reply func(i int) bool) []*Node {
	return ColumnsOf(msgs, reply).Thread(alg)
}

// Thread groups the messages of c into threads with alg. It reads Date, the Subject text
// column and, but for ORDEREDSUBJECT, MessageID, RefStart, Refs, IDs and Reply.
func (c *Columns) Thread(alg Algorithm) []*Node {
	t := threader{c: c, subject: c.Text[Subject]}
	switch alg {
	case OrderedSubject:
		return t.orderedSubject()
	case Refs:
		return t.references(true)
	default:
		return t.references(false)
	}
}

type threader struct {
	c       *Columns
	subject TextColumn
	// rank is by position the place of each message in (sent date, position) order
	// (bySentDate), made once by a radix sort (REFERENCES and REFS), so that sets of
	// siblings sort by an integer of their nodes instead of comparing dates through rows.
	rank []int32
}

// ranks sets t.rank: Order by sent date breaks ties by position, as bySentDate does.
func (t *threader) ranks() {
	order := t.c.Order([]Criterion{{Key: Date}})
	t.rank = make([]int32, len(order))
	for i, p := range order {
		t.rank[p] = int32(i)
	}
}

// bySentDate orders messages (positions) by sent date, then sequence number (RFC 5256 4:
// messages with equal sent dates are ordered by sequence number).
func (t *threader) bySentDate(a, b int32) int {
	if r := cmp.Compare(t.c.Date[t.c.Rows[a]], t.c.Date[t.c.Rows[b]]); r != 0 {
		return r
	}
	return cmp.Compare(a, b)
}

// byKey orders nodes by the sent date of the message each sorts by (first), through their
// keys (Node.key), which must be set.
func byKey(a, b *Node) int { return cmp.Compare(a.key, b.key) }

// sortNodes sorts nodes by key: by comparison when few, else packed with their index into
// one uint64 each and radix sorted (the root set of a large mailbox).
func sortNodes(nodes []*Node) {
	if len(nodes) < 1<<12 {
		slices.SortFunc(nodes, byKey)
		return
	}
	posBits := bits.Len(uint(len(nodes) - 1))
	var most int32
	for _, nd := range nodes {
		most = max(most, nd.key)
	}
	packed := make([]uint64, len(nodes))
	for i, nd := range nodes {
		packed[i] = uint64(nd.key)<<posBits | uint64(i)
	}
	radixSort(packed, posBits, posBits+bits.Len32(uint32(most)))
	sorted := make([]*Node, len(nodes))
	mask := uint64(1)<<posBits - 1
	for i, k := range packed {
		sorted[i] = nodes[k&mask]
	}
	copy(nodes, sorted)
}

// subjectID is the id of the base subject of the message at position p; 0 is the empty
// subject (TextColumn).
func (t *threader) subjectID(p int32) uint32 {
	return t.subject.IDs[t.c.Rows[p]]
}

// subjectOf is the rank of the base subject of the message at position p; 0 is the empty
// subject (TextColumn).
func (t *threader) subjectOf(p int32) uint32 {
	return t.subject.Rank[t.subject.IDs[t.c.Rows[p]]]
}

// orderedSubject is RFC 5256 4 ORDEREDSUBJECT: messages sorted by base subject then sent
// date, split into threads of one base subject, the threads sorted by the sent date of
// their first message; a thread's first message is the parent of all the others.
func (t *threader) orderedSubject() []*Node {
	sorted := t.c.Order([]Criterion{{Key: Subject}, {Key: Date}})
	nodes := make([]Node, len(sorted))
	kids := make([]*Node, len(sorted))
	var roots []*Node
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && t.subjectOf(sorted[j]) == t.subjectOf(sorted[i]) {
			j++
		}
		root := &nodes[i]
		root.Msg = sorted[i]
		root.Children = kids[i+1 : j : j]
		for k := i + 1; k < j; k++ {
			nodes[k].Msg = sorted[k]
			kids[k] = &nodes[k]
		}
		roots = append(roots, root)
		i = j
	}
	slices.SortFunc(roots, func(a, b *Node) int { return t.bySentDate(a.Msg, b.Msg) })
	return roots
}

// references is RFC 5256 4 REFERENCES, steps 1 to 6; with refs, the REFS variant: no
// subject gathering (step 5) and threads ordered by their latest message.
//
// The id table is a slice: container x for x below c.IDs is that of the interned id x, and
// container c.IDs+i that of message i when it has no Message-ID or one an earlier message
// already has (step 1). Step 1 links containers by parent index alone; the nodes and their
// children are made once it is done, in two allocations.
func (t *threader) references(refs bool) []*Node {
	c := t.c
	t.ranks()
	n, ids := len(c.Rows), c.IDs
	parent := make([]int32, ids+n)
	msgOf := make([]int32, ids+n)
	used := make([]bool, ids+n)
	for i := range parent {
		parent[i], msgOf[i] = -1, -1
	}
	own := make([]int32, n)
	// Step 1: the message's own container. A message without a Message-ID, or whose id an
	// earlier message already has, gets a unique one of its own.
	for i, r := range c.Rows {
		x := int32(c.MessageID[r])
		if x == 0 || msgOf[x] >= 0 {
			x = int32(ids + i)
		}
		msgOf[x], used[x], own[i] = int32(i), true, x
	}
	wouldLoop := func(p, child int32) bool {
		for ; p >= 0; p = parent[p] {
			if p == child {
				return true
			}
		}
		return false
	}
	for i, r := range c.Rows {
		// Step 1.A: link the references in their order, keeping existing links and never
		// making a loop.
		prev := int32(-1)
		for _, id := range c.Refs[c.RefStart[r]:c.RefStart[r+1]] {
			if id == 0 {
				continue
			}
			x := int32(id)
			used[x] = true
			if prev >= 0 && parent[x] < 0 && !wouldLoop(prev, x) {
				parent[x] = prev
			}
			prev = x
		}
		// Step 1.B: the last reference becomes the parent, replacing any earlier parent;
		// no references: no parent. Not when that would make a loop.
		if x := own[i]; prev < 0 || !wouldLoop(prev, x) {
			parent[x] = prev
		}
	}
	// The nodes: one per container used, children gathered by parent.
	slot := make([]int32, ids+n)
	var count, children int
	for x, u := range used {
		slot[x] = -1
		if u {
			slot[x] = int32(count)
			count++
			if parent[x] >= 0 {
				children++
			}
		}
	}
	nodes := make([]Node, count)
	kids := make([]*Node, children)
	nkids := make([]int32, count)
	for x, u := range used {
		if u && parent[x] >= 0 {
			nkids[slot[parent[x]]]++
		}
	}
	// Step 2: the root set (its order does not matter: every set of siblings is sorted).
	var roots []*Node
	off := 0
	for x, u := range used {
		if !u {
			continue
		}
		nd := &nodes[slot[x]]
		nd.Msg = msgOf[x]
		if nd.Msg >= 0 {
			nd.key = t.rank[nd.Msg]
		}
		k := int(nkids[slot[x]])
		nd.Children = kids[off : off : off+k]
		off += k
		if parent[x] < 0 {
			roots = append(roots, nd)
		}
	}
	for x, u := range used {
		if u && parent[x] >= 0 {
			p := &nodes[slot[parent[x]]]
			p.Children = append(p.Children, &nodes[slot[x]])
		}
	}
	// Step 3: prune dummies; and steps 4 and 6 below the root set in the same walk: sort
	// siblings by sent date (a dummy by its first child's), children before their parents.
	roots = prune(roots, true)
	if refs {
		type thread struct {
			root   *Node
			latest int32
		}
		threads := make([]thread, len(roots))
		for i, r := range roots {
			threads[i] = thread{r, t.latest(r)}
		}
		slices.SortFunc(threads, func(a, b thread) int { return cmp.Compare(a.latest, b.latest) })
		for i, th := range threads {
			roots[i] = th.root
		}
		return roots
	}
	sortNodes(roots)
	// Step 5: gather threads by base subject.
	roots = t.gatherSubjects(roots)
	for _, r := range roots {
		if r.Msg < 0 {
			// A dummy at the root has messages as children (prune, gatherSubjects).
			slices.SortFunc(r.Children, byKey)
			r.key = r.Children[0].key
		}
	}
	sortNodes(roots)
	return roots
}

func link(parent, child *Node) {
	parent.Children = append(parent.Children, child)
}

// prune is RFC 5256 4 step 3 over siblings: a dummy without children goes (3.A); a dummy
// with children is replaced by them (3.B), except a dummy at the root with more than one
// child, which stays. Siblings without a dummy among them are kept as they are. In the
// same walk, each node's children, once pruned, are sorted by key (steps 4 and 6: deepest
// first, a dummy's children spliced into its parent's before that set is sorted), and a
// dummy left with children takes its first child's key; the siblings given are not sorted.
func prune(siblings []*Node, root bool) []*Node {
	dummies := false
	for _, n := range siblings {
		n.Children = prune(n.Children, false)
		if len(n.Children) > 1 {
			slices.SortFunc(n.Children, byKey)
		}
		if n.Msg < 0 && len(n.Children) > 0 {
			n.key = n.Children[0].key
		}
		dummies = dummies || n.Msg < 0
	}
	if !dummies {
		return siblings
	}
	var out []*Node
	for _, n := range siblings {
		switch {
		case n.Msg >= 0:
			out = append(out, n)
		case len(n.Children) == 0:
		case root && len(n.Children) > 1:
			out = append(out, n)
		default:
			out = append(out, n.Children...)
		}
	}
	return out
}

// first is the message a node sorts by: its own, or a dummy's first child's (whose
// children are sorted first).
func first(n *Node) int32 {
	for n.Msg < 0 {
		n = n.Children[0]
	}
	return n.Msg
}

// latest is the rank (threader.rank) of the message of a thread with the latest sent date
// (REFS).
func (t *threader) latest(n *Node) int32 {
	best := int32(-1)
	var walk func(*Node)
	walk = func(n *Node) {
		if n.Msg >= 0 {
			best = max(best, t.rank[n.Msg])
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(n)
	return best
}

// gatherSubjects is RFC 5256 4 step 5: threads at the root with the same base subject are
// merged.
//
// Subjects are told apart by their ids (equal ids, equal base subjects; 0 the empty
// one), so REFERENCES and REFS need no ranks (TextColumn.Rank may be nil).
func (t *threader) gatherSubjects(roots []*Node) []*Node {
	distinct := len(t.subject.Rank)
	if distinct == 0 {
		for _, id := range t.subject.IDs {
			distinct = max(distinct, int(id)+1)
		}
	}
	subjects := make([]*Node, distinct) // by base subject's id
	isReply := func(n *Node) bool { return n.Msg >= 0 && t.c.Reply[t.c.Rows[n.Msg]] }
	// 5.B, 5.C: the container each base subject is kept with.
	for _, r := range roots {
		s := t.subjectID(first(r))
		if s == 0 {
			continue
		}
		old := subjects[s]
		if old == nil || (r.Msg < 0 && old.Msg >= 0) || (old.Msg >= 0 && r.Msg >= 0 && isReply(old) && !isReply(r)) {
			subjects[s] = r
		}
	}
	// 5.D: merge the others into it.
	for _, r := range roots {
		s := t.subjectID(first(r))
		if s == 0 {
			continue
		}
		k := subjects[s]
		if k == r || r.gone {
			continue
		}
		switch {
		case k.Msg < 0 && r.Msg < 0: // both dummies
			k.Children = append(k.Children, r.Children...)
		case k.Msg < 0: // the kept one is a dummy: r goes under it
			link(k, r)
		case r.Msg < 0: // r is a dummy: the kept message goes under it
			k.gone = true
			link(r, k)
			subjects[s] = r
			continue
		case !isReply(k) && isReply(r): // r replies to the kept one
			link(k, r)
		default: // both replies, or neither: a new dummy holds both
			d := &Node{Msg: -1}
			k.gone = true
			link(d, k)
			link(d, r)
			subjects[s] = d
			roots = append(roots, d)
		}
		r.gone = true
	}
	out := roots[:0:0]
	for _, r := range roots {
		if !r.gone {
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
func AppendThreads(b []byte, roots []*Node, num func(pos int32) uint32) []byte {
	for _, r := range roots {
		b = appendMembers(append(b, '('), r, num)
		b = append(b, ')')
	}
	return b
}

func appendMembers(b []byte, n *Node, num func(pos int32) uint32) []byte {
	first := true
	for {
		if n.Msg >= 0 {
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
