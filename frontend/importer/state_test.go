package importer_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strata-mail/strata/frontend/importer"
)

// TestStateFailedBounded: the failed messages of a record are listed once each, in UID
// order, with their reasons cut short; past importer.MaxFailed a new one is refused (the
// caller keeps LastUID below it), a listed one is still updated; with every entry at its
// longest the record stays far below the 16 KiB an annotation may hold.
func TestStateFailedBounded(t *testing.T) {
	st := &importer.State{Source: "imaps://someone@imap.example.com/" + strings.Repeat("F", 200), UIDValidity: 4000000000, LastUID: 4000000000}
	long := strings.Repeat("é", 500)
	for i := range importer.MaxFailed {
		if !st.NoteFailed(uint32(4000000000-i), long) {
			t.Fatalf("failure %d refused", i)
		}
	}
	if st.NoteFailed(7, "one more") {
		t.Fatal("a failure past MaxFailed was listed")
	}
	if !st.NoteFailed(4000000000, "updated") || st.Failed[len(st.Failed)-1].Reason != "updated" {
		t.Fatalf("a listed failure was not updated: %+v", st.Failed[len(st.Failed)-1])
	}
	for i := 1; i < len(st.Failed); i++ {
		if st.Failed[i].UID <= st.Failed[i-1].UID {
			t.Fatalf("failures out of order at %d: %+v", i, st.Failed[i-1:i+1])
		}
	}
	if r := st.Failed[0].Reason; len(r) > 130 || !strings.HasSuffix(r, "...") || !strings.HasPrefix(r, "é") {
		t.Fatalf("reason not cut on a character: %q", r)
	}
	value, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(value) > 12<<10 {
		t.Fatalf("a full record is %d bytes", len(value))
	}
	st.DropFailed(4000000000)
	if st.Failing(4000000000) || !st.Failing(4000000001-importer.MaxFailed) || len(st.Failed) != importer.MaxFailed-1 {
		t.Fatalf("after DropFailed: %d failures", len(st.Failed))
	}
}
