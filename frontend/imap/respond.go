package imap

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/ingest"
)

// imapStatus is a status response (RFC 9051 7.1): the result of a command, written tagged.
// Handlers return it as an error for NO and BAD, and for OK with a response code.
type imapStatus struct {
	Type string // OK, NO, BAD
	Code string // response code with its arguments, without brackets; may be empty
	Text string
}

func (s *imapStatus) Error() string {
	if s.Code != "" {
		return fmt.Sprintf("%s [%s] %s", s.Type, s.Code, s.Text)
	}
	return s.Type + " " + s.Text
}

func ok(code, text string) *imapStatus  { return &imapStatus{Type: "OK", Code: code, Text: text} }
func no(code, text string) *imapStatus  { return &imapStatus{Type: "NO", Code: code, Text: text} }
func bad(code, text string) *imapStatus { return &imapStatus{Type: "BAD", Code: code, Text: text} }

// writeStatus writes a tagged (or, with tag "*", untagged) status response.
func (c *conn) writeStatus(tag string, st *imapStatus) {
	if tag != "*" {
		c.taggedStatus = st.Type
	}
	c.bw.Write(imapresp.AppendStatusResponse(make([]byte, 0, 64), tag, st.Type, st.Code, st.Text))
}

// untaggedOK writes an untagged OK with a response code (RFC 9051 7.1).
func (c *conn) untaggedOK(code, text string) {
	c.bw.Write(imapresp.AppendStatusResponse(nil, "*", "OK", code, text))
}

// continuation writes a command continuation request (RFC 9051 7.5).
func (c *conn) continuation(text string) {
	c.bw.Write(imapresp.AppendContinuation(nil, text))
}

// errShortBody is a stored body that ended before the length its metadata gives. The
// response literal is then cut short, so the connection must close.
var errShortBody = errors.New("stored body shorter than its metadata says")

// writeLiteral streams n bytes from r to the client as a literal: "{n}" CRLF data. The data
// is copied through the output buffer and never held whole.
//
// A literal is *CHAR8, which excludes NUL (RFC 9051 9, RFC 3501 9), and a binary string, one
// with NUL, may go out only as the literal8 of a BINARY response (RFC 9051 4.3.1; RFC 3501
// 4.3.1 allows none). In IMAP4rev1 and IMAP4rev2 alike a BODY[] section is an nstring, never
// a literal8 (RFC 9051 7.5.2 and 9 msg-att-static, RFC 3516 7), whatever the client enabled
// or appended. So each NUL of r, which a message appended as a literal8 may hold (RFC 3516
// 4.4), goes out as 0x80, as Dovecot sends it: the length and every partial origin stay
// those of the stored message, RFC822.SIZE and BODYSTRUCTURE, and the exact octets are what
// BINARY[] returns (writeLiteral8).
func (c *conn) writeLiteral(r io.Reader, n int64) error {
	return c.streamLiteral("{", char8Reader{r: r}, n)
}

// writeLiteral8 streams n bytes from r as they are, NUL included, as a literal8: "~{n}" CRLF
// data (RFC 9051 9, RFC 3516 4.3). Only BINARY responses may carry one.
func (c *conn) writeLiteral8(r io.Reader, n int64) error {
	return c.streamLiteral("~{", r, n)
}

func (c *conn) streamLiteral(open string, r io.Reader, n int64) error {
	b := make([]byte, 0, 24)
	b = append(b, open...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '}', '\r', '\n')
	c.bw.Write(b)
	copied, err := io.CopyN(c.bw, &endChecked{r: r, remaining: n}, n)
	if err != nil {
		if copied < n && errors.Is(err, io.EOF) {
			return errShortBody
		}
		return fmt.Errorf("stream literal: %w", err)
	}
	return nil
}

// char8Reader reads r with each NUL octet turned into 0x80, so that what it reads is CHAR8
// (RFC 9051 9) and has the length of what r holds.
type char8Reader struct {
	r io.Reader
}

func (c char8Reader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for rest := p[:n]; ; {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			break
		}
		rest[i] = 0x80
		rest = rest[i+1:]
	}
	return n, err
}

// newRequestID returns a fresh ID for a metadata write; a retried write reuses it.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rpcStatus maps a metadata call's error to the NO or BAD it answers: notFoundCode is the
// response code for NotFound (NONEXISTENT, or TRYCREATE for APPEND and COPY targets, RFC
// 9051 6.3.12 and 6.4.7). Errors that are not gRPC statuses are returned unchanged.
func rpcStatus(err error, notFoundCode, what string) error {
	st, isStatus := status.FromError(err)
	if !isStatus {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch st.Code() {
	case codes.NotFound:
		// The service's text names internal ids; the client gets a plain one.
		if notFoundCode == imapresp.CodeAuthenticationFailed {
			return no(notFoundCode, "Authentication failed")
		}
		return no(notFoundCode, what+": mailbox does not exist")
	case codes.AlreadyExists:
		return no(imapresp.CodeAlreadyExists, what+": "+st.Message())
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return no(imapresp.CodeCannot, what+": "+st.Message())
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled:
		// withRetry gave up on a call whose outcome it could not learn: a write may have
		// committed, so NO would be a lie (a client that retries an APPEND it was told
		// failed stores it twice). The session ends instead; the client reconnects and
		// sees what happened (errOutcomeUnknown).
		return &outcomeUnknown{what: what, err: err}
	case codes.PermissionDenied:
		return no(imapresp.CodeNoPerm, what+": permission denied")
	case codes.ResourceExhausted:
		return no(imapresp.CodeOverQuota, what+": "+st.Message())
	}
	return fmt.Errorf("%s: %w", what, err)
}

// outcomeUnknown is a metadata call that failed in a way that leaves its outcome unknown
// (the leader changed or the service did not answer, and retries with the same request ID
// did not settle it). run answers it with BYE [UNAVAILABLE] and closes the connection, never
// with a tagged NO (RFC 9051 7.1.5: BYE when the server must close; RFC 5530 3 UNAVAILABLE).
type outcomeUnknown struct {
	what string
	err  error
}

func (e *outcomeUnknown) Error() string { return e.what + ": outcome unknown: " + e.err.Error() }
func (e *outcomeUnknown) Unwrap() error { return e.err }

// metadataRetry is how a session retries a metadata call. Canceled counts: the session's
// own context is checked separately, so a Canceled status is the service's (a leader that
// lost leadership with the entry pending), whose outcome is unknown. The budget is longer
// than a leader election, so a write that was in flight when the leader failed learns its
// outcome from the new one.
var metadataRetry = ingest.RetryPolicy{
	Retryable:   []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled},
	Budget:      10 * time.Second,
	CallTimeout: rpcTimeout,
}

// withRetry runs call under metadataRetry, for as long as the connection lasts. A
// response held for a pipeline goes out first (rpcContext).
func (c *conn) withRetry(call func(ctx context.Context) error) error {
	c.bw.flushHeld()
	return metadataRetry.Do(c.ctx, call)
}
