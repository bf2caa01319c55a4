package imapresp

import (
	"testing"

	"github.com/strata-mail/strata/frontend/message"
)

func TestAppendSessionResponses(t *testing.T) {
	checkEncoded(t, []encodeCase{
		{"CAPABILITY", AppendCapability(nil, "IMAP4rev1 IMAP4rev2 IDLE"), "* CAPABILITY IMAP4rev1 IMAP4rev2 IDLE\r\n"},
		{"ENABLED", AppendEnabled(nil, []string{"CONDSTORE", "QRESYNC"}), "* ENABLED CONDSTORE QRESYNC\r\n"},
		{"ENABLED nothing", AppendEnabled(nil, nil), "* ENABLED\r\n"},
		{"ID", AppendID(nil, message.Encoder{}, []IDField{{"name", "Strata"}, {"version", "1.0 (dev)"}}),
			"* ID (\"name\" \"Strata\" \"version\" \"1.0 (dev)\")\r\n"},
		{"ID NIL", AppendID(nil, message.Encoder{}, nil), "* ID NIL\r\n"},
		{"continuation", AppendContinuation(nil, "Ready for literal data"), "+ Ready for literal data\r\n"},
		{"empty challenge", AppendContinuation(nil, ""), "+ \r\n"},
	})
}
