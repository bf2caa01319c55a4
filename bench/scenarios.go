package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BigMailboxConfig describes the big-mailbox scenario: one user whose mailbox holds many
// messages.
type BigMailboxConfig struct {
	Addr     string
	Dial     DialOptions
	User     string
	Password string
	Mailbox  string
	Repeat   int // rounds of the command sequence; default 3
	// Steps are the steps each round runs after its SELECT, in BigMailboxSteps' order
	// (ParseBigMailboxSteps); nil for all of them.
	Steps []string
	Seed  uint64
}

// BigMailboxSteps are the big-mailbox steps, in the order a round runs them. "select" is
// the round's SELECT on the scenario's connection: the first round's is cold when no other
// session has the mailbox open (a server just started); "select-warm" is a SELECT on a
// second connection while the first holds the mailbox selected (a mailbox already open on
// the server, issue 14).
var BigMailboxSteps = []string{"select", "select-warm", "fetch-all-flags", "search-flag", "search-header",
	"search-body-many", "search-body-none", "uid-fetch-last50-envelope", "sort-date", "sort-subject", "thread-references"}

// SearchAbsentWord is in no corpus message (not in words or utf8Words): a BODY search for it
// answers nothing, the far end of a word "in few messages" (the corpus has no rare body
// word: each of its words is in most messages' text, or in every HTML part).
const SearchAbsentWord = "zeppelin"

// ParseBigMailboxSteps reads a comma-separated list of BigMailboxSteps names ("" or "all"
// for every step). "select" is always run (every other step needs the mailbox selected).
func ParseBigMailboxSteps(list string) ([]string, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return nil, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		known := false
		for _, step := range BigMailboxSteps {
			known = known || step == name
		}
		if !known {
			return nil, fmt.Errorf("unknown big-mailbox step %q (known: %s)", truncate(name), strings.Join(BigMailboxSteps, ","))
		}
		if want[name] {
			return nil, fmt.Errorf("big-mailbox step %q named twice", name)
		}
		want[name] = true
	}
	steps := []string{"select"}
	for _, step := range BigMailboxSteps[1:] {
		if want[step] {
			steps = append(steps, step)
		}
	}
	return steps, nil
}

