package bench

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseProfile(t *testing.T) {
	p, err := ParseProfile(DefaultProfile)
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Weights(); w[OpFetchFlagsEnvelope] != 20 || w[OpLogin] != 1 || len(w) != len(Operations) {
		t.Fatalf("weights %v", w)
	}
	again, err := ParseProfile(p.String())
	if err != nil || again.String() != p.String() {
		t.Fatalf("round trip %q -> %q, %v", p.String(), again.String(), err)
	}
	p, err = ParseProfile(" select = 3 , fetch-body=0,store=1,")
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != "select=3,store=1" {
		t.Errorf("zero weights kept: %s", p)
	}
	for _, bad := range []string{"", "select=0", "select", "select=-1", "select=x", "frobnicate=1", "select=1,select=2"} {
		if _, err := ParseProfile(bad); err == nil {
			t.Errorf("ParseProfile(%q) accepted", bad)
		}
	}
}

func TestProfilePickFollowsWeights(t *testing.T) {
	p, err := ParseProfile("select=1,store=3,search=6")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	const n = 100000
	for i := 0; i < n; i++ {
		counts[p.Pick(rng)]++
	}
	for op, w := range map[string]int{"select": 1, "store": 3, "search": 6} {
		want := n * w / 10
		if got := counts[op]; got < want*95/100 || got > want*105/100 {
			t.Errorf("%s picked %d times of %d, want about %d", op, got, n, want)
		}
	}
	if len(counts) != 3 {
		t.Errorf("picked %v", counts)
	}
}

func TestUserNames(t *testing.T) {
	if got := strings.Join(UserNames("bench%d@example.com", 3), " "); got != "bench1@example.com bench2@example.com bench3@example.com" {
		t.Errorf("names %q", got)
	}
	if got := UserNames("demo@example.com", 5); len(got) != 1 || got[0] != "demo@example.com" {
		t.Errorf("names %q", got)
	}
}
