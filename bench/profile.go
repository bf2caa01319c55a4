package bench

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// The operations of the mixed workload.
const (
	OpLogin              = "login"
	OpSelect             = "select"
	OpFetchFlagsEnvelope = "fetch-flags-envelope"
	OpFetchBody          = "fetch-body"
	OpStore              = "store"
	OpAppend             = "append"
	OpExpunge            = "expunge"
	OpSearch             = "search"
	OpIdle               = "idle"
	OpLogout             = "logout"
)

// Operations lists every operation a profile may weigh.
var Operations = []string{OpLogin, OpSelect, OpFetchFlagsEnvelope, OpFetchBody, OpStore, OpAppend, OpExpunge, OpSearch, OpIdle, OpLogout}

// DefaultProfile is the mixed workload of `strata bench`: mostly reads of flags, envelopes
// and bodies, some flag changes and appends, few logins.
const DefaultProfile = "login=1,select=5,fetch-flags-envelope=20,fetch-body=10,store=10,append=5,expunge=1,search=5,idle=1,logout=1"

// Profile is a weighted choice among operations.
type Profile struct {
	ops     []string
	weights []int
	total   int
}

// ParseProfile parses "op=weight,op=weight,..."; weights are non-negative integers, at
// least one positive, and each operation appears at most once.
func ParseProfile(s string) (*Profile, error) {
	p := &Profile{}
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, weightText, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("profile item %q: want op=weight", item)
		}
		name = strings.TrimSpace(name)
		if !isOperation(name) {
			return nil, fmt.Errorf("profile item %q: unknown operation %q (known: %s)", item, name, strings.Join(Operations, ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("profile: %q given twice", name)
		}
		seen[name] = true
		w, err := strconv.Atoi(strings.TrimSpace(weightText))
		if err != nil || w < 0 {
			return nil, fmt.Errorf("profile item %q: weight must be a non-negative integer", item)
		}
		if w == 0 {
			continue
		}
		p.ops = append(p.ops, name)
		p.weights = append(p.weights, w)
		p.total += w
	}
	if p.total == 0 {
		return nil, fmt.Errorf("profile %q: no operation has a positive weight", s)
	}
	return p, nil
}

func isOperation(name string) bool {
	for _, op := range Operations {
		if op == name {
			return true
		}
	}
	return false
}

// Pick draws an operation with probability proportional to its weight.
func (p *Profile) Pick(rng *rand.Rand) string {
	n := rng.IntN(p.total)
	for i, w := range p.weights {
		if n < w {
			return p.ops[i]
		}
		n -= w
	}
	return p.ops[len(p.ops)-1]
}

// Weights returns the operations and their weights, sorted by name.
func (p *Profile) Weights() map[string]int {
	m := make(map[string]int, len(p.ops))
	for i, op := range p.ops {
		m[op] = p.weights[i]
	}
	return m
}

// String renders the profile in the form ParseProfile reads.
func (p *Profile) String() string {
	names := append([]string(nil), p.ops...)
	sort.Strings(names)
	w := p.Weights()
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Itoa(w[n])
	}
	return strings.Join(parts, ",")
}