// BigMailbox runs, Repeat times on one connection: SELECT, a SELECT on a second connection
// (warm), FETCH 1:* (FLAGS), UID SEARCH by a flag, by a header and by two BODY words (one
// in most messages, one in none), UID FETCH of the ENVELOPEs of the last 50 UIDs, UID SORT
// by DATE and by SUBJECT and UID THREAD REFERENCES (RFC 5256) of every message, or the
// Steps chosen; each answer is checked against the mailbox's size. The first round's times
// are also reported alone (figures round1_<op>_ms): a server may build indexes or caches
// on first use, and the first SELECT is the cold one.
func BigMailbox(ctx context.Context, cfg BigMailboxConfig) (*Report, error) {
	if cfg.Mailbox == "" {
		cfg.Mailbox = "INBOX"
	}
	if cfg.Repeat <= 0 {
		cfg.Repeat = 3
	}
	chosen := cfg.Steps
	if chosen == nil {
		chosen = BigMailboxSteps
	}
	rec := NewRecorder()
	c, err := Dial(cfg.Addr, cfg.Dial)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(cfg.User, cfg.Password); err != nil {
		return nil, err
	}
	s := &Session{Conn: c}
	var other *Session // the second connection of select-warm, logged in before the rounds
	if slices.Contains(chosen, "select-warm") {
		oc, err := Dial(cfg.Addr, cfg.Dial)
		if err != nil {
			return nil, err
		}
		defer oc.Close()
		if err := oc.Login(cfg.User, cfg.Password); err != nil {
			return nil, err
		}
		other = &Session{Conn: oc}
	}
	hits := map[string]int{} // messages each search found in its last round
	search := func(command string, nonEmpty, empty bool) error {
		_, _, uids, err := s.Run(command)
		hits[command] = len(uids)
		if err == nil {
			err = checkSearch(uids, s.Exists)
		}
		if err == nil && nonEmpty && len(uids) == 0 && s.Exists > 1000 {
			err = &VerifyError{Msg: command + " found nothing"}
		}
		if err == nil && empty && len(uids) > 0 {
			err = &VerifyError{Msg: fmt.Sprintf("%s found %d messages, want none", command, len(uids))}
		}
		return err
	}
	fns := map[string]func() error{
		"select": func() error { return s.Select(cfg.Mailbox) },
		"select-warm": func() error {
			if err := other.Select(cfg.Mailbox); err != nil {
				return err
			}
			if other.Exists != s.Exists {
				return &VerifyError{Msg: fmt.Sprintf("second SELECT: %d messages, first %d", other.Exists, s.Exists)}
			}
			return nil
		},
		"fetch-all-flags": func() error { return fetchAllFlags(s) },
		"search-flag":     func() error { return search("UID SEARCH UNSEEN", false, false) },
		"search-header":   func() error { return search("UID SEARCH HEADER Subject "+SearchWord, true, false) },
		// RFC 9051 6.4.4: BODY matches the body's text; SearchWord is in most bodies.
		"search-body-many":          func() error { return search("UID SEARCH BODY "+SearchWord, true, false) },
		"search-body-none":          func() error { return search("UID SEARCH BODY "+SearchAbsentWord, false, true) },
		"uid-fetch-last50-envelope": func() error { return fetchLastEnvelopes(s, 50) },
		// RFC 5256 SORT and THREAD over the whole mailbox; each answer must name every
		// message exactly once.
		"sort-date":         func() error { return sortAll(s, "UID SORT (DATE) UTF-8 ALL", "* SORT") },
		"sort-subject":      func() error { return sortAll(s, "UID SORT (SUBJECT) UTF-8 ALL", "* SORT") },
		"thread-references": func() error { return sortAll(s, "UID THREAD REFERENCES UTF-8 ALL", "* THREAD") },
	}
	start := time.Now()
	var exists int
	var failed error // steps answered NO
	firstRound := map[string]time.Duration{}
	for round := 0; round < cfg.Repeat && ctx.Err() == nil; round++ {
		for _, op := range chosen {
			t := time.Now()
			if err := fns[op](); err != nil {
				rec.Failure(op, err)
				// A tagged NO (e.g. NO [LIMIT] past a server's search deadline) fails
				// that step only: the session is still in step, the next ones run. The
				// scenario still ends with the error.
				var se *ServerError
				if errors.As(err, &se) && se.Status == "NO" && op != "select" {
					failed = errors.Join(failed, fmt.Errorf("%s: %w", op, err))
					continue
				}
				return rec.Report(time.Since(start)), errors.Join(failed, fmt.Errorf("%s: %w", op, err))
			}
			took := time.Since(t)
			rec.Success(op, took, 0)
			if round == 0 {
				firstRound[op] = took
			}
		}
		exists = s.Exists
	}
	c.Exec("LOGOUT")
	if other != nil {
		other.Conn.Exec("LOGOUT")
	}
	rep := rec.Report(time.Since(start))
	rep.Scenario = "bigmailbox"
	rep.Server = cfg.Addr
	rep.Clients, rep.Users = 1, 1
	rep.Seed = cfg.Seed
	rep.Figures = map[string]float64{"messages": float64(exists)}
	for op, took := range firstRound {
		rep.Figures["round1_"+op+"_ms"] = ms(took)
	}
	for command, n := range hits { // the same on both servers of a comparison
		rep.Figures["found: "+command] = float64(n)
	}
	return rep, failed
}

// sortAll runs a SORT or THREAD of every message and checks that its answer (the untagged
// line starting with prefix) names s.Exists distinct messages.
func sortAll(s *Session, command, prefix string) error {
	var found bool
	_, err := s.ExecStream(command, func(line []byte) error {
		if !bytes.HasPrefix(line, []byte(prefix)) {
			return nil
		}
		found = true
		// The numbers of the answer, whatever separates them (THREAD's parentheses).
		uids := make([]uint32, 0, s.Exists)
		var n uint64
		digits := false
		rest := line[len(prefix):]
		for i := 0; i <= len(rest); i++ {
			if i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
				n, digits = n*10+uint64(rest[i]-'0'), true
				if n > math.MaxUint32 {
					return &VerifyError{Msg: command + " names a number past 2^32-1"}
				}
				continue
			}
			if digits {
				uids = append(uids, uint32(n))
			}
			n, digits = 0, false
		}
		if uid, ok := repeatedOrZero(uids); ok {
			return &VerifyError{Msg: fmt.Sprintf("%s names %d twice, or 0", command, uid)}
		}
		if len(uids) != s.Exists {
			return &VerifyError{Msg: fmt.Sprintf("%s names %d messages of %d", command, len(uids), s.Exists)}
		}
		return nil
	})
	if err == nil && !found {
		err = &VerifyError{Msg: command + ": no " + prefix + " response"}
	}
	return err
}

