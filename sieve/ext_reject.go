package sieve

// reject and ereject (RFC 5429): refuse the message with a reason.

func init() {
	registerCapability("reject", "ereject")
	registerCommand(&commandDef{name: "reject", ext: "reject", args: []argType{typeString}, run: runReject})
	registerCommand(&commandDef{name: "ereject", ext: "ereject", args: []argType{typeString}, run: runReject})
}

// runReject cancels the implicit keep (RFC 5429 2.1, 2.2); conflicts with
// delivering actions are refused in addAction.
func runReject(r *run, n *node) (bool, error) {
	kind := ActionReject
	if n.def.name == "ereject" {
		kind = ActionEreject
	}
	return true, r.addAction(n, Action{Kind: kind, Reason: r.expand(n.args[0].strs[0])})
}
