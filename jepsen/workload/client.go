package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/jepsen/history"
)

// client is one logical client (a history Process).
type client struct {
	cfg      *Config
	process  int
	rng      *rand.Rand
	account  Account
	sessions *atomic.Int64
	sent     int // messages appended or delivered, for Message-IDs

	// The current session, nil between sessions.
	s        *session
	id       int64
	frontend string
	qresync  bool
	// The selected mailbox, "" when none.
	selected    string
	uidValidity uint32
	readOnly    bool
	// known are UIDs of the selected mailbox the client saw in a listing or got from
	// APPENDUID/COPYUID, the targets of its STORE, MOVE, COPY and EXPUNGE.
	known []uint32
}

// keywords are the flags stores and appends pick from; \Deleted is left to the expunge op so
// that only it removes messages.
var keywords = []string{`\Seen`, `\Flagged`, `\Answered`, `\Draft`, "$Label1", "$Label2"}

// An op of the mix and its weight.
type step struct {
	weight int
	run    func(c *client)
	// write ops are skipped in an EXAMINEd (read-only) session.
	write bool
}

var mix = []step{
	{14, (*client).appendOp, false},
	{8, (*client).deliverOp, false},
	{16, (*client).storeOp, true},
	{10, func(c *client) { c.fetchOp(true, true) }, false},
	{8, func(c *client) { c.fetchOp(false, true) }, false},
	{3, func(c *client) { c.fetchOp(true, false) }, false},
	{5, func(c *client) { c.searchOp(true) }, false},
	{2, func(c *client) { c.searchOp(false) }, false},
	{5, (*client).expungeOp, true},
	{4, func(c *client) { c.copyOp(true) }, true},
	{5, func(c *client) { c.copyOp(false) }, false},
	{5, (*client).selectOp, false},
	{6, (*client).statusOp, false},
	{6, (*client).noopOp, false},
}

func (c *client) run(ctx context.Context) {
	total := 0
	for _, s := range mix {
		total += s.weight
	}
	for ctx.Err() == nil {
		switch {
		case c.s == nil:
			if !c.connect(ctx) {
				// Back off a little so a frontend that is down is not hammered.
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(20+c.rng.IntN(100)) * time.Millisecond):
				}
			}
			continue
		case c.selected == "":
			c.selectOp()
			continue
		case c.rng.IntN(100) == 0:
			// A client that goes away now and then: the next session may land on
			// another frontend.
			c.drop()
			continue
		}
		pick := c.rng.IntN(total)
		for _, s := range mix {
			if pick < s.weight {
				if !(s.write && c.readOnly) {
					s.run(c)
				}
				break
			}
			pick -= s.weight
		}
	}
	c.drop()
}

// drop ends the session, if any.
func (c *client) drop() {
	if c.s != nil {
		c.s.imap.Close()
	}
	c.s, c.selected, c.known = nil, "", nil
}

// outcome classifies an op's error: a tagged NO or BAD is a definite failure, anything else
// (a timeout, a lost connection, a BYE) leaves the outcome unknown.
func outcome(err error) history.Outcome {
	var imapErr *imap.Error
	switch {
	case err == nil:
		return history.OK
	case errors.As(err, &imapErr) && imapErr.Type != imap.StatusResponseTypeBye:
		return history.Fail
	}
	return history.Unknown
}

// do records one op of the current session: it fills the session's fields into op, runs
// call under the op timeout and records the result with the updates the server sent meanwhile.
// A call that does not finish in time has its connection closed; its outcome is unknown.
func (c *client) do(op history.Op, call func(op *history.Op) error) history.Outcome {
	op.Process, op.Session, op.Frontend, op.Account = c.process, c.id, c.frontend, c.account.User
	if op.Mailbox == "" {
		op.Mailbox, op.UIDValidity = c.selected, c.uidValidity
	}
	c.s.tap.take()
	id := c.cfg.Recorder.Invoke(op)
	done := make(chan error, 1)
	go func() { done <- call(&op) }()
	timer := time.NewTimer(c.cfg.OpTimeout)
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		c.s.imap.Close()
		err = <-done
		err = fmt.Errorf("timed out after %v: %w", c.cfg.OpTimeout, err)
	}
	timer.Stop()
	result := outcome(err)
	updates := c.s.tap.take()
	c.cfg.Recorder.Complete(id, func(o *history.Op) {
		*o = op
		o.Outcome = result
		if err != nil {
			o.Error = err.Error()
		}
		o.Updates = solicitedOut(o, updates)
	})
	if result == history.Unknown {
		c.drop()
	}
	return result
}

