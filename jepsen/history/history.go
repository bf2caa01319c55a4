// Package history is the record of one Jepsen-style run against Strata: every client
// operation with its invocation and completion times, its outcome and what the client saw
// (UIDs, flags, MODSEQs, sequence numbers and the unsolicited updates the server sent while
// it ran), and every fault window the nemesis opened. The checker (jepsen/checker) reads it,
// the workload (jepsen/workload) and the nemesis (jepsen/nemesis) write it through a Recorder.
//
// Invariants:
//   - every time is a monotonic duration since the run started, read from the Recorder's one
//     clock, so times of different goroutines compare;
//   - an op's Complete is set, and is >= Invoke, once it is completed; an op that never
//     completes (the run ended first) is saved with Outcome Unknown and Complete 0, which
//     the checker reads as "may have happened any time after Invoke";
//   - Outcome Fail means definitely not applied (a tagged NO or BAD, an LMTP 4xx/5xx before
//     the end of DATA); anything that may have applied is Unknown, never Fail;
//   - a History saved as JSON lines and loaded again is equal to the original.
package history

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Outcome is what a client knows about whether its operation took effect.
type Outcome string

const (
	OK      Outcome = "ok"      // acknowledged: applied
	Fail    Outcome = "fail"    // definitely not applied
	Unknown Outcome = "unknown" // may or may not have applied: timeout, connection lost, BYE
)

// Op kinds. A session's first op is a Connect; Select covers SELECT and EXAMINE (ReadOnly).
const (
	KindConnect    = "connect"     // greeting, LOGIN, ENABLE
	KindAppend     = "append"      // APPEND (MessageID, Flags in; UIDValidity, UIDs out)
	KindDeliver    = "deliver"     // LMTP delivery of MessageID to Mailbox (INBOX) of Account
	KindStore      = "store"       // STORE / UID STORE (UIDs, StoreMode, Flags, Silent in)
	KindFetch      = "fetch"       // FETCH / UID FETCH (UIDs or All; Messages out)
	KindSelect     = "select"      // SELECT / EXAMINE with CONDSTORE (Exists, UIDNext, HighestModSeq out)
	KindSearch     = "search"      // SEARCH / UID SEARCH (Criteria in; Nums out)
	KindExpunge    = "expunge"     // EXPUNGE (every \Deleted message)
	KindUIDExpunge = "uid-expunge" // UID EXPUNGE of UIDs
	KindMove       = "move"        // UID MOVE UIDs to Dest (COPYUID: SourceUIDs, UIDs out)
	KindCopy       = "copy"        // UID COPY UIDs to Dest (COPYUID: SourceUIDs, UIDs out)
	KindStatus     = "status"      // STATUS (Exists = MESSAGES, UIDNext, HighestModSeq out)
	KindNoop       = "noop"        // NOOP poll: only Updates
)

// Store modes of a STORE (RFC 9051 6.4.6).
const (
	StoreAdd    = "+" // +FLAGS
	StoreRemove = "-" // -FLAGS
	StoreSet    = "=" // FLAGS
)

// Message is one message as the client saw it in a FETCH response. Flags is nil when the
// response carried no FLAGS and an empty non-nil slice when it carried "()".
type Message struct {
	Seq       uint32   `json:"seq,omitempty"`
	UID       uint32   `json:"uid,omitempty"`
	MessageID string   `json:"mid,omitempty"`
	Flags     []string `json:"flags"`
	ModSeq    uint64   `json:"modseq,omitempty"`
}

// Update kinds: unsolicited data the server sent while an op ran (RFC 9051 7, RFC 7162 3.2.10).
const (
	UpdateExists   = "exists"   // * n EXISTS: Count
	UpdateExpunge  = "expunge"  // * n EXPUNGE: Seq
	UpdateVanished = "vanished" // * VANISHED [(EARLIER)] uids: UIDs, Earlier
	UpdateFetch    = "fetch"    // * n FETCH (...) not asked for: Message
)

// Update is one piece of unsolicited data, in the order the client read them.
type Update struct {
	Kind    string        `json:"kind"`
	At      time.Duration `json:"at"`
	Count   uint32        `json:"count,omitempty"`
	Seq     uint32        `json:"seq,omitempty"`
	UIDs    []uint32      `json:"uids,omitempty"`
	Earlier bool          `json:"earlier,omitempty"`
	Message *Message      `json:"msg,omitempty"`
}

