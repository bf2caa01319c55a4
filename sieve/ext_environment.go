package sieve

import "strings"

// environment (RFC 5183): the environment test over items the caller
// supplies in Input.Environment, with the defaults below.

func init() {
	registerCapability("environment")
	registerTest(&commandDef{name: "environment", ext: "environment", tags: matchTags(),
		args: []argType{typeString, typeStringList}, check: checkMatch, run: runEnvironment})
}

// defaultEnvironment holds the items the interpreter knows itself (RFC 5183 4).
var defaultEnvironment = map[string]string{
	"name":     "Strata",
	"location": "MDA",
	"phase":    "during",
}

// runEnvironment fails for an item that is not known (RFC 5183 3).
func runEnvironment(r *run, n *node) (bool, error) {
	name := strings.ToLower(r.expand(n.args[0].strs[0]))
	v, ok := r.in.Environment[name]
	if !ok {
		v, ok = defaultEnvironment[name]
	}
	if !ok {
		return false, nil
	}
	return r.match(n, []string{v}, r.expandAll(n.args[1])), nil
}
