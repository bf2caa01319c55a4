package imapwire

import (
	"reflect"
	"testing"
)

// parseCase is a command line and the arguments ParseCommand must make of it.
type parseCase struct {
	line string
	args any
}

// checkParses checks that ParseCommand makes each case's arguments of its line.
func checkParses(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		cmd, err := ParseCommand([]byte(tc.line))
		if err != nil {
			t.Errorf("ParseCommand(%q): %v", tc.line, err)
			continue
		}
		if !reflect.DeepEqual(cmd.Args, tc.args) {
			t.Errorf("ParseCommand(%q) =\n%#v, want\n%#v", tc.line, cmd.Args, tc.args)
		}
	}
}

// checkRefused checks that ParseCommand refuses each line.
func checkRefused(t *testing.T, lines []string) {
	t.Helper()
	for _, line := range lines {
		if cmd, err := ParseCommand([]byte(line)); err == nil {
			t.Errorf("ParseCommand(%q) = %#v, want an error", line, cmd.Args)
		}
	}
}
