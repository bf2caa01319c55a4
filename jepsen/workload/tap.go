package workload

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-mail/strata/jepsen/history"
)

// tap sits between the connection and imapclient and records every EXISTS, EXPUNGE,
// VANISHED and FETCH the server sends, in the order it sent them. imapclient's
// UnilateralDataHandler cannot do this: it hands each unsolicited FETCH to a new goroutine
// (so their order, and whether one arrived before the command's tagged reply, is lost), sends
// the EXPUNGEs of an EXPUNGE command to the command instead of the handler, and fails the
// connection on VANISHED, which it does not know. The tap therefore also keeps VANISHED
// lines (RFC 7162 3.2.10) from reaching imapclient.
type tap struct {
	net.Conn
	r   *bufio.Reader
	now func() time.Duration

	out  []byte // bytes for imapclient not handed over yet
	lit  int64  // literal bytes still to pass through untouched
	cont bool   // the next line continues a response after a literal

	mu     sync.Mutex
	events []history.Update
}

// maxLine bounds one response line (literals excluded) the tap reads.
const maxLine = 1 << 20

func newTap(conn net.Conn, r *bufio.Reader, now func() time.Duration, preface string) *tap {
	return &tap{Conn: conn, r: r, now: now, out: []byte(preface)}
}

// take returns the updates recorded since the last take.
func (t *tap) take() []history.Update {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := t.events
	t.events = nil
	return ev
}

func (t *tap) Read(p []byte) (int, error) {
	for len(t.out) == 0 {
		if t.lit > 0 {
			n, err := t.r.Read(p[:min(int64(len(p)), t.lit)])
			t.lit -= int64(n)
			return n, err
		}
		line, err := readLine(t.r)
		if len(line) == 0 {
			return 0, err
		}
		keep := true
		if !t.cont && bytes.HasPrefix(line, []byte("* ")) {
			keep = t.record(string(bytes.TrimRight(line, "\r\n")))
		}
		t.lit, t.cont = literalAtEnd(line)
		if keep {
			t.out = append(t.out, line...)
		}
		if err != nil && len(t.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, t.out)
	t.out = t.out[n:]
	return n, nil
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
		if len(line) > maxLine {
			return nil, fmt.Errorf("response line longer than %d bytes", maxLine)
		}
	}
}

// literalAtEnd reports the size of the literal a line announces ({n} or {n+}, RFC 9051 4.3,
// RFC 7888), if any.
func literalAtEnd(line []byte) (int64, bool) {
	s := strings.TrimRight(string(line), "\r\n")
	if !strings.HasSuffix(s, "}") {
		return 0, false
	}
	open := strings.LastIndexByte(s, '{')
	if open < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(s[open+1:len(s)-1], "+"), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

var (
	reNumbered = regexp.MustCompile(`^\* (\d+) (EXISTS|EXPUNGE|FETCH)\b(.*)$`)
	reVanished = regexp.MustCompile(`^\* VANISHED (\(EARLIER\) )?([0-9:,]+)$`)
	reUID      = regexp.MustCompile(`\bUID (\d+)`)
	reModSeq   = regexp.MustCompile(`\bMODSEQ \((\d+)\)`)
	reFlags    = regexp.MustCompile(`\bFLAGS \(([^)]*)\)`)
)

// record notes one untagged response line and reports whether imapclient may see it.
func (t *tap) record(line string) bool {
	now := t.now()
	var ev history.Update
	if m := reVanished.FindStringSubmatch(line); m != nil {
		uids, err := expandUIDs(m[2])
		if err != nil {
			return false
		}
		ev = history.Update{Kind: history.UpdateVanished, At: now, UIDs: uids, Earlier: m[1] != ""}
		t.add(ev)
		return false
	}
	m := reNumbered.FindStringSubmatch(line)
	if m == nil {
		return true
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		return true
	}
	switch m[2] {
	case "EXISTS":
		ev = history.Update{Kind: history.UpdateExists, At: now, Count: uint32(n)}
	case "EXPUNGE":
		ev = history.Update{Kind: history.UpdateExpunge, At: now, Seq: uint32(n)}
	case "FETCH":
		msg := &history.Message{Seq: uint32(n)}
		rest := m[3]
		if u := reUID.FindStringSubmatch(rest); u != nil {
			v, _ := strconv.ParseUint(u[1], 10, 32)
			msg.UID = uint32(v)
		}
		if u := reModSeq.FindStringSubmatch(rest); u != nil {
			msg.ModSeq, _ = strconv.ParseUint(u[1], 10, 64)
		}
		if f := reFlags.FindStringSubmatch(rest); f != nil {
			msg.Flags = strings.Fields(f[1])
			if msg.Flags == nil {
				msg.Flags = []string{}
			}
		}
		ev = history.Update{Kind: history.UpdateFetch, At: now, Message: msg}
	}
	t.add(ev)
	return true
}

func (t *tap) add(ev history.Update) {
	t.mu.Lock()
	t.events = append(t.events, ev)
	t.mu.Unlock()
}

// maxExpand bounds the UIDs one VANISHED may name for the history.
const maxExpand = 1 << 16

// expandUIDs expands a UID set without "*" (RFC 7162 3.2.10: VANISHED names known UIDs).
func expandUIDs(set string) ([]uint32, error) {
	var out []uint32
	for _, part := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				return nil, err
			}
		}
		a, b = min(a, b), max(a, b)
		if b-a+uint64(len(out)) >= maxExpand {
			return nil, fmt.Errorf("UID set %q too large", set)
		}
		for u := a; u <= b; u++ {
			out = append(out, uint32(u))
		}
	}
	return out, nil
}

var _ io.Reader = (*tap)(nil)
