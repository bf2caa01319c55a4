package sieve

import "strconv"

// spamtest, spamtestplus and virustest (RFC 5235); the verdicts come in
// Input.Spam and Input.Virus.

func init() {
	registerCapability("spamtest", "spamtestplus", "virustest")
	registerTest(&commandDef{name: "spamtest", ext: "spamtest",
		tags: append(matchTags(), &tagDef{name: ":percent", ext: "spamtestplus"}),
		args: []argType{typeString}, check: checkMatch, run: runSpamtest})
	registerTest(&commandDef{name: "virustest", ext: "virustest", tags: matchTags(),
		args: []argType{typeString}, check: checkMatch, run: runVirustest})
}

// RFC 5235 3.2, 3.3: spamtest [":percent"] [COMPARATOR] [MATCH-TYPE]
// <value>. The comparator defaults as for any test, to i;ascii-casemap
// (RFC 5228 2.7.3, checkMatch), as in Pigeonhole (corpus case
// spam_value_default: without :comparator, "10" is less than "5"); numeric
// comparisons name i;ascii-numeric. With i;ascii-numeric as the default,
// :matches "*" could not compile, that comparator having no substring
// operations (RFC 4790 9.1).

// runSpamtest compares "0" for an untested message, else the score 1-10,
// or with :percent 0-100 (RFC 5235 3.1, 3.2).
func runSpamtest(r *run, n *node) (bool, error) {
	s := r.in.Spam
	v := "0"
	switch {
	case n.hasTag(":percent"):
		if s.Tested {
			v = strconv.Itoa(clamp(s.Percent, 0, 100))
		}
	case s.Tested:
		v = strconv.Itoa(clamp(s.Value, 1, 10))
	}
	return r.match(n, []string{v}, r.expandAll(n.args[0])), nil
}

// runVirustest compares "0" untested, else 1-5 (RFC 5235 3.3).
func runVirustest(r *run, n *node) (bool, error) {
	v := "0"
	if r.in.Virus.Tested {
		v = strconv.Itoa(clamp(r.in.Virus.Value, 1, 5))
	}
	return r.match(n, []string{v}, r.expandAll(n.args[0])), nil
}

func clamp(v, lo, hi int) int {
	return min(max(v, lo), hi)
}
