package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config describes a run of the mixed workload.
type Config struct {
	Addr     string
	Dial     DialOptions
	Users    []string // client i logs in as Users[i % len(Users)]
	Password string
	Clients  int
	Duration time.Duration
	Profile  *Profile // the mixed workload's; default DefaultProfile
	Seed     uint64
	Mailbox  string        // default INBOX
	Range    int           // messages per FETCH of flags and envelopes; default 20, DefaultCycleRange in the cycle
	IdleHold time.Duration // how long an IDLE waits before DONE; default 50 ms
	Corpus   Corpus        // what APPEND sends
	Progress io.Writer     // a progress line every second; nil for none
	// Rate, when positive, makes the run open-loop: operations are scheduled at Rate per
	// second in all (openloop.go), each taken by whichever client is free, and each one's
	// latency runs from its scheduled start. Zero is the closed loop: every client starts
	// its next operation as soon as the last one is answered.
	Rate float64
	// Arrivals spaces the scheduled starts of an open-loop run: ArrivalsPoisson (the
	// default) or ArrivalsUniform.
	Arrivals string
	// LoginFirst makes every client connect and log in before the clock starts, untimed,
	// so that a run of one command (e.g. APPEND only) times that command alone, not also
	// how fast the server verifies Clients passwords at once. A client whose login fails
	// then logs in again, timed, in the run.
	LoginFirst bool
	// ServerPID, when positive, is the server's process: the CPU time of its process tree
	// over the run, per operation, goes to the report (cpu.go), with the load generator's.
	ServerPID int
}

func (c *Config) defaults() error {
	if c.Mailbox == "" {
		c.Mailbox = "INBOX"
	}
	if c.Range <= 0 {
		c.Range = 20
	}
	if c.IdleHold <= 0 {
		c.IdleHold = 50 * time.Millisecond
	}
	if c.Clients <= 0 {
		return errors.New("need at least one client")
	}
	if len(c.Users) == 0 {
		return errors.New("need at least one user")
	}
	if c.Rate < 0 {
		return fmt.Errorf("rate %v: want 0 (closed loop) or more operations per second", c.Rate)
	}
	switch c.Arrivals {
	case "":
		c.Arrivals = ArrivalsPoisson
	case ArrivalsPoisson, ArrivalsUniform:
	default:
		return fmt.Errorf("arrivals %q: want %s or %s", c.Arrivals, ArrivalsPoisson, ArrivalsUniform)
	}
	return nil
}

// Run drives cfg.Clients concurrent clients for cfg.Duration (or until ctx ends) and
// reports what they measured.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Profile == nil {
		p, err := ParseProfile(DefaultProfile)
		if err != nil {
			return nil, err
		}
		cfg.Profile = p
	}
	rep, _, err := runClients(ctx, &cfg, (*worker).runMixed)
	rep.Scenario = "mixed"
	rep.Profile = cfg.Profile.String()
	return rep, err
}

// runClients runs loop in cfg.Clients workers until cfg.Duration has passed (or ctx ends)
// and each loop has returned; it reports what they measured and returns the workers. The
// error is that of measuring cfg.ServerPID's CPU time; the report is whole without it.
func runClients(ctx context.Context, cfg *Config, loop func(*worker, context.Context)) (*Report, []*worker, error) {
	rec := NewRecorder()
	workers := make([]*worker, cfg.Clients)
	for i := range workers {
		workers[i] = &worker{
			cfg:  cfg,
			rec:  rec,
			id:   i,
			rng:  rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
			user: cfg.Users[i%len(cfg.Users)],
		}
	}
	if cfg.LoginFirst {
		loginAll(ctx, workers)
	}
	start := time.Now()
	// A closed loop ends after Duration. An open-loop run ends once every operation due
	// within Duration was answered, since leaving out the late ones would leave out the
	// slowest answers; but at twice Duration it stops, and the report counts the
	// operations it never started (openloop.go).
	var sched *schedule
	runFor := cfg.Duration
	if cfg.Rate > 0 {
		sched = newSchedule(start, cfg.Duration, cfg.Rate, cfg.Arrivals, cfg.Seed)
		runFor = 2 * cfg.Duration
	}
	ctx, cancel := context.WithDeadline(ctx, start.Add(runFor))
	defer cancel()
	cpu := startCPU(cfg.ServerPID)
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		<-ctx.Done()
		cpu.stop()
	}()
	stopProgress := progress(cfg.Progress, rec, start)
	var wg sync.WaitGroup
	for _, w := range workers {
		w.sched = sched
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(w, ctx)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	rep := rec.Report(elapsed)
	rep.Server = cfg.Addr
	rep.Clients = cfg.Clients
	rep.Users = len(cfg.Users)
	rep.Seed = cfg.Seed
	if sched != nil {
		sched.report(rep)
	}
	cancel()
	<-cpuDone
	err := cpu.record(rep, rep.Total.Count)
	return rep, workers, err
}