// solicitedOut drops from updates what answers the op itself: the FETCH responses a FETCH or
// STORE asked for (they are in op.Messages) and the EXISTS of a SELECT's own reply, the
// first EXISTS it received (RFC 9051 6.3.2), which becomes op.Exists. Later EXISTS of a
// SELECT are updates sent before its tagged OK, after EXPUNGEs, and stay in order:
// imapclient's SelectData holds the last one, which is not the count the reply started from.
// Found by make jepsen (seed 67): the checker saw the session's count off by the messages
// that arrived while the SELECT ran.
func solicitedOut(op *history.Op, updates []history.Update) []history.Update {
	if op.Kind == history.KindSelect {
		if i := slices.IndexFunc(updates, func(u history.Update) bool { return u.Kind == history.UpdateExists }); i >= 0 {
			op.Exists, op.HasExists = updates[i].Count, true
			updates = slices.Delete(updates, i, i+1)
		}
		return updates
	}
	return slices.DeleteFunc(updates, func(u history.Update) bool {
		if (op.Kind == history.KindFetch || op.Kind == history.KindStore) && u.Kind == history.UpdateFetch && u.Message != nil {
			return slices.ContainsFunc(op.Messages, func(m history.Message) bool {
				return m.UID == u.Message.UID || (m.UID == 0 && m.Seq == u.Message.Seq)
			})
		}
		return false
	})
}

// connect starts a session on a random frontend and records it as a connect op.
func (c *client) connect(ctx context.Context) bool {
	return c.connectTo(ctx, c.cfg.IMAPAddrs[c.rng.IntN(len(c.cfg.IMAPAddrs))], c.rng.IntN(2) == 0)
}

// connectTo starts a session on frontend and records it as a connect op.
func (c *client) connectTo(ctx context.Context, frontend string, qresync bool) bool {
	c.id = c.sessions.Add(1)
	c.frontend = frontend
	c.qresync = qresync
	op := history.Op{Process: c.process, Session: c.id, Frontend: c.frontend, Kind: history.KindConnect, Account: c.account.User, QResync: c.qresync}
	id := c.cfg.Recorder.Invoke(op)
	s, err := login(ctx, c.frontend, c.account, c.qresync, c.cfg.OpTimeout, c.cfg.Recorder.Now)
	c.cfg.Recorder.Complete(id, func(o *history.Op) {
		*o = op
		o.Outcome = outcome(err)
		if err != nil {
			o.Error = err.Error()
		}
	})
	if err != nil {
		return false
	}
	c.s = s
	return true
}

func (c *client) mailbox() string {
	return c.cfg.Mailboxes[c.rng.IntN(len(c.cfg.Mailboxes))]
}