// Op is one client operation: who ran it where, when, the inputs and the client's view of the
// result.
type Op struct {
	ID       int64         `json:"id"`
	Process  int           `json:"process"` // the logical client; kept across reconnects
	Session  int64         `json:"session"` // one connection; LMTP deliveries have their own
	Frontend string        `json:"frontend,omitempty"`
	Kind     string        `json:"kind"`
	Account  string        `json:"account,omitempty"`
	Mailbox  string        `json:"mailbox,omitempty"`
	Invoke   time.Duration `json:"invoke"`
	Complete time.Duration `json:"complete"`
	Outcome  Outcome       `json:"outcome"`
	Error    string        `json:"error,omitempty"`

	// Inputs.
	MessageID string   `json:"mid,omitempty"`    // append, deliver
	ByUID     bool     `json:"by_uid,omitempty"` // the UID form of FETCH/STORE/SEARCH/COPY/MOVE
	All       bool     `json:"all,omitempty"`    // the op named 1:* (a listing of the whole view)
	Targets   []uint32 `json:"targets,omitempty"`
	StoreMode string   `json:"store_mode,omitempty"`
	Flags     []string `json:"flags,omitempty"` // store flags, append flags
	Silent    bool     `json:"silent,omitempty"`
	Dest      string   `json:"dest,omitempty"` // copy, move
	ReadOnly  bool     `json:"read_only,omitempty"`
	QResync   bool     `json:"qresync,omitempty"` // connect: ENABLE QRESYNC was sent
	Criteria  string   `json:"criteria,omitempty"`

	// The client's view of the result.
	UIDValidity     uint32    `json:"uidvalidity,omitempty"`      // of Mailbox (the selected one for copy/move)
	DestUIDValidity uint32    `json:"dest_uidvalidity,omitempty"` // COPYUID of a copy/move
	UIDs            []uint32  `json:"uids,omitempty"`             // APPENDUID, COPYUID destination
	SourceUIDs      []uint32  `json:"source_uids,omitempty"`      // COPYUID source, in the order of UIDs
	ExpungedSeqs    []uint32  `json:"expunged_seqs,omitempty"`    // EXPUNGE responses of an EXPUNGE command
	Messages        []Message `json:"messages,omitempty"`         // FETCH results, STORE results
	Nums            []uint32  `json:"nums,omitempty"`             // SEARCH results (UIDs when ByUID)
	Exists          uint32    `json:"exists,omitempty"`           // SELECT EXISTS, STATUS MESSAGES
	HasExists       bool      `json:"has_exists,omitempty"`       // Exists was reported (it may be 0)
	UIDNext         uint32    `json:"uidnext,omitempty"`          // SELECT, STATUS
	HighestModSeq   uint64    `json:"highestmodseq,omitempty"`    // SELECT, STATUS
	Updates         []Update  `json:"updates,omitempty"`
}

// Fault is one fault window the nemesis opened; End is 0 while it is open (and in a saved
// history, when the run ended before it healed).
type Fault struct {
	Kind   string        `json:"kind"`
	Target string        `json:"target,omitempty"`
	Start  time.Duration `json:"start"`
	End    time.Duration `json:"end"`
	Detail string        `json:"detail,omitempty"`
}

// History is the record of one run.
type History struct {
	Seed   int64
	Ops    []Op
	Faults []Fault
}

// Recorder records a run from many goroutines against one clock.
type Recorder struct {
	start time.Time

	mu     sync.Mutex
	seed   int64
	ops    []Op
	index  map[int64]int // op ID -> position in ops
	faults []Fault
}

// NewRecorder starts the run's clock.
func NewRecorder(seed int64) *Recorder {
	return &Recorder{start: time.Now(), seed: seed, index: map[int64]int{}}
}

// Now is the time since the run started, on the monotonic clock.
func (r *Recorder) Now() time.Duration { return time.Since(r.start) }

// Invoke records the start of op (its ID and Invoke are set here) and returns its ID. The
// op stays Unknown until Complete.
func (r *Recorder) Invoke(op Op) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.ID = int64(len(r.ops)) + 1
	op.Invoke = r.Now()
	op.Outcome = Unknown
	op.Complete = 0
	r.index[op.ID] = len(r.ops)
	r.ops = append(r.ops, op)
	return op.ID
}

// Complete records the completion of op id: fill sets the outcome and the client's view; the
// completion time is taken after fill returns. Completing an unknown or completed op is a
// no-op, so a late goroutine cannot rewrite history.
func (r *Recorder) Complete(id int64, fill func(*Op)) {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.index[id]
	if !ok || r.ops[i].Complete != 0 {
		return
	}
	op := r.ops[i]
	if fill != nil {
		fill(&op)
	}
	op.ID, op.Invoke = r.ops[i].ID, r.ops[i].Invoke
	op.Complete = max(now, op.Invoke, 1)
	r.ops[i] = op
}