// loginAll logs every worker in at once, untimed (Config.LoginFirst); a worker whose login
// fails stays logged out.
func loginAll(ctx context.Context, workers []*worker) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ctx.Err() == nil {
				w.login()
			}
		}()
	}
	wg.Wait()
}

// progress prints a line to w every second until the returned function is called.
func progress(w io.Writer, rec *Recorder, start time.Time) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last uint64
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				ops, errs := rec.Totals()
				fmt.Fprintf(w, "%6.0fs  %9d ops  %8d ops/s  %6d errors\n", now.Sub(start).Seconds(), ops, ops-last, errs)
				last = ops
			}
		}
	}()
	return func() { close(done); <-finished }
}

// worker is one client: a session (nil while logged out) and the UIDs it appended, which
// are the ones it may expunge, so that concurrent clients never expunge each other's reads.
type worker struct {
	cfg       *Config
	rec       *Recorder
	id        int
	rng       *rand.Rand
	user      string
	s         *Session
	appended  []uint32
	appendSeq int
	// message is the memory of the message being appended, reused by the next APPEND
	// (the bytes are in the connection's buffer or sent once appendMessage returns).
	message  messageBuffer
	sessions int // sessions of the cycle scenario completed without error
	// sched hands out the scheduled starts of an open-loop run; nil in a closed loop.
	sched *schedule
	// due is the scheduled start of the operation slot being run, until its first
	// operation has taken it as its start (open loop only).
	due time.Time
}

func (w *worker) runMixed(ctx context.Context) {
	defer w.drop(true)
	for ctx.Err() == nil {
		if w.sched != nil {
			due, ok := w.sched.next()
			if !ok || !sleepUntil(ctx, due) {
				return
			}
			w.due = due
		}
		op := w.cfg.Profile.Pick(w.rng)
		w.do(op)
		w.due = time.Time{}
	}
}

// timed runs one operation, records it, and drops the connection after any error, since
// the session's state is then unknown. In an open-loop run the first operation of a slot
// is timed from the slot's scheduled start, so that the time it waited for a free client
// counts (no coordinated omission); a LOGIN, SELECT or APPEND that it needed first is that
// first operation, and the operation itself is then timed from its own start.
func (w *worker) timed(op string, fn func() (int, error)) error {
	start := time.Now()
	if !w.due.IsZero() {
		start, w.due = w.due, time.Time{}
	}
	n, err := fn()
	if err != nil {
		w.rec.Failure(op, err)
		w.drop(false)
		return err
	}
	w.rec.Success(op, time.Since(start), n)
	return nil
}

// sinceDue is how long ago the slot being run was due, for the operation that takes it as
// its start; 0 in a closed loop or once an operation took it.
func (w *worker) sinceDue() time.Duration {
	if w.due.IsZero() {
		return 0
	}
	d := time.Since(w.due)
	w.due = time.Time{}
	return d
}

func (w *worker) drop(logout bool) {
	if w.s == nil {
		return
	}
	if logout {
		w.s.Exec("LOGOUT")
	}
	w.s.Close()
	w.s = nil
	w.appended = nil
}

