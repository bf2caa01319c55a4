package fs

import (
	"sync"

	"github.com/strata-mail/strata/internal/fsync"
)

// dirSyncer group-commits the fsyncs of directories: a Put that needs a directory synced
// after its rename joins the next fsync of that directory, which starts once the one in
// flight (if any) is over, so any number of Puts waiting on one directory at once share one
// fsync and none returns before an fsync that started after its rename. A failed fsync
// fails every Put that waited on it.
//
// Which Puts share: those whose objects land in one shard directory, those that create
// shard directories under one parent (every Put into a young store does), dedup hits on
// one object, and Deletes.
type dirSyncer struct {
	// sync fsyncs one directory (fsync.Dir; tests put faults in).
	sync func(dir string) error

	mu   sync.Mutex
	dirs map[string]*dirRounds
}

// dirRounds is the fsync state of one directory while some Put waits on it.
type dirRounds struct {
	running bool       // an fsync of the directory is in flight
	next    *syncRound // the round that arriving Puts join; nil if none waits yet
}

// syncRound is one fsync of a directory and the Puts that wait on it.
type syncRound struct {
	done   chan struct{}
	err    error
	joined int // Puts waiting on it
}

func newDirSyncer() *dirSyncer {
	return &dirSyncer{sync: fsync.Dir, dirs: map[string]*dirRounds{}}
}

// begin joins the next round of fsyncs of every directory of dirs, starting those not in
// flight, and returns a wait that returns once they are all done, with the first error.
func (d *dirSyncer) begin(dirs []string) (wait func() error) {
	rounds := make([]*syncRound, len(dirs))
	for i, dir := range dirs {
		rounds[i] = d.join(dir)
	}
	return func() error {
		var first error
		for _, r := range rounds {
			<-r.done
			if r.err != nil && first == nil {
				first = r.err
			}
		}
		return first
	}
}

// join returns the next round of dir's fsyncs, starting it if no fsync of dir is in flight.
func (d *dirSyncer) join(dir string) *syncRound {
	d.mu.Lock()
	defer d.mu.Unlock()
	dr := d.dirs[dir]
	if dr == nil {
		dr = &dirRounds{}
		d.dirs[dir] = dr
	}
	if dr.next == nil {
		dr.next = &syncRound{done: make(chan struct{})}
	}
	r := dr.next
	r.joined++
	if !dr.running {
		d.start(dir, dr)
	}
	return r
}

// start runs dir's next round; d.mu is held.
func (d *dirSyncer) start(dir string, dr *dirRounds) {
	r := dr.next
	dr.next, dr.running = nil, true
	go func() {
		r.err = d.sync(dir)
		close(r.done)
		d.mu.Lock()
		defer d.mu.Unlock()
		dr.running = false
		if dr.next != nil {
			// Puts arrived during this fsync: their renames may be later than its start.
			d.start(dir, dr)
			return
		}
		delete(d.dirs, dir)
	}()
}

// waiting returns how many callers wait on dir's next round, which has not started.
func (d *dirSyncer) waiting(dir string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dr := d.dirs[dir]; dr != nil && dr.next != nil {
		return dr.next.joined
	}
	return 0
}