// FaultStart opens a fault window and returns its handle for FaultEnd (the two make
// jepsen/nemesis.Recorder).
func (r *Recorder) FaultStart(kind, target, detail string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, Fault{Kind: kind, Target: target, Start: r.Now(), Detail: detail})
	return int64(len(r.faults) - 1)
}

// FaultEnd closes the fault window h.
func (r *Recorder) FaultEnd(h int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h >= 0 && h < int64(len(r.faults)) && r.faults[h].End == 0 {
		r.faults[h].End = max(r.Now(), r.faults[h].Start)
	}
}

// History returns a copy of what is recorded so far, ops in invocation order.
func (r *Recorder) History() *History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &History{Seed: r.seed, Ops: make([]Op, len(r.ops)), Faults: slices.Clone(r.faults)}
	copy(h.Ops, r.ops)
	return h
}

// The JSON-lines form: one header line, then one line per op and per fault.
type line struct {
	Type  string `json:"type"` // "run", "op", "fault"
	Seed  int64  `json:"seed,omitempty"`
	Op    *Op    `json:"op,omitempty"`
	Fault *Fault `json:"fault,omitempty"`
}

// Save writes h as JSON lines.
func (h *History) Save(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(line{Type: "run", Seed: h.Seed}); err != nil {
		return fmt.Errorf("save history: %w", err)
	}
	for i := range h.Ops {
		if err := enc.Encode(line{Type: "op", Op: &h.Ops[i]}); err != nil {
			return fmt.Errorf("save op %d: %w", h.Ops[i].ID, err)
		}
	}
	for i := range h.Faults {
		if err := enc.Encode(line{Type: "fault", Fault: &h.Faults[i]}); err != nil {
			return fmt.Errorf("save fault %d: %w", i, err)
		}
	}
	return bw.Flush()
}

// MaxLine bounds one JSON line of a saved history (an op with its updates).
const MaxLine = 16 << 20

// Load reads a history written by Save. It refuses lines longer than MaxLine, unknown line
// types, a missing or repeated header, ops with duplicate IDs and times that go backwards
// within an op, so the checker can trust what it gets.
func Load(r io.Reader) (*History, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	h := &History{}
	seen := map[int64]bool{}
	header := false
	n := 0
	for sc.Scan() {
		n++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("history line %d: %w", n, err)
		}
		switch {
		case l.Type == "run" && !header:
			header = true
			h.Seed = l.Seed
		case l.Type == "run":
			return nil, fmt.Errorf("history line %d: a second run header", n)
		case !header:
			return nil, fmt.Errorf("history line %d: %q before the run header", n, l.Type)
		case l.Type == "op" && l.Op != nil:
			if err := l.Op.valid(); err != nil {
				return nil, fmt.Errorf("history line %d: %w", n, err)
			}
			if seen[l.Op.ID] {
				return nil, fmt.Errorf("history line %d: op %d twice", n, l.Op.ID)
			}
			seen[l.Op.ID] = true
			h.Ops = append(h.Ops, *l.Op)
		case l.Type == "fault" && l.Fault != nil:
			if l.Fault.Start < 0 || (l.Fault.End != 0 && l.Fault.End < l.Fault.Start) {
				return nil, fmt.Errorf("history line %d: fault %q ends before it starts", n, l.Fault.Kind)
			}
			h.Faults = append(h.Faults, *l.Fault)
		default:
			return nil, fmt.Errorf("history line %d: unknown line type %q", n, l.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history line %d: %w", n+1, err)
	}
	if !header {
		return nil, errors.New("history: no run header")
	}
	slices.SortStableFunc(h.Ops, func(a, b Op) int {
		return cmp.Or(cmp.Compare(a.Invoke, b.Invoke), cmp.Compare(a.ID, b.ID))
	})
	return h, nil
}

func (op *Op) valid() error {
	switch op.Outcome {
	case OK, Fail, Unknown:
	default:
		return fmt.Errorf("op %d: outcome %q", op.ID, op.Outcome)
	}
	if op.Invoke < 0 || (op.Complete != 0 && op.Complete < op.Invoke) {
		return fmt.Errorf("op %d: completes before it is invoked", op.ID)
	}
	if op.Complete == 0 && op.Outcome != Unknown {
		return fmt.Errorf("op %d: %s but never completed", op.ID, op.Outcome)
	}
	return nil
}

// Done reports whether op completed (Unknown ops that the run ended on did not).
func (op *Op) Done() bool { return op.Complete != 0 }

// End is the op's completion time, or the largest duration for an op that never completed:
// it may take effect any time after Invoke.
func (op *Op) End() time.Duration {
	if op.Complete == 0 {
		return time.Duration(1<<63 - 1)
	}
	return op.Complete
}
