package managesieve

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/managesieve/sievewire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Response codes of RFC 5804 1.3 that Strata sends.
const (
	codeActive         = "ACTIVE"
	codeAlreadyExists  = "ALREADYEXISTS"
	codeEncryptNeeded  = "ENCRYPT-NEEDED"
	codeNonexistent    = "NONEXISTENT"
	codeQuota          = "QUOTA"
	codeQuotaMaxScript = "QUOTA/MAXSCRIPTS"
	codeQuotaMaxSize   = "QUOTA/MAXSIZE"
	codeTryLater       = "TRYLATER"
)

// response is the status line that ends a command (RFC 5804 4: response-ok, response-nobye).
type response struct {
	status string // OK, NO or BYE
	code   []byte // rendered response code without its parentheses, e.g. QUOTA/MAXSIZE or TAG "x"
	text   string // human-readable, may be empty
}

func ok(text string) *response { return &response{status: "OK", text: text} }

func no(code, text string) *response { return &response{status: "NO", code: []byte(code), text: text} }

func bye(code, text string) *response {
	return &response{status: "BYE", code: []byte(code), text: text}
}

// appendLine renders the response: status [SP "(" code ")"] [SP string] CRLF.
func (r *response) appendLine(b []byte) []byte {
	b = append(b, r.status...)
	if len(r.code) > 0 {
		b = append(b, " ("...)
		b = append(b, r.code...)
		b = append(b, ')')
	}
	if r.text != "" {
		b = append(b, ' ')
		b = appendString(b, []byte(r.text))
	}
	return append(b, "\r\n"...)
}

// appendString renders a string as a quoted string when RFC 5804 4 allows it (UTF-8, at
// most 1024 octets, no NUL, CR or LF; DQUOTE and "\" escaped), as a literal otherwise.
func appendString(b, s []byte) []byte {
	if quotable(s) {
		b = append(b, '"')
		for _, c := range s {
			if c == '"' || c == '\\' {
				b = append(b, '\\')
			}
			b = append(b, c)
		}
		return append(b, '"')
	}
	b = append(b, '{')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "}\r\n"...)
	return append(b, s...)
}

func quotable(s []byte) bool {
	if len(s) > sievewire.MaxQuoted || !utf8.Valid(s) {
		return false
	}
	for _, c := range s {
		if c == 0 || c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

// rpcResponse turns an error of the metadata service into a NO with the response code of
// RFC 5804 1.3 that fits it, or nil when the error is not one the client can be told
// about (the caller then ends the command with a generic NO and logs it).
func rpcResponse(err error, what string) *response {
	st, isStatus := status.FromError(err)
	if !isStatus {
		return nil
	}
	for _, d := range st.Details() {
		info, isInfo := d.(*errdetails.ErrorInfo)
		if !isInfo {
			continue
		}
		switch info.GetReason() {
		case metadatapb.SieveActiveReason: // RFC 5804 2.10
			return no(codeActive, "You may not delete an active script")
		case metadatapb.SieveMaxSizeReason: // RFC 5804 1.3 QUOTA/MAXSIZE
			return no(codeQuotaMaxSize, st.Message())
		case metadatapb.SieveMaxScriptsReason: // RFC 5804 1.3 QUOTA/MAXSCRIPTS
			return no(codeQuotaMaxScript, st.Message())
		}
	}
	switch st.Code() {
	case codes.NotFound:
		return no(codeNonexistent, what+": there is no script of that name")
	case codes.AlreadyExists:
		return no(codeAlreadyExists, what+": a script of that name already exists")
	case codes.ResourceExhausted:
		return no(codeQuota, what+": "+st.Message())
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return no("", what+": "+st.Message())
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled:
		return no(codeTryLater, what+": the mail store is busy, try again later") // RFC 5804 1.3 TRYLATER
	case codes.PermissionDenied:
		return no("", what+": permission denied")
	case codes.Unimplemented:
		return no("", what+": the metadata service does not store Sieve scripts (an older version)")
	}
	return nil
}

// errAnswered is returned by a handler that has written its own status line (STARTTLS).
var errAnswered = errors.New("answered")

// newRequestID returns a random ID for an idempotent metadata write.
func newRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}
