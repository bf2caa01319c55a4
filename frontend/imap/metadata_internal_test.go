package imap

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMetadataStatus checks the answers to SetMetadata's refusals (RFC 5464 4.3), among them
// NOPRIVATE, which no IMAP session meets: every session has a user to keep private entries
// for.
func TestMetadataStatus(t *testing.T) {
	refusal := func(code codes.Code, reason string, md map[string]string) error {
		st, err := status.New(code, "refused").WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "metadata.strata-mail", Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{refusal(codes.ResourceExhausted, reasonMetadataMaxSize, map[string]string{infoMaxSize: "16384"}), "NO [METADATA MAXSIZE 16384] x: value too large"},
		{refusal(codes.ResourceExhausted, reasonMetadataTooMany, nil), "NO [METADATA TOOMANY] x: too many entries"},
		{refusal(codes.InvalidArgument, reasonMetadataNoPrivate, nil), "NO [METADATA NOPRIVATE] x: no private entries here"},
		{status.Error(codes.PermissionDenied, "no"), "NO [NOPERM] x: permission denied"},
		{status.Error(codes.NotFound, "no"), "NO [NONEXISTENT] x: mailbox does not exist"},
	} {
		if got := metadataStatus(tc.err, "x").Error(); got != tc.want {
			t.Errorf("metadataStatus(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if metadataLiteralRefusal([]byte("a SETMETADATA INBOX (/private/x {70000}")) == nil || metadataLiteralRefusal([]byte("a APPEND INBOX {70000}")) != nil {
		t.Error("metadataLiteralRefusal answers the wrong commands")
	}
}
