package sortthread

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// benchMessages makes n messages like a big mailbox's: subjects from a small vocabulary
// (many equal), dates mostly ascending, a third replying to one of the 30 before.
func benchMessages(n int) ([]*Message, []bool) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"REPORT", "MEETING", "BUDGET", "REVIEW", "PROJECT", "INVOICE", "DRAFT", "SERVER"}
	msgs := make([]*Message, n)
	replies := make([]bool, n)
	for i := range msgs {
		m := &Message{Seq: uint32(i + 1), Arrival: int64(i * 60), Date: int64(i*60 + r.IntN(600)), Size: uint64(1000 + r.IntN(100000)),
			Subject: words[r.IntN(len(words))] + " " + words[r.IntN(len(words))] + " " + words[r.IntN(len(words))],
			From:    fmt.Sprintf("USER%d", r.IntN(50)), MessageID: fmt.Sprintf("%d@bench", i)}
		if i > 0 && r.IntN(3) == 0 {
			p := msgs[i-1-r.IntN(min(i, 30))]
			m.References = append(slices.Clone(p.References), p.MessageID)
			if len(m.References) > 10 {
				m.References = m.References[len(m.References)-10:]
			}
			m.Subject, replies[i] = p.Subject, true
		}
		msgs[i] = m
	}
	return msgs, replies
}

// BenchmarkOrder measures the ordering alone (the keys already read, as columns the way
// the frontend's cache keeps them) at sizes up to a million messages: go test -run XXX
// -bench Order -benchtime 3x -benchmem ./frontend/imap/sortthread/
func BenchmarkOrder(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		msgs, replies := benchMessages(n)
		cols := ColumnsOf(msgs, func(i int) bool { return replies[i] })
		for _, tc := range []struct {
			name string
			run  func()
		}{
			{"SortDate", func() { cols.Order([]Criterion{{Key: Date}}) }},
			{"SortSubject", func() { cols.Order([]Criterion{{Key: Subject}}) }},
			{"SortFromReverseDate", func() { cols.Order([]Criterion{{Key: From}, {Key: Date, Reverse: true}}) }},
			{"ThreadReferences", func() { cols.Thread(References) }},
			{"ThreadOrderedSubject", func() { cols.Thread(OrderedSubject) }},
			{"SortMessages", func() { Sort(slices.Clone(msgs), []Criterion{{Key: Subject}}) }},
		} {
			b.Run(fmt.Sprintf("%s/%d", tc.name, n), func(b *testing.B) {
				for b.Loop() {
					tc.run()
				}
			})
		}
	}
}