// fetchAllFlags runs FETCH 1:* (FLAGS) and checks that each message 1..EXISTS came back
// once with its flags; it reads the responses as they come (ExecStream), keeping nothing per
// message but a bit, so that the time is the server's rather than this client's.
func fetchAllFlags(s *Session) error {
	seen := make([]bool, s.Exists+1)
	count := 0
	_, err := s.ExecStream("FETCH 1:* (FLAGS)", func(line []byte) error {
		num, rest, _ := bytes.Cut(line[2:], []byte(" "))
		n, ok := atoi(num)
		if !ok {
			return nil
		}
		switch {
		case bytes.EqualFold(rest, []byte("EXISTS")):
			return &VerifyError{Msg: "the mailbox grew during the scenario"}
		case len(rest) > 6 && bytes.EqualFold(rest[:6], []byte("FETCH ")):
			if n < 1 || n > s.Exists || seen[n] {
				return &VerifyError{Msg: fmt.Sprintf("FETCH for message %d of %d, or twice", n, s.Exists)}
			}
			if !bytes.Contains(rest, []byte("FLAGS (")) && !strings.Contains(strings.ToUpper(string(rest)), "FLAGS (") {
				return &VerifyError{Msg: "FETCH without FLAGS: " + truncate(string(line))}
			}
			seen[n] = true
			count++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if count != s.Exists {
		return &VerifyError{Msg: fmt.Sprintf("FETCH 1:* returned %d of %d messages", count, s.Exists)}
	}
	return nil
}

// atoi parses a message number of at most 10 digits without allocating.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, true
}

func fetchLastEnvelopes(s *Session, n uint32) error {
	lo := uint32(1)
	if s.UIDNext > n {
		lo = s.UIDNext - n
	}
	_, fetches, _, err := s.Run(fmt.Sprintf("UID FETCH %d:* (UID ENVELOPE)", lo))
	if err != nil {
		return err
	}
	if len(fetches) == 0 && s.Exists > 0 || len(fetches) > int(n) {
		return &VerifyError{Msg: fmt.Sprintf("UID FETCH %d:* returned %d messages", lo, len(fetches))}
	}
	for _, f := range fetches {
		if uid := f.UID(); uid < lo || uid >= s.UIDNext {
			return &VerifyError{Msg: fmt.Sprintf("UID FETCH %d:* returned UID %d (UIDNEXT %d)", lo, uid, s.UIDNext)}
		}
		if env := f.Items["ENVELOPE"]; !env.IsList || len(env.List) != 10 {
			return &VerifyError{Msg: fmt.Sprintf("UID %d: ENVELOPE of %d fields", f.UID(), len(env.List))}
		}
	}
	return nil
}

// IdleConfig describes the idle-connection scenario.
type IdleConfig struct {
	Addr        string
	Dial        DialOptions
	Users       []string
	Password    string
	Connections int
	Parallel    int           // connections being set up at once; default 16
	Hold        time.Duration // how long all connections stay in IDLE after the measurement; default 10 s
	Settle      time.Duration // wait between the last connection entering IDLE and the measurement; default 2 s
	ServerPID   int           // the server's process; its tree's memory is measured
	// SourceIPs are the local addresses to connect from, connection i from SourceIPs[i mod
	// len]: one loopback address has ~28,000 ephemeral ports, too few for 100,000
	// connections to one server address. Empty: the system's choice.
	SourceIPs []net.IP
	Progress  io.Writer
}

// Idle opens Connections sessions (LOGIN, SELECT INBOX, IDLE), measures the memory of the
// server's process tree before and once all are idling, holds them for Hold, then ends each
// IDLE with DONE and checks the tagged OK (RFC 2177 3).
func Idle(ctx context.Context, cfg IdleConfig) (*Report, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 16
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 10 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.ServerPID <= 0 {
		return nil, errors.New("idle: need the server's PID to measure its memory")
	}
	if cfg.Dial.BufferSize == 0 {
		// Tens of thousands of connections in one client: an idle one needs little.
		cfg.Dial.BufferSize = 4 << 10
	}
	before, err := TreeMemory(cfg.ServerPID)
	if err != nil {
		return nil, err
	}
	rec := NewRecorder()
	start := time.Now()
	stopProgress := progress(cfg.Progress, rec, start)
	sessions := make([]*Session, cfg.Connections)
	tags := make([]string, cfg.Connections)
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := 0; p < cfg.Parallel; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.Connections {
					return
				}
				t := time.Now()
				dial := cfg.Dial
				if len(cfg.SourceIPs) > 0 {
					dial.LocalIP = cfg.SourceIPs[i%len(cfg.SourceIPs)]
				}
				s, tag, err := enterIdle(cfg.Addr, dial, cfg.Password, cfg.Users[i%len(cfg.Users)])
				if err != nil {
					rec.Failure("connect-login-select-idle", err)
					continue
				}
				rec.Success("connect-login-select-idle", time.Since(t), 0)
				sessions[i], tags[i] = s, tag
			}
		}()
	}
	wg.Wait()
	setup := time.Since(start)
	stopProgress()
	idling := 0
	for _, s := range sessions {
		if s != nil {
			idling++
		}
	}
	// Let the server settle (goroutine stacks shrink, buffers and the memory of the LOGINs'
	// password hashing are released) before measuring.
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
	}
	after, err := TreeMemory(cfg.ServerPID)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(cfg.Hold):
	case <-ctx.Done():
	}
	for i, s := range sessions {
		if s == nil {
			continue
		}
		t := time.Now()
		err := s.Send("DONE")
		if err == nil {
			_, err = s.ReadUntilTagged(tags[i])
		}
		if err != nil {
			rec.Failure("done", err)
		} else {
			rec.Success("done", time.Since(t), 0)
		}
		s.Close()
	}
	rep := rec.Report(time.Since(start))
	rep.Scenario = "idle"
	rep.Server = cfg.Addr
	rep.Clients = cfg.Connections
	rep.Users = len(cfg.Users)
	rep.Figures = map[string]float64{
		"connections_idling":      float64(idling),
		"server_rss_before_mib":   float64(before.RSS) / (1 << 20),
		"server_rss_after_mib":    float64(after.RSS) / (1 << 20),
		"server_pss_before_mib":   float64(before.PSS) / (1 << 20),
		"server_pss_after_mib":    float64(after.PSS) / (1 << 20),
		"server_uss_before_mib":   float64(before.USS) / (1 << 20),
		"server_uss_after_mib":    float64(after.USS) / (1 << 20),
		"server_processes_before": float64(before.Processes),
		"server_processes_after":  float64(after.Processes),
		"rss_per_connection_kib":  0,
		"pss_per_connection_kib":  0,
		"uss_per_connection_kib":  0,
		"server_rss_growth_mib":   float64(after.RSS-before.RSS) / (1 << 20),
		"server_pss_growth_mib":   float64(after.PSS-before.PSS) / (1 << 20),
		"connections_with_errors": float64(cfg.Connections - idling),
		// From the first connect to the last connection in IDLE (or failed).
		"setup_seconds": setup.Seconds(),
	}
	if idling > 0 {
		rep.Figures["rss_per_connection_kib"] = float64(after.RSS-before.RSS) / 1024 / float64(idling)
		rep.Figures["pss_per_connection_kib"] = float64(after.PSS-before.PSS) / 1024 / float64(idling)
		rep.Figures["uss_per_connection_kib"] = float64(after.USS-before.USS) / 1024 / float64(idling)
	}
	return rep, nil
}

