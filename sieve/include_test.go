package sieve

import (
	"context"
	"errors"
	"testing"
)

// RFC 6609
func TestInclude(t *testing.T) {
	lib := scripts{
		"personal/lists": `require ["fileinto"]; if header :contains "subject" "hello" { fileinto "Lists"; }`,
		"global/spam":    `require ["fileinto"]; if header :is "x-spam" "yes" { fileinto "Junk"; stop; }`,
		"personal/ret":   `require ["include"]; return; discard;`,
		"personal/setg":  `require ["include", "variables"]; global "box"; set "box" "FromInclude";`,
		"personal/self":  `require ["include"]; include "self";`,
		"personal/count": `require ["variables", "include"]; global "n"; set "n" "${n}x";`,
	}
	with := func(in *Input) { in.Scripts = lib }
	runCases(t, []sieveCase{
		{name: "personal", script: `require "include"; include "lists";`, input: with, want: []string{"fileinto Lists"}},
		{name: "global stop ends all", script: `require "include"; include :global "spam"; discard;`, input: with, want: []string{"fileinto Junk"}},
		{name: "return ends only the included", script: `require "include"; include "ret"; keep;`, input: with, want: []string{"keep"}},
		{name: "globals shared", script: `require ["include", "variables", "fileinto"]; global "box"; include "setg"; fileinto "${box}";`, input: with, want: []string{"fileinto FromInclude"}},
		{name: "global namespace", script: `require ["include", "variables", "fileinto"]; include "setg"; fileinto "${global.box}";`, input: with, want: []string{"fileinto FromInclude"}},
		{name: "locals not shared", script: `require ["include", "variables", "fileinto"]; include "setg"; fileinto "x${box}";`, input: with, want: []string{"fileinto x"}},
		{name: "once", script: `require ["include", "variables", "fileinto"]; global "n"; include :once "count"; include :once "count"; include "count"; fileinto "${n}";`, input: with, want: []string{"fileinto xx"}},
		{name: "missing fails", script: `require "include"; include "nope";`, input: with, want: []string{"error"}},
		{name: "missing optional", script: `require "include"; include :optional "nope"; discard;`, input: with, want: []string{"discard"}},
		{name: "recursion fails", script: `require "include"; include "self";`, input: with, want: []string{"error"}},
	})
	in := testInput(t, "")
	in.Scripts = lib
	_, err := execute(t, `require "include"; include "nope";`, in)
	var re *RuntimeError
	if !errors.As(err, &re) || !errors.Is(err, ErrScriptNotFound) || re.Line != 1 || re.Column != 20 {
		t.Fatalf("missing include: %v", err)
	}
}

// TestIncludeDepth: a chain of distinct scripts deeper than the limit fails.
func TestIncludeDepth(t *testing.T) {
	lib := scripts{}
	for i := 0; i < 20; i++ {
		lib["personal/s"+itoa(int64(i))] = `require "include"; include "s` + itoa(int64(i+1)) + `";`
	}
	lib["personal/s20"] = `keep;`
	p, err := Compile("top", []byte(`require "include"; include "s0";`), Options{Limits: Limits{MaxIncludeDepth: 5}})
	if err != nil {
		t.Fatal(err)
	}
	in := testInput(t, "")
	in.Scripts = lib
	res, err := p.Execute(context.Background(), in)
	if !errors.Is(err, ErrLimit) || !res.ImplicitKeep || len(res.Actions) != 0 {
		t.Fatalf("got %v, %+v", err, res)
	}
}
