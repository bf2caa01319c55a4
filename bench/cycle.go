package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The steps of the cycle scenario that the mixed workload does not have on their own: its
// "expunge" operation is both commands.
const (
	OpStoreDeleted = "store-deleted" // UID STORE uid +FLAGS.SILENT (\Deleted)
	OpUIDExpunge   = "uid-expunge"   // UID EXPUNGE uid (RFC 4315 2.1)
)

// cycleStep is one command of a session of the cycle scenario.
type cycleStep struct {
	op string
	// run sends the command and checks its answer, as the operation of the same name in
	// the mixed workload does.
	run func(*worker) (int, error)
	// messages: the step reads or changes messages of the mailbox, which must not be empty.
	messages bool
	// racing: the step's check may fail because another client of the same user expunged
	// messages meanwhile (worker.racing).
	racing bool
}

// cycleSteps is one session of the cycle scenario, imaptest's shape with a login per
// session: connect and LOGIN, SELECT INBOX, FETCH of a few messages' flags and envelopes,
// one whole body, a flag change on some messages, APPEND of one message, then \Deleted and
// UID EXPUNGE of that message, so the mailbox keeps its size, and LOGOUT.
var cycleSteps = []cycleStep{
	{op: OpLogin, run: (*worker).login}, // connect, greeting, LOGIN
	{op: OpSelect, run: (*worker).selectMailbox},
	{op: OpFetchFlagsEnvelope, run: (*worker).fetchFlagsEnvelope, messages: true, racing: true},
	{op: OpFetchBody, run: (*worker).fetchBody, messages: true, racing: true},
	{op: OpStore, run: (*worker).store, messages: true, racing: true}, // STORE .SILENT and FETCH FLAGS in one write
	{op: OpAppend, run: (*worker).append},
	{op: OpStoreDeleted, run: (*worker).storeDeleted},
	{op: OpUIDExpunge, run: (*worker).uidExpunge},
	{op: OpLogout, run: (*worker).logout},
}

// DefaultCycleRange is the number of messages of the cycle's FETCH of flags and envelopes.
const DefaultCycleRange = 10

// CycleSteps describes the cycle, as a report's profile.
func CycleSteps(fetchRange int) string {
	names := make([]string, len(cycleSteps))
	for i, step := range cycleSteps {
		names[i] = step.op
		if step.op == OpFetchFlagsEnvelope {
			names[i] += "(" + strconv.Itoa(fetchRange) + ")"
		}
	}
	return strings.Join(names, ",")
}

// RunCycle is the cycle scenario: cfg.Clients clients each repeat a whole session of
// cycleSteps on a new connection until cfg.Duration has passed (a session under way then
// runs to its end, so each client leaves the mailbox as it found it), with every command
// recorded as one operation. cfg.Profile is not used; cfg.Range defaults to
// DefaultCycleRange. The users' mailboxes must hold messages (Populate).
//
// After an error the client drops its connection and starts the next session; the
// message it appended, if any, stays. The figures are the sessions completed without error,
// per second.
func RunCycle(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Range <= 0 {
		cfg.Range = DefaultCycleRange
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Rate > 0 {
		return nil, errors.New("the cycle scenario runs in a closed loop: no rate")
	}
	rep, workers, err := runClients(ctx, &cfg, (*worker).runCycle)
	rep.Scenario = "cycle"
	rep.Profile = CycleSteps(cfg.Range)
	var sessions int
	for _, w := range workers {
		sessions += w.sessions
	}
	rep.Figures["sessions"] = float64(sessions)
	rep.Figures["sessions_per_sec"] = float64(sessions) / rep.DurationSec
	return rep, err
}

// runCycle repeats sessions of cycleSteps until ctx ends; it checks ctx only between
// sessions.
func (w *worker) runCycle(ctx context.Context) {
	defer w.drop(true)
	for ctx.Err() == nil {
		if w.session() {
			w.sessions++
		}
	}
}

// session runs one session of cycleSteps and reports whether every step succeeded; the
// first failure ends it (timed has dropped the connection).
func (w *worker) session() bool {
	for _, step := range cycleSteps {
		fn := func() (int, error) {
			if step.messages && w.s.Exists <= 0 {
				return 0, &VerifyError{Msg: fmt.Sprintf("%s: mailbox %s is empty (populate it first)", step.op, w.cfg.Mailbox)}
			}
			return step.run(w)
		}
		if step.racing {
			fn = w.racing(fn)
		}
		if w.timed(step.op, fn) != nil {
			return false
		}
	}
	return true
}
