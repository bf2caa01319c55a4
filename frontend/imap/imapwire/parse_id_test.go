package imapwire

import (
	"reflect"
	"testing"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []IDParam
	}{
		{`a ID NIL`, nil},
		{`a id nil`, nil},
		{`a ID ()`, nil},
		// RFC 2971 3.4
		{`a ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")`, []IDParam{
			{"name", "sodr"}, {"version", "19.34"}, {"vendor", "Pink Floyd Music Limited"},
		}},
		{"a ID (\"name\" {4}\r\nmutt \"os\" NIL)", []IDParam{{"name", "mutt"}, {"os", ""}}},
	} {
		cmd, err := ParseCommand([]byte(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := cmd.Args.(*IDArgs).Params; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %#v, want %#v", tc.in, got, tc.want)
		}
	}
	checkRefused(t, []string{`a ID`, `a ID (`, `a ID ("name")`, `a ID ("name" "x"`, `a ID (name "x")`, `a ID ("a" "b""c" "d")`, `a ID NIL x`})
}