func (w *worker) do(op string) {
	switch op {
	case OpLogin:
		if w.s != nil {
			if err := w.timed(OpLogout, w.logout); err != nil {
				return
			}
		}
		w.timed(OpLogin, w.login)
	case OpSelect:
		if w.loggedIn() {
			w.timed(OpSelect, w.selectMailbox)
		}
	case OpLogout:
		if w.loggedIn() {
			w.timed(OpLogout, w.logout)
		}
	case OpAppend:
		if w.loggedIn() {
			w.timed(OpAppend, w.append)
		}
	case OpFetchFlagsEnvelope:
		if w.nonEmpty() {
			w.timed(op, w.racing(w.fetchFlagsEnvelope))
		}
	case OpFetchBody:
		if w.nonEmpty() {
			w.timed(op, w.racing(w.fetchBody))
		}
	case OpStore:
		if w.nonEmpty() {
			w.timed(op, w.racing(w.store))
		}
	case OpSearch:
		if w.selected() {
			w.timed(op, w.search)
		}
	case OpIdle:
		if w.selected() {
			waited := w.sinceDue()
			took, err := w.idle()
			if err != nil {
				w.rec.Failure(op, err)
				w.drop(false)
				return
			}
			w.rec.Success(op, waited+took, 0)
		}
	case OpExpunge:
		if w.selected() && (len(w.appended) > 0 || w.timed(OpAppend, w.append) == nil) {
			w.timed(op, w.expunge)
		}
	}
}

// loggedIn, selected and nonEmpty bring the session to the state an operation needs,
// recording the LOGIN, SELECT or APPEND that takes; they report whether it got there.
func (w *worker) loggedIn() bool {
	return w.s != nil || w.timed(OpLogin, w.login) == nil
}

func (w *worker) selected() bool {
	return w.loggedIn() && (w.s.Selected || w.timed(OpSelect, w.selectMailbox) == nil)
}

func (w *worker) nonEmpty() bool {
	return w.selected() && (w.s.Exists > 0 || w.timed(OpAppend, w.append) == nil && w.s.Exists > 0)
}

func (w *worker) login() (int, error) {
	c, err := Dial(w.cfg.Addr, w.cfg.Dial)
	if err != nil {
		return 0, err
	}
	if err := c.Login(w.user, w.cfg.Password); err != nil {
		c.Close()
		return 0, err
	}
	w.s = &Session{Conn: c}
	return 0, nil
}

func (w *worker) logout() (int, error) {
	res, err := w.s.Exec("LOGOUT")
	if err == nil && !hasUntagged(res, "BYE") {
		err = &VerifyError{Msg: "LOGOUT without BYE"} // RFC 9051 6.1.3
	}
	w.s.Close()
	w.s = nil
	w.appended = nil
	return 0, err
}

func (w *worker) selectMailbox() (int, error) {
	return 0, w.s.Select(w.cfg.Mailbox)
}

func (w *worker) append() (int, error) {
	msg := w.cfg.Corpus.messageIn(&w.message, 1<<32|uint64(w.id), w.appendSeq)
	w.appendSeq++
	uid, err := appendMessage(w.s, w.cfg.Mailbox, msg)
	if err != nil {
		return 0, err
	}
	if w.s.Selected {
		w.appended = append(w.appended, uid)
		w.s.UIDNext = max(w.s.UIDNext, uid+1)
	}
	return len(msg), nil
}

// appendMessage APPENDs msg with the \Seen flag, as a non-synchronizing literal when the
// server has LITERAL+ (RFC 7888), and returns its APPENDUID.
func appendMessage(s *Session, mailbox string, msg []byte) (uint32, error) {
	tag := s.NextTag()
	head := tag + " APPEND " + Quote(mailbox) + ` (\Seen) {` + strconv.Itoa(len(msg))
	if s.Caps["LITERAL+"] {
		s.deadline()
		s.w.WriteString(head + "+}\r\n")
	} else {
		if err := s.Send(head + "}"); err != nil {
			return 0, err
		}
		resp, err := s.ReadResponse()
		if err != nil {
			return 0, err
		}
		if !strings.HasPrefix(resp.Text, "+") {
			return 0, &ProtocolError{Msg: "APPEND: want a continuation request, got " + truncate(resp.Text)}
		}
	}
	s.w.Write(msg)
	s.w.WriteString("\r\n")
	if err := s.w.Flush(); err != nil {
		return 0, fmt.Errorf("send APPEND: %w", err)
	}
	res, err := s.ReadUntilTagged(tag)
	if _, _, aerr := s.Absorb(res); err == nil {
		err = aerr
	}
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	return appendUID(res.Text)
}

