package imap_test

import (
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
)

// BenchmarkSelect100k measures SELECT (then UNSELECT) of a 100,000-message INBOX over a
// socket: Cold when no session of the frontend has it selected, so the shared view is loaded
// in pages each time (and dropped at once after, SetMailViewLinger 0), Warm while another
// session holds it, so SELECT is one GetMailbox call and a copy of the view (mailview.go).
//
//	go test ./frontend/imap -run '^$' -bench BenchmarkSelect100k -benchtime 10x
func BenchmarkSelect100k(b *testing.B) {
	imap.SetMailViewLinger(b, 0)
	srv := startServerWith(b, func(cfg *embedded.Config) { cfg.MaxMessageSize = 1 << 20 })
	fillMailbox(b, srv, benchMessages)
	bc := dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")
	bc.run("ENABLE IMAP4rev2") // no \Recent claims: the SELECT alone is measured
	bc.run("UNSELECT")
	selectLoop := func(b *testing.B) {
		bc.b = b
		for b.Loop() {
			bc.run("SELECT INBOX")
			bc.run("UNSELECT")
		}
	}
	b.Run("Cold", selectLoop)
	dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX") // holds the view open
	b.Run("Warm", selectLoop)
}