// pickFlags returns up to n distinct keywords.
func (c *client) pickFlags(n int) []string {
	out := []string{}
	for range c.rng.IntN(n + 1) {
		f := keywords[c.rng.IntN(len(keywords))]
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// targets returns up to n distinct known UIDs, ascending.
func (c *client) targets(n int) []uint32 {
	if len(c.known) == 0 {
		return nil
	}
	var out []uint32
	for range 1 + c.rng.IntN(n) {
		u := c.known[c.rng.IntN(len(c.known))]
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

func uidSet(uids []uint32) imap.UIDSet {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set
}

func expand(set imap.NumSet) []uint32 {
	uids, ok := set.(imap.UIDSet)
	if !ok {
		return nil
	}
	nums, _ := uids.Nums()
	out := make([]uint32, len(nums))
	for i, n := range nums {
		out[i] = uint32(n)
	}
	return out
}

func toFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

func fromFlags(flags []imap.Flag) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = string(f)
	}
	return out
}

// message returns a new message with its unique Message-ID.
func (c *client) message() (string, []byte) {
	c.sent++
	mid := fmt.Sprintf("<%d-%d-%d@jepsen>", c.cfg.Seed, c.process, c.sent)
	body := fmt.Sprintf("From: jepsen <p%d@jepsen>\r\nTo: %s\r\nSubject: op %d of process %d\r\nMessage-ID: %s\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\n%s\r\n",
		c.process, c.account.Address, c.sent, c.process, mid, strings.Repeat("payload ", 1+c.rng.IntN(40)))
	return mid, []byte(body)
}

func (c *client) selectOp() {
	c.selectMailbox(c.mailbox(), c.rng.IntN(5) == 0)
}

// selectMailbox SELECTs (or EXAMINEs) mb with CONDSTORE and lists it; it reports whether
// both succeeded.
func (c *client) selectMailbox(mb string, readOnly bool) bool {
	c.selected = ""
	var data *imap.SelectData
	res := c.do(history.Op{Kind: history.KindSelect, Mailbox: mb, ReadOnly: readOnly}, func(op *history.Op) error {
		var err error
		data, err = c.s.imap.Select(mb, &imap.SelectOptions{ReadOnly: readOnly, CondStore: true}).Wait()
		if err != nil {
			return err
		}
		op.UIDValidity, op.Exists, op.HasExists = data.UIDValidity, data.NumMessages, true
		op.UIDNext, op.HighestModSeq = uint32(data.UIDNext), data.HighestModSeq
		return nil
	})
	if res != history.OK {
		return false
	}
	c.selected, c.uidValidity, c.readOnly, c.known = mb, data.UIDValidity, readOnly, nil
	// What a client does after SELECT: learn the UIDs.
	return c.fetchOp(true, true) == history.OK
}

// fetchOp fetches UID, FLAGS, MODSEQ and the Message-ID of the whole mailbox (all) or of
// some known UIDs, by UID or (all only) by sequence number.
func (c *client) fetchOp(all, byUID bool) history.Outcome {
	op := history.Op{Kind: history.KindFetch, All: all, ByUID: byUID}
	var set imap.NumSet
	switch {
	case all && byUID:
		set = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	case all:
		set = imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}
	default:
		op.Targets = c.targets(3)
		if len(op.Targets) == 0 {
			return history.Fail
		}
		set = uidSet(op.Targets)
	}
	items := &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, BodySection: []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true},
	}}
	var uids []uint32
	res := c.do(op, func(op *history.Op) error {
		msgs, err := c.s.imap.Fetch(set, items).Collect()
		for _, m := range msgs {
			if len(m.BodySection) == 0 {
				// A flag update of a message the FETCH has not answered yet, which
				// imapclient hands to the command: the tap has it as an update.
				continue
			}
			op.Messages = append(op.Messages, fetched(m))
			uids = append(uids, uint32(m.UID))
		}
		return err
	})
	if res == history.OK && all {
		c.known = uids
	}
	return res
}

// fetched converts a FETCH response that was asked for FLAGS: imapclient gives no FLAGS and
// "FLAGS ()" alike as nil, and the caller knows which it asked for.
func fetched(m *imapclient.FetchMessageBuffer) history.Message {
	msg := history.Message{Seq: m.SeqNum, UID: uint32(m.UID), Flags: fromFlags(m.Flags), ModSeq: m.ModSeq}
	for _, sec := range m.BodySection {
		msg.MessageID = headerValue(sec.Bytes, "Message-ID")
	}
	return msg
}

