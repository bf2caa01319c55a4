package s3test

import "testing"

// TestBinDirOf: an unset GOBIN (an empty first line of `go env GOBIN GOPATH`) means the bin
// directory of GOPATH's first entry, where `go install` writes; it once meant GOPATH itself,
// so a versitygw installed there was missed by PATH and by `make tools-s3`.
func TestBinDirOf(t *testing.T) {
	for _, c := range []struct{ env, want string }{
		{"\n/root/go\n", "/root/go/bin"},
		{"\n/a/go:/b/go\n", "/a/go/bin"},
		{"/opt/gobin\n/root/go\n", "/opt/gobin"},
	} {
		got, err := binDirOf(c.env)
		if err != nil || got != c.want {
			t.Errorf("binDirOf(%q) = %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	for _, env := range []string{"", "\n\n", "/root/go\n"} {
		if got, err := binDirOf(env); err == nil {
			t.Errorf("binDirOf(%q) = %q, want an error", env, got)
		}
	}
}
