package metadata

import (
	"fmt"
	"testing"
)

// BenchmarkFSMDeleteMailbox measures the apply of a DELETE of a mailbox of 20,000 threaded
// messages (column chunks and a Message-ID dictionary of 20,000 ids), the filling left out.
func BenchmarkFSMDeleteMailbox(b *testing.B) {
	h := withAccount(b)
	for i := range b.N {
		b.StopTimer()
		name := fmt.Sprintf("Box%d", i)
		h.ok(cmdCreateMailbox(alice, name))
		h.fillThreads(h.mustMailbox(alice, name).GetId(), 20000)
		b.StartTimer()
		h.ok(cmdDeleteMailbox(alice, name))
	}
}