// headerValue returns the value of the header field name in a header block.
func headerValue(header []byte, name string) string {
	for _, line := range bytes.Split(header, []byte("\n")) {
		k, v, ok := strings.Cut(strings.TrimRight(string(line), "\r"), ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (c *client) appendOp() {
	mb := c.mailbox()
	flags := c.pickFlags(2)
	mid, body := c.message()
	op := history.Op{Kind: history.KindAppend, Mailbox: mb, MessageID: mid, Flags: flags}
	var uid uint32
	res := c.do(op, func(op *history.Op) error {
		cmd := c.s.imap.Append(mb, int64(len(body)), &imap.AppendOptions{Flags: toFlags(flags)})
		if _, err := cmd.Write(body); err != nil {
			cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		data, err := cmd.Wait()
		if err != nil {
			return err
		}
		op.UIDValidity = data.UIDValidity
		if data.UID != 0 {
			uid = uint32(data.UID)
			op.UIDs = []uint32{uid}
		}
		return nil
	})
	if res == history.OK && mb == c.selected && uid != 0 {
		c.known = append(c.known, uid)
	}
}

func (c *client) storeOp() {
	targets := c.targets(2)
	if len(targets) == 0 {
		return
	}
	mode := []string{history.StoreAdd, history.StoreRemove, history.StoreSet}[c.rng.IntN(3)]
	c.store(targets, mode, c.pickFlags(2), c.rng.IntN(2) == 0)
}

func (c *client) store(targets []uint32, mode string, flags []string, silent bool) history.Outcome {
	imapOp := map[string]imap.StoreFlagsOp{history.StoreAdd: imap.StoreFlagsAdd, history.StoreRemove: imap.StoreFlagsDel, history.StoreSet: imap.StoreFlagsSet}[mode]
	op := history.Op{Kind: history.KindStore, ByUID: true, Targets: targets, StoreMode: mode, Flags: flags, Silent: silent}
	return c.do(op, func(op *history.Op) error {
		msgs, err := c.s.imap.Store(uidSet(targets), &imap.StoreFlags{Op: imapOp, Silent: silent, Flags: toFlags(flags)}, nil).Collect()
		for _, m := range msgs {
			msg := fetched(m)
			if silent {
				// RFC 7162 3.2: with CONDSTORE a silent STORE still reports UID and
				// MODSEQ, but no FLAGS.
				msg.Flags = nil
			}
			op.Messages = append(op.Messages, msg)
		}
		return err
	})
}

func (c *client) searchOp(byUID bool) {
	criteria := []struct {
		name string
		c    imap.SearchCriteria
	}{
		{"ALL", imap.SearchCriteria{}},
		{"FLAGGED", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}},
		{"UNSEEN", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}},
		{"KEYWORD $Label1", imap.SearchCriteria{Flag: []imap.Flag{"$Label1"}}},
	}[c.rng.IntN(4)]
	c.do(history.Op{Kind: history.KindSearch, ByUID: byUID, Criteria: criteria.name}, func(op *history.Op) error {
		var cmd *imapclient.SearchCommand
		if byUID {
			cmd = c.s.imap.UIDSearch(&criteria.c, nil)
		} else {
			cmd = c.s.imap.Search(&criteria.c, nil)
		}
		data, err := cmd.Wait()
		if err != nil {
			return err
		}
		if byUID {
			for _, u := range data.AllUIDs() {
				op.Nums = append(op.Nums, uint32(u))
			}
		} else {
			op.Nums = data.AllSeqNums()
		}
		return nil
	})
}

// expungeOp marks one message \Deleted and UID EXPUNGEs it (RFC 4315 2.1), as clients do.
func (c *client) expungeOp() {
	targets := c.targets(1)
	if len(targets) == 0 || c.store(targets, history.StoreAdd, []string{`\Deleted`}, true) != history.OK {
		return
	}
	res := c.do(history.Op{Kind: history.KindUIDExpunge, ByUID: true, Targets: targets}, func(op *history.Op) error {
		// The EXPUNGE responses are in the tap's updates, in order with the others.
		_, err := c.s.imap.UIDExpunge(uidSet(targets)).Collect()
		return err
	})
	if res == history.OK {
		c.known = slices.DeleteFunc(c.known, func(u uint32) bool { return slices.Contains(targets, u) })
	}
}

// copyOp copies or moves up to two known messages to another mailbox.
func (c *client) copyOp(move bool) {
	targets := c.targets(2)
	dest := c.mailbox()
	if len(targets) == 0 || dest == c.selected {
		return
	}
	kind := history.KindCopy
	if move {
		kind = history.KindMove
	}
	res := c.do(history.Op{Kind: kind, ByUID: true, Targets: targets, Dest: dest}, func(op *history.Op) error {
		var data *imap.CopyData
		if move {
			md, err := c.s.imap.Move(uidSet(targets), dest).Wait()
			if err != nil {
				return err
			}
			data = &imap.CopyData{UIDValidity: md.UIDValidity}
			op.SourceUIDs, op.UIDs = expand(md.SourceUIDs), expand(md.DestUIDs)
		} else {
			var err error
			if data, err = c.s.imap.Copy(uidSet(targets), dest).Wait(); err != nil {
				return err
			}
			op.SourceUIDs, op.UIDs = expand(data.SourceUIDs), expand(data.DestUIDs)
		}
		op.DestUIDValidity = data.UIDValidity
		return nil
	})
	if res == history.OK && move {
		c.known = slices.DeleteFunc(c.known, func(u uint32) bool { return slices.Contains(targets, u) })
	}
}

func (c *client) statusOp() {
	mb := c.mailbox()
	c.do(history.Op{Kind: history.KindStatus, Mailbox: mb}, func(op *history.Op) error {
		data, err := c.s.imap.Status(mb, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, HighestModSeq: true}).Wait()
		if err != nil {
			return err
		}
		op.UIDValidity, op.UIDNext, op.HighestModSeq = data.UIDValidity, uint32(data.UIDNext), data.HighestModSeq
		if data.NumMessages != nil {
			op.Exists, op.HasExists = *data.NumMessages, true
		}
		return nil
	})
}

func (c *client) noopOp() {
	c.do(history.Op{Kind: history.KindNoop}, func(*history.Op) error {
		return c.s.imap.Noop().Wait()
	})
}
