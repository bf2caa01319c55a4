package sieve

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCompileLimits(t *testing.T) {
	_, err := Compile("s", []byte(strings.Repeat("keep;", 100)), Options{Limits: Limits{MaxScriptSize: 50}})
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 50") {
		t.Fatalf("size: %v", err)
	}
	deep := strings.Repeat("if true {", 40) + strings.Repeat("}", 40)
	e := compileErr(t, deep)
	if !strings.Contains(e.Msg, "nesting deeper than 32") || e.Line != 1 || e.Column != 32*9+4 {
		t.Fatalf("nesting: %v", e)
	}
	tests := "if " + strings.Repeat("not ", 40) + "true {}"
	if e := compileErr(t, tests); !strings.Contains(e.Msg, "nesting deeper") {
		t.Fatalf("test nesting: %v", e)
	}
	if _, err := Compile("s", []byte(deep), Options{Limits: Limits{MaxNesting: 50}}); err != nil {
		t.Fatalf("raised nesting limit: %v", err)
	}
}

// runtimeLimit runs a script that must fail on a limit and checks that the
// result falls back to the implicit keep.
func runtimeLimit(t *testing.T, script string, limits Limits, msg string) {
	t.Helper()
	p, err := Compile("s", []byte(script), Options{Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Execute(context.Background(), testInput(t, ""))
	var re *RuntimeError
	if !errors.Is(err, ErrLimit) || !errors.As(err, &re) || !strings.Contains(re.Msg, msg) {
		t.Fatalf("want a limit error %q, got %v", msg, err)
	}
	if res == nil || !res.ImplicitKeep || len(res.Actions) != 0 || res.Err != err {
		t.Fatalf("result after a limit: %+v", res)
	}
	if got := strings.Join(res.Outcome(), "|"); got != "error" {
		t.Fatalf("outcome %q", got)
	}
}

func TestRuntimeLimits(t *testing.T) {
	runtimeLimit(t, `redirect "a@x.org"; redirect "b@x.org"; redirect "c@x.org"; redirect "d@x.org"; redirect "e@x.org";`, Limits{}, "more than 4 redirects")
	runtimeLimit(t, `redirect "a@x.org"; redirect "b@x.org";`, Limits{MaxRedirects: 1}, "more than 1 redirects")
	runtimeLimit(t, `require "fileinto"; fileinto "a"; fileinto "b"; fileinto "c";`, Limits{MaxActions: 2}, "more than 2 actions")
	runtimeLimit(t, strings.Repeat("if true { if true { keep; } }\n", 100), Limits{MaxSteps: 150}, "more than 150 steps")
	// Duplicates merge and do not count twice.
	p, err := Compile("s", []byte(`redirect "a@x.org"; redirect "a@x.org"; redirect "A@x.org";`), Options{Limits: Limits{MaxRedirects: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Execute(context.Background(), testInput(t, "")); err != nil {
		t.Fatalf("merged redirects: %v", err)
	}
}

func TestVariableSizeLimit(t *testing.T) {
	p, err := Compile("s", []byte(`require ["variables"]; set "a" "${b}€€€"; if string :is "${a}" "xx€" { discard; }`), Options{Limits: Limits{MaxVariableSize: 5}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Execute(context.Background(), testInput(t, ""))
	if err != nil || strings.Join(res.Outcome(), "|") != "implicit-keep" {
		t.Fatalf("%v %v", res.Outcome(), err)
	}
	// "€€€" is 9 bytes: truncated to 5 it keeps one whole "€".
	p, _ = Compile("s", []byte(`require ["variables"]; set "a" "€€€"; if string :is "${a}" "€" { discard; }`), Options{Limits: Limits{MaxVariableSize: 5}})
	res, _ = p.Execute(context.Background(), testInput(t, ""))
	if strings.Join(res.Outcome(), "|") != "discard" {
		t.Fatalf("truncation: %v", res.Outcome())
	}
}

func TestCanceledContext(t *testing.T) {
	p, err := Compile("s", []byte(strings.Repeat("if true { keep; }\n", 1000)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := p.Execute(ctx, testInput(t, ""))
	if !errors.Is(err, context.Canceled) || !res.ImplicitKeep {
		t.Fatalf("%v %+v", err, res)
	}
}

// TestMatchesIsLinear: a pattern that makes a backtracking matcher take
// exponential time finishes at once.
func TestMatchesIsLinear(t *testing.T) {
	pattern := strings.Repeat("*a", 30) + "b"
	value := strings.Repeat("a", 5000)
	if _, ok := globMatch(pattern, value, false); ok {
		t.Fatal("matched")
	}
	if _, ok := globMatch(strings.Repeat("*a", 30), value, true); !ok {
		t.Fatal("did not match")
	}
}
