package imap

import (
	"errors"
	"slices"
	"testing"

	"github.com/strata-mail/strata/frontend/imap/sortthread"
)

// TestSubjectModeRefusesMixedEntries: columns holding the subject dictionary's numbers
// refuse an entry with only a subject string, and columns of strings one with only a
// number (from the thread-keys projection); an entry without a subject goes to either. A
// column read that meets such an entry empties the box, which then holds strings
// (errColumnRestart), so a mixed mailbox is ordered by its strings.
func TestSubjectModeRefusesMixedEntries(t *testing.T) {
	numbered := sortEntry{subjectNumbered: true, subjectNumber: 3, subjectStripped: true}
	plain := sortEntry{msg: sortthread.Message{Subject: "x"}}
	none := sortEntry{}
	c := newSortColumns()
	if !c.appendEntry(1, &numbered, threadKeyFields) || c.subjMode != threadIDsNumbers {
		t.Fatalf("numbered entry: mode %v", c.subjMode)
	}
	if c.appendEntry(2, &plain, threadKeyFields) {
		t.Fatal("columns of numbers took a subject string")
	}
	if !c.appendEntry(3, &none, threadKeyFields) || !slices.Equal(c.text[0], []uint32{3, 0}) || c.maxSubject != 3 {
		t.Fatalf("rows %v, max %d", c.text[0], c.maxSubject)
	}
	s := newSortColumns()
	if !s.appendEntry(1, &plain, threadKeyFields) || s.appendEntry(2, &numbered, threadKeyFields) {
		t.Fatal("columns of strings took a number without its string")
	}
	withString := numbered
	withString.subjectStripped, withString.msg.Subject = false, "y"
	if !s.appendEntry(3, &withString, threadKeyFields) || s.texts[0].values[s.text[0][1]] != "y" {
		t.Fatal("columns of strings did not take the string of a numbered entry")
	}

	cache := newSortKeyCache(1 << 20)
	box := sortBoxKey{owner: "a", mailboxID: 1, uidValidity: 1}
	_, err := cache.appendDecoded(box, nil, 2, 2, threadKeyFields, func(add func(uint32, *sortEntry) error) error {
		if err := add(1, &numbered); err != nil {
			return err
		}
		return add(2, &plain)
	})
	if !errors.Is(err, errColumnRestart) {
		t.Fatalf("mixed column read: %v", err)
	}
	b := cache.current(box)
	if b == nil || len(b.cols.uids) != 0 || b.cols.subjMode != threadIDsStrings || b.cols.idMode != threadIDsStrings {
		t.Fatalf("box after the restart: %+v", b)
	}
}

// TestSubjectRanks: the ranks of the subject order are positions from 1, the empty subject
// 0; an order that does not hold every number up to its largest ranks nothing, and a
// snapshot with a number the ranks lack is not ranked (rankSubjects reads them again),
// one with only the empty subject is.
func TestSubjectRanks(t *testing.T) {
	if got := subjectRanks([]uint32{2, 3, 1}); !slices.Equal(got, []uint32{0, 3, 1, 2}) {
		t.Fatalf("ranks %v", got)
	}
	for _, bad := range [][]uint32{{1, 3}, {1, 1}, {0, 1}} {
		if got := subjectRanks(bad); got != nil {
			t.Errorf("ranks of %v: %v", bad, got)
		}
	}
	s := &sortSnapshot{}
	s.subjMode, s.text[0], s.maxSubject = threadIDsNumbers, []uint32{2, 0, 4}, 4
	s.subjectRank = subjectRanks([]uint32{2, 3, 1})
	if s.subjectRanked() {
		t.Fatal("number 4 ranked by an order of 3")
	}
	s.text[0], s.maxSubject = []uint32{2, 0, 3}, 3
	if !s.subjectRanked() {
		t.Fatal("numbers up to 3 not ranked by an order of 3")
	}
	s.text[0], s.maxSubject, s.subjectRank = []uint32{0, 0}, 0, nil
	if !s.subjectRanked() {
		t.Fatal("only empty subjects not ranked without an order")
	}
}
