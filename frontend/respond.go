package frontend

import (
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
)

// Response codes (RFC 9051 7.1, RFC 5530, RFC 4315, RFC 7889).
const (
	codeAlreadyExists  = "ALREADYEXISTS"
	codeAuthFailed     = "AUTHENTICATIONFAILED"
	codeCannot         = "CANNOT"
	codeClientBug      = "CLIENTBUG"
	codeLimit          = "LIMIT"
	codeNonExistent    = "NONEXISTENT"
	codePrivacyReq     = "PRIVACYREQUIRED"
	codeServerBug      = "SERVERBUG"
	codeTooBig         = "TOOBIG"
	codeTryCreate      = "TRYCREATE"
	codeUnavailable    = "UNAVAILABLE"
	codeReadOnly       = "READ-ONLY"
	codeReadWrite      = "READ-WRITE"
	codeClosed         = "CLOSED"
	codeNoPerm         = "NOPERM"
	codeAuthorizFailed = "AUTHORIZATIONFAILED"
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
	b := make([]byte, 0, 64)
	b = append(b, tag...)
	b = append(b, ' ')
	b = append(b, st.Type...)
	b = append(b, ' ')
	if st.Code != "" {
		b = append(b, '[')
		b = append(b, st.Code...)
		b = append(b, "] "...)
	}
	b = append(b, sanitizeText(st.Text)...)
	b = append(b, '\r', '\n')
	c.bw.Write(b)
}

// sanitizeText keeps human-readable response text on one line of TEXT-CHARs.
func sanitizeText(s string) string {
	out := []byte(s)
	for i, ch := range out {
		if ch == '\r' || ch == '\n' || ch == 0 {
			out[i] = ' '
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

// untagged writes "* " line CRLF.
func (c *conn) untagged(line string) {
	c.bw.WriteString("* ")
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
}

// untaggedBytes writes "* " line CRLF.
func (c *conn) untaggedBytes(line []byte) {
	c.bw.WriteString("* ")
	c.bw.Write(line)
	c.bw.WriteString("\r\n")
}

// continuation writes a command continuation request (RFC 9051 7.5).
func (c *conn) continuation(text string) {
	c.bw.WriteString("+ ")
	c.bw.WriteString(text)
	c.bw.WriteString("\r\n")
}

// errShortBody is a stored body that ended before the length its metadata gives. The
// response literal is then cut short, so the connection must close.
var errShortBody = errors.New("stored body shorter than its metadata says")

// writeLiteral streams n bytes from r to the client as a literal: "{n}" CRLF data. The data
// is copied through the output buffer and never held whole.
func (c *conn) writeLiteral(r io.Reader, n int64) error {
	b := make([]byte, 0, 24)
	b = append(b, '{')
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
		if notFoundCode == codeAuthFailed {
			return no(notFoundCode, "Authentication failed")
		}
		return no(notFoundCode, what+": mailbox does not exist")
	case codes.AlreadyExists:
		return no(codeAlreadyExists, what+": "+st.Message())
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return no(codeCannot, what+": "+st.Message())
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return no(codeUnavailable, what+": try again later")
	case codes.PermissionDenied:
		return no(codeNoPerm, what+": permission denied")
	case codes.ResourceExhausted:
		return no("OVERQUOTA", what+": "+st.Message())
	case codes.Canceled:
		return no(codeUnavailable, what+": cancelled")
	}
	return fmt.Errorf("%s: %w", what, err)
}

// retryable reports whether a metadata call failed in a way a retry may cure.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// withRetry runs call up to three times while it fails retryably, each time with a fresh
// deadline. Writes pass their request ID in the closure, so every attempt reuses it and the
// metadata service applies the write once.
func (c *conn) withRetry(call func(ctx context.Context) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-c.ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		ctx, cancel := c.rpcContext()
		err = call(ctx)
		cancel()
		if err == nil || !retryable(err) || c.ctx.Err() != nil {
			return err
		}
	}
	return err
}