// racing wraps a read or flag change of a mailbox that other clients share: when its
// check fails, a NOOP shows whether another client expunged messages meanwhile, which
// explains a missing or stale answer (RFC 2180 4.1); only an unexplained mismatch counts as
// an error. The NOOP is repeated for up to about a second: the other client's expunge may
// have committed before this command ran and still be on its way to this session (in a
// cluster it comes through the frontend's change feed, a few milliseconds after the commit).
func (w *worker) racing(fn func() (int, error)) func() (int, error) {
	return func() (int, error) {
		n, err := fn()
		var ve *VerifyError
		if err == nil || !errors.As(err, &ve) || w.cfg.Clients <= len(w.cfg.Users) {
			return n, err
		}
		seq := ve.Seq
		for wait := 10 * time.Millisecond; ; wait *= 2 {
			res, nerr := w.s.Exec("NOOP")
			if _, _, aerr := w.s.Absorb(res); nerr != nil || aerr != nil {
				return n, err
			}
			var gone bool
			if gone, seq = expunged(res, seq); gone {
				return n, nil
			}
			if wait > 640*time.Millisecond {
				return n, err
			}
			time.Sleep(wait)
		}
	}
}

// expunged reports whether res's EXPUNGE responses remove message seq, and the number seq
// has after them: each EXPUNGE renumbers the messages after it at once (RFC 9051 7.4.1).
// Seq 0 stands for any message: any EXPUNGE removes it.
func expunged(res *Result, seq int) (bool, int) {
	for _, r := range res.Untagged {
		num, after, _ := strings.Cut(r.Text[2:], " ")
		n, err := strconv.Atoi(num)
		if err != nil || !strings.EqualFold(after, "EXPUNGE") {
			continue
		}
		switch {
		case seq == 0 || n == seq:
			return true, 0
		case n < seq:
			seq--
		}
	}
	return false, seq
}

// seqRange picks up to n consecutive sequence numbers in the mailbox.
func (w *worker) seqRange(n int) (lo, hi int) {
	lo = 1 + w.rng.IntN(max(1, w.s.Exists-n+1))
	return lo, min(lo+n-1, w.s.Exists)
}

// checkFetched verifies that every message lo..hi came back with the wanted items, and that
// nothing else came back but unsolicited flag updates (RFC 9051 7.5.2).
func checkFetched(fetches []FetchData, lo, hi int, items ...string) (map[int]*FetchData, error) {
	got := make(map[int]*FetchData, hi-lo+1)
	for i := range fetches {
		f := &fetches[i]
		if f.Seq < lo || f.Seq > hi {
			for name := range f.Items {
				if name != "FLAGS" && name != "UID" && name != "MODSEQ" {
					return nil, &VerifyError{Msg: fmt.Sprintf("unrequested %s for message %d", name, f.Seq)}
				}
			}
			continue
		}
		if got[f.Seq] == nil {
			got[f.Seq] = f
		} else {
			for k, v := range f.Items {
				got[f.Seq].Items[k] = v
			}
		}
	}
	for seq := lo; seq <= hi; seq++ {
		f := got[seq]
		if f == nil {
			return nil, &VerifyError{Msg: fmt.Sprintf("no FETCH response for message %d of %d:%d", seq, lo, hi), Seq: seq}
		}
		for _, item := range items {
			v, ok := f.Items[item]
			if !ok {
				return nil, &VerifyError{Msg: fmt.Sprintf("message %d: no %s", seq, item), Seq: seq}
			}
			switch item {
			case "UID":
				if f.UID() == 0 {
					return nil, &VerifyError{Msg: fmt.Sprintf("message %d: UID %q", seq, v.Atom), Seq: seq}
				}
			case "FLAGS":
				if !v.IsList {
					return nil, &VerifyError{Msg: fmt.Sprintf("message %d: FLAGS is not a list", seq), Seq: seq}
				}
			case "ENVELOPE":
				if !v.IsList || len(v.List) != 10 { // RFC 9051 7.5.2: ten fields
					return nil, &VerifyError{Msg: fmt.Sprintf("message %d: ENVELOPE of %d fields", seq, len(v.List)), Seq: seq}
				}
			}
		}
	}
	return got, nil
}

func (w *worker) fetchFlagsEnvelope() (int, error) {
	lo, hi := w.seqRange(w.cfg.Range)
	_, fetches, _, err := w.s.Run(fmt.Sprintf("FETCH %d:%d (UID FLAGS ENVELOPE)", lo, hi))
	if err != nil {
		return 0, err
	}
	_, err = checkFetched(fetches, lo, hi, "UID", "FLAGS", "ENVELOPE")
	return 0, err
}

