package helm

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// pendingFlags are flags the chart passes that the strata binary of this commit does not
// have yet: other changes of issue 16 add them (the names were agreed beforehand). Once the
// binary has one, TestFlagsExist fails until its entry here is deleted, so the list only
// shrinks.
var pendingFlags = map[string]string{}

// binaries are the programs of this repository the tests build, by package, once per run.
var binaries = struct {
	sync.Mutex
	dir   string
	built map[string]string
}{built: map[string]string{}}

// buildBinary builds the main package pkg (relative to the repository root) once per test
// run and returns the program's path.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	binaries.Lock()
	defer binaries.Unlock()
	if path, ok := binaries.built[pkg]; ok {
		return path
	}
	if binaries.dir == "" {
		dir, err := os.MkdirTemp("", "strata-helm-test-")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir = dir
	}
	path := filepath.Join(binaries.dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", path, pkg)
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	binaries.built[pkg] = path
	return path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// helpFlag is a flag line of cobra's usage text: "  -h, --help   help for ...".
var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?--([a-z0-9][a-z0-9-]*)\b`)

// commandHelp runs `<program> [command] --help` and returns the flags it lists (for
// strata: the command's own and the global ones) and the whole text.
func commandHelp(t *testing.T, program string, command ...string) (map[string]bool, string) {
	t.Helper()
	out, err := exec.Command(program, append(command, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s --help: %v\n%s", filepath.Base(program), command, err, out)
	}
	flags := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 5 {
		t.Fatalf("%s %s --help lists only %v", filepath.Base(program), command, flags)
	}
	return flags, string(out)
}

// argFlags returns the flag names in args (after the subcommand): every "--name" or
// "--name=value" token.
func argFlags(args []string) []string {
	var names []string
	for _, a := range args {
		if rest, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ := strings.Cut(rest, "=")
			names = append(names, name)
		}
	}
	return names
}

// envVarRef is a $(VAR) reference the kubelet expands in args.
var envVarRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// TestFlagsExist: every flag the chart passes to a strata container is one that `strata
// <command> --help` of the binary built from this repository lists (or a pending one of
// pendingFlags), every STRATA_* variable it sets is a flag's variable or one the binary's
// help names, and every $(VAR) in the arguments is a variable of the container.
func TestFlagsExist(t *testing.T) {
	help := map[string]map[string]bool{}
	texts := map[string]string{}
	strata := buildBinary(t, "./cmd/strata")
	for _, command := range []string{"metadata", "frontend", "serve"} {
		help[command], texts[command] = commandHelp(t, strata, command)
	}
	used := map[string]bool{}
	for _, f := range valuesFiles {
		r := render(t, f, nil)
		for c := range strataContainers(r) {
			if len(c.Args) == 0 || len(c.Command) != 0 {
				t.Fatalf("%s/%s: args %v command %v: want the image's entrypoint and a subcommand", r.name, c.Name, c.Args, c.Command)
			}
			command := c.Args[0]
			flags, ok := help[command]
			if !ok {
				t.Fatalf("%s/%s: subcommand %q", r.name, c.Name, command)
			}
			for _, name := range argFlags(c.Args[1:]) {
				key := command + " --" + name
				used[key] = true
				_, pending := pendingFlags[key]
				switch {
				case flags[name] && pending:
					t.Errorf("strata %s has --%s now: delete %q from pendingFlags", command, name, key)
				case !flags[name] && !pending:
					t.Errorf("%s/%s: strata %s has no flag --%s", r.name, c.Name, command, name)
				}
			}
			defined := map[string]bool{}
			for _, e := range c.Env {
				defined[e.Name] = true
				name, ok := strings.CutPrefix(e.Name, "STRATA_")
				if !ok {
					continue
				}
				flag := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
				if !flags[flag] && !strings.Contains(texts[command], e.Name) && !strings.Contains(texts["serve"], e.Name) {
					t.Errorf("%s/%s: %s is neither a flag's variable of strata %s nor named in its help", r.name, c.Name, e.Name, command)
				}
			}
			for _, a := range c.Args {
				for _, m := range envVarRef.FindAllStringSubmatch(a, -1) {
					if !defined[m[1]] {
						t.Errorf("%s/%s: argument %q refers to $(%s), not a variable of the container", r.name, c.Name, a, m[1])
					}
				}
			}
		}
	}
	var unused []string
	for key := range pendingFlags {
		if !used[key] {
			unused = append(unused, key)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("pendingFlags lists flags the chart does not pass: %v", unused)
	}
}

// TestEtcdFlagsExist: every flag the chart passes to the bundled etcd is one the etcd server
// of deploy/etcd (the strata-etcd image's program) lists in its --help.
func TestEtcdFlagsExist(t *testing.T) {
	flags, _ := commandHelp(t, buildBinary(t, "./deploy/etcd"))
	r := render(t, "testdata/five-voters-bundled-etcd.yaml", nil)
	c := r.component(t, "etcd").Spec.Containers[0]
	if len(c.Command) != 0 {
		t.Fatalf("etcd: command %v: want the image's entrypoint", c.Command)
	}
	names := argFlags(c.Args)
	if len(names) == 0 {
		t.Fatal("etcd: no flags")
	}
	for _, name := range names {
		if !flags[name] {
			t.Errorf("etcd has no flag --%s", name)
		}
	}
}