func enterIdle(addr string, dial DialOptions, password, user string) (*Session, string, error) {
	c, err := Dial(addr, dial)
	if err != nil {
		return nil, "", err
	}
	s := &Session{Conn: c}
	if err := c.Login(user, password); err != nil {
		c.Close()
		return nil, "", err
	}
	if err := s.Select("INBOX"); err != nil {
		c.Close()
		return nil, "", err
	}
	tag := c.NextTag()
	if err := c.Send(tag + " IDLE"); err != nil {
		c.Close()
		return nil, "", err
	}
	for {
		resp, err := c.ReadResponse()
		if err != nil {
			c.Close()
			return nil, "", err
		}
		if strings.HasPrefix(resp.Text, "+") {
			// No deadline while idling: the connection is quiet by design.
			c.nc.SetDeadline(time.Time{})
			return s, tag, nil
		}
		if !strings.HasPrefix(resp.Text, "* ") {
			c.Close()
			return nil, "", &ProtocolError{Msg: "IDLE: " + truncate(resp.Text)}
		}
	}
}

// Memory is the resident memory of a process tree: RSS counts shared pages in every
// process, PSS divides them among the processes that share them, USS counts only the pages
// private to each process (Private_Clean + Private_Dirty).
type Memory struct {
	RSS, PSS, USS int64 // bytes
	Processes     int
}

// TreeMemory sums the memory of pid and all its descendants from /proc.
func TreeMemory(pid int) (Memory, error) {
	var m Memory
	for _, p := range processTree(pid) {
		pm, err := processMemory(p)
		if err != nil {
			if p == pid {
				return m, err
			}
			continue
		}
		m.RSS += pm.RSS
		m.PSS += pm.PSS
		m.USS += pm.USS
		m.Processes++
	}
	return m, nil
}

// processMemory reads Rss, Pss and the private pages from /proc/PID/smaps_rollup.
func processMemory(pid int) (Memory, error) {
	var m Memory
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return m, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[2] != "kB" {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			m.RSS = v << 10
		case "Pss:":
			m.PSS = v << 10
		case "Private_Clean:", "Private_Dirty:":
			m.USS += v << 10
		}
	}
	return m, sc.Err()
}