func (w *worker) fetchBody() (int, error) {
	seq, _ := w.seqRange(1)
	_, fetches, _, err := w.s.Run(fmt.Sprintf("FETCH %d (UID RFC822.SIZE BODY.PEEK[])", seq))
	if err != nil {
		return 0, err
	}
	got, err := checkFetched(fetches, seq, seq, "UID", "RFC822.SIZE", "BODY[]")
	if err != nil {
		return 0, err
	}
	f := got[seq]
	size, _ := strconv.Atoi(f.Items["RFC822.SIZE"].Atom)
	body := f.Items["BODY[]"]
	if !body.IsStr || len(body.Str) != size || size == 0 {
		return 0, &VerifyError{Msg: fmt.Sprintf("message %d: BODY[] of %d bytes, RFC822.SIZE %d", seq, len(body.Str), size), Seq: seq}
	}
	return size, nil
}

func (w *worker) store() (int, error) {
	lo, hi := w.seqRange(1 + w.rng.IntN(5))
	sign := "+"
	if w.rng.IntN(2) == 0 {
		sign = "-"
	}
	// Servers differ in whether a STORE without .SILENT reports messages whose flags did
	// not change (RFC 9051 6.4.6 asks for all, Dovecot sends only the changed ones), so
	// the flags are read back with a FETCH sent in the same write: one round trip.
	// Clients that share a mailbox each set their own keyword, so that one client's check
	// never sees another's change.
	flag := `\Flagged`
	if w.cfg.Clients > len(w.cfg.Users) {
		flag = "$Bench" + strconv.Itoa(w.id)
	}
	storeTag, fetchTag := w.s.NextTag(), w.s.NextTag()
	w.s.deadline()
	fmt.Fprintf(w.s.w, "%s STORE %d:%d %sFLAGS.SILENT (%s)\r\n%s FETCH %d:%d (FLAGS)\r\n", storeTag, lo, hi, sign, flag, fetchTag, lo, hi)
	if err := w.s.w.Flush(); err != nil {
		return 0, fmt.Errorf("send STORE: %w", err)
	}
	// A server may answer the FETCH before completing the STORE (RFC 9051 5.5): the
	// untagged FETCH responses of both count, in order.
	var fetches []FetchData
	for _, tag := range []string{storeTag, fetchTag} {
		res, err := w.s.ReadUntilTagged(tag)
		more, _, aerr := w.s.Absorb(res)
		if err == nil {
			err = aerr
		}
		if err != nil {
			return 0, err
		}
		fetches = append(fetches, more...)
	}
	got, err := checkFetched(fetches, lo, hi, "FLAGS")
	if err != nil {
		return 0, err
	}
	for seq, f := range got {
		if hasFlag(f.Items["FLAGS"], flag) != (sign == "+") {
			return 0, &VerifyError{Msg: fmt.Sprintf("message %d: FLAGS %v after %sFLAGS %s", seq, f.Items["FLAGS"].List, sign, flag), Seq: seq}
		}
	}
	return 0, nil
}

var searches = []string{
	`UID SEARCH FLAGGED`,
	`UID SEARCH UNSEEN`,
	`UID SEARCH HEADER Subject ` + SearchWord,
	`UID SEARCH UNFLAGGED HEADER From example`,
}

func (w *worker) search() (int, error) {
	exists := w.s.Exists
	res, _, uids, err := w.s.Run(searches[w.rng.IntN(len(searches))])
	if err != nil {
		return 0, err
	}
	// UID SEARCH may carry EXPUNGE responses (RFC 9051 7.5.1); its results may still name
	// the messages they remove, so the bound is the largest the mailbox was.
	return 0, checkSearch(uids, max(exists, w.s.Exists+countUntagged(res, "EXPUNGE")))
}

// checkSearch verifies that SEARCH returned distinct UIDs below UIDNEXT, no more than the
// mailbox holds.
func checkSearch(uids []uint32, exists int) error {
	if len(uids) > exists {
		return &VerifyError{Msg: fmt.Sprintf("SEARCH returned %d UIDs of %d messages", len(uids), exists)}
	}
	if uid, ok := repeatedOrZero(uids); ok {
		return &VerifyError{Msg: fmt.Sprintf("SEARCH returned UID %d twice or zero", uid)}
	}
	return nil
}

