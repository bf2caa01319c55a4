// Package sievestate keeps the per-account state that Sieve's vacation (RFC 5230, RFC
// 6131) and duplicate (RFC 7352) extensions need, as delivery marks in the metadata
// service (CheckMarks, SetMarks: proto/metadata.proto "delivery marks"). A Tracker is
// the sieve.VacationTracker and sieve.DuplicateTracker of one account's delivery.
//
// The interpreter only asks (Responded, Seen); delivery records, at the moments the RFCs
// name:
//
//   - RecordDuplicates after the message was delivered, with Result.DuplicateMarks:
//     RFC 7352 3 has the unique ID stored only when the delivery succeeds, so a failed
//     delivery that the MTA retries is not taken for a duplicate of itself;
//   - RecordVacation after a response went out (RFC 5230 4.2: a response is tracked once
//     it is sent), with the reply the interpreter built and the time it was sent.
//
// # Invariants
//
//   - Keys are a kind byte and a SHA-256 of the length-prefixed parts, so a handle, sender
//     or unique ID of any length makes a key of 33 bytes, and no vacation key equals a
//     duplicate key: 'v' + H(handle, sender) for vacation, 'd' + H(handle, unique ID) for
//     duplicate. Senders compare without case; unique IDs and handles as octets.
//   - A vacation mark records when the response was sent and expires after the period of
//     that response; Responded answers true only for a mark sent after since, so the
//     period of the script running now decides (RFC 5230 4.2, RFC 6131 2). A period that
//     grew since the response can still find the mark gone once the old period ran out and
//     answer again, as Pigeonhole does.
//   - A duplicate mark expires at the time the interpreter computed (RFC 7352 3.3
//     :seconds); Seen asks at the delivery's time, so a mark the metadata service did not
//     prune yet is not seen once expired.
//   - Two deliveries of one account at the same moment may both find no mark: the check
//     and the record are apart, like the interpreter's interface. The metadata service
//     bounds marks per account (10000, the first to expire goes first) and their lifetime
//     (400 days).
package sievestate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/sieve"
)

// Key kinds.
const (
	kindVacation  = 'v'
	kindDuplicate = 'd'
)

// maxMarksPerCall is the metadata service's bound on the marks of one request.
const maxMarksPerCall = 256

// Tracker answers and records the vacation and duplicate state of one account.
type Tracker struct {
	md      metadatapb.MetadataClient
	account string
}

// New returns the tracker of account.
func New(md metadatapb.MetadataClient, account string) *Tracker {
	return &Tracker{md: md, account: account}
}

var (
	_ sieve.VacationTracker  = (*Tracker)(nil)
	_ sieve.DuplicateTracker = (*Tracker)(nil)
)

func markKey(kind byte, parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum([]byte{kind})
}

func vacationKey(handle, sender string) []byte {
	return markKey(kindVacation, handle, strings.ToLower(sender))
}

func duplicateKey(handle, id string) []byte { return markKey(kindDuplicate, handle, id) }

// Responded reports whether a response with handle went to sender after since (RFC 5230
// 4.2).
func (t *Tracker) Responded(ctx context.Context, handle, sender string, since time.Time) (bool, error) {
	st, err := t.check(ctx, vacationKey(handle, sender), 0)
	if err != nil {
		return false, err
	}
	return st.GetPresent() && st.GetSetUnix() > since.Unix(), nil
}

// Seen reports whether the unique ID was recorded with handle and has not expired at now
// (RFC 7352 3).
func (t *Tracker) Seen(ctx context.Context, handle, id string, now time.Time) (bool, error) {
	st, err := t.check(ctx, duplicateKey(handle, id), now.Unix())
	if err != nil {
		return false, err
	}
	return st.GetPresent(), nil
}

func (t *Tracker) check(ctx context.Context, key []byte, now int64) (*metadatapb.MarkState, error) {
	resp, err := t.md.CheckMarks(ctx, &metadatapb.CheckMarksRequest{Account: t.account, Keys: [][]byte{key}, NowUnix: now})
	if err != nil {
		return nil, fmt.Errorf("check marks of %s: %w", t.account, err)
	}
	if len(resp.GetMarks()) != 1 {
		return nil, fmt.Errorf("check marks of %s: %d answers for one key", t.account, len(resp.GetMarks()))
	}
	return resp.GetMarks()[0], nil
}

// RecordDuplicates stores the unique IDs a delivery's script saw (Result.DuplicateMarks),
// once the message was delivered at delivered (RFC 7352 3).
func (t *Tracker) RecordDuplicates(ctx context.Context, marks []sieve.DuplicateMark, delivered time.Time) error {
	out := make([]*metadatapb.Mark, 0, len(marks))
	for _, m := range marks {
		out = append(out, &metadatapb.Mark{Key: duplicateKey(m.Handle, m.ID), SetUnix: delivered.Unix(), ExpiresUnix: m.Expires.Unix()})
	}
	return t.set(ctx, out)
}

// RecordVacation stores that reply was sent at sent, for reply.Seconds (RFC 5230 4.2, RFC
// 6131 2). A reply that was not sent is not recorded.
func (t *Tracker) RecordVacation(ctx context.Context, reply *sieve.VacationReply, sent time.Time) error {
	if reply == nil || !reply.Send {
		return nil
	}
	expires := sent.Unix() + reply.Seconds
	if expires < sent.Unix() { // the period overflowed: the service cuts it to its bound
		expires = 1<<63 - 1
	}
	return t.set(ctx, []*metadatapb.Mark{{Key: vacationKey(reply.Handle, reply.To), SetUnix: sent.Unix(), ExpiresUnix: expires}})
}

func (t *Tracker) set(ctx context.Context, marks []*metadatapb.Mark) error {
	for len(marks) > 0 {
		n := min(len(marks), maxMarksPerCall)
		_, err := t.md.SetMarks(ctx, &metadatapb.SetMarksRequest{RequestId: newRequestID(), Account: t.account, Marks: marks[:n]})
		if err != nil {
			return fmt.Errorf("set marks of %s: %w", t.account, err)
		}
		marks = marks[n:]
	}
	return nil
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