// repeatedOrZero returns a number that nums holds twice, or 0 when it holds one. The
// check runs inside the timing of the command whose answer it checks, so it must cost
// little next to the server's work even for an answer naming a million messages (a map
// of them took the client hundreds of milliseconds): a bit per number up to the largest
// when that is at most 64 bits a number, else a sorted copy (4 bytes a number).
func repeatedOrZero(nums []uint32) (uint32, bool) {
	largest := uint32(0)
	for _, n := range nums {
		if n == 0 {
			return 0, true
		}
		largest = max(largest, n)
	}
	if uint64(largest) <= 64*uint64(len(nums)) {
		seen := make([]uint64, largest/64+1)
		for _, n := range nums {
			if seen[n/64]&(1<<(n%64)) != 0 {
				return n, true
			}
			seen[n/64] |= 1 << (n % 64)
		}
		return 0, false
	}
	sorted := slices.Clone(nums)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return sorted[i], true
		}
	}
	return 0, false
}

func (w *worker) expunge() (int, error) {
	if _, err := w.storeDeleted(); err != nil {
		return 0, err
	}
	return w.uidExpunge()
}

// storeDeleted sets \Deleted on the message the client appended last.
func (w *worker) storeDeleted() (int, error) {
	if len(w.appended) == 0 {
		return 0, &VerifyError{Msg: "no message of this client to delete"}
	}
	uid := w.appended[len(w.appended)-1]
	_, _, _, err := w.s.Run(fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Deleted)`, uid))
	return 0, err
}

// uidExpunge expunges the message the client appended last, which storeDeleted marked.
func (w *worker) uidExpunge() (int, error) {
	if len(w.appended) == 0 {
		return 0, &VerifyError{Msg: "no message of this client to expunge"}
	}
	uid := w.appended[len(w.appended)-1]
	w.appended = w.appended[:len(w.appended)-1]
	// RFC 4315 2.1: UID EXPUNGE removes only the given UIDs.
	res, _, _, err := w.s.Run(fmt.Sprintf("UID EXPUNGE %d", uid))
	if err != nil {
		return 0, err
	}
	// Another client of a shared mailbox may have expunged messages too.
	if n := countUntagged(res, "EXPUNGE"); n != 1 && (n == 0 || w.cfg.Clients <= len(w.cfg.Users)) {
		return 0, &VerifyError{Msg: fmt.Sprintf("UID EXPUNGE %d sent %d EXPUNGE responses", uid, n)}
	}
	return 0, nil
}

// idle enters IDLE (RFC 2177), waits IdleHold and leaves it; the time recorded is the
// round trips of IDLE to its continuation request and of DONE to the tagged OK.
func (w *worker) idle() (time.Duration, error) {
	tag := w.s.NextTag()
	start := time.Now()
	if err := w.s.Send(tag + " IDLE"); err != nil {
		return 0, err
	}
	res := &Result{}
	for {
		resp, err := w.s.ReadResponse()
		if err != nil {
			return 0, err
		}
		if strings.HasPrefix(resp.Text, "+") {
			break
		}
		if !strings.HasPrefix(resp.Text, "* ") {
			return 0, &ProtocolError{Msg: "IDLE: want a continuation request, got " + truncate(resp.Text)}
		}
		res.Untagged = append(res.Untagged, resp)
	}
	entered := time.Since(start)
	time.Sleep(w.cfg.IdleHold)
	done := time.Now()
	if err := w.s.Send("DONE"); err != nil {
		return 0, err
	}
	tail, err := w.s.ReadUntilTagged(tag)
	if err != nil {
		return 0, err
	}
	res.Untagged = append(res.Untagged, tail.Untagged...)
	if _, _, err := w.s.Absorb(res); err != nil {
		return 0, err
	}
	return entered + time.Since(done), nil
}

func hasUntagged(res *Result, word string) bool {
	for _, r := range res.Untagged {
		if strings.HasPrefix(strings.ToUpper(r.Text), "* "+word) {
			return true
		}
	}
	return false
}

func countUntagged(res *Result, word string) int {
	n := 0
	for _, r := range res.Untagged {
		if _, after, ok := strings.Cut(r.Text[2:], " "); ok && strings.EqualFold(after, word) {
			n++
		}
	}
	return n
}
