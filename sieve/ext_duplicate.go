package sieve

import (
	"strings"
	"time"
)

// duplicate (RFC 7352): has a message with this unique ID been seen? The
// caller's DuplicateTracker answers; the IDs to remember come back in
// Result.DuplicateMarks.

func init() {
	registerCapability("duplicate")
	registerTest(&commandDef{name: "duplicate", ext: "duplicate", tags: []*tagDef{
		{name: ":handle", hasArg: true, arg: typeString},
		{name: ":header", hasArg: true, arg: typeString, group: "id"},
		{name: ":uniqueid", hasArg: true, arg: typeString, group: "id"},
		{name: ":seconds", hasArg: true, arg: typeNumber},
		{name: ":last"},
	}, check: checkDuplicate, run: runDuplicate})
}

func checkDuplicate(c *compiler, n *node) error {
	if name, ok := constString(n.tags[":header"]); ok && !validFieldName(name) {
		return c.errorf(n.tags[":header"].pos, "invalid header name %q", name)
	}
	return nil
}

// runDuplicate (RFC 7352 3): the ID is :uniqueid, the :header field or the
// Message-ID; a message without one is never a duplicate. A new ID is
// marked; a seen one again only with :last (3.2).
func runDuplicate(r *run, n *node) (bool, error) {
	var id string
	switch {
	case n.hasTag(":uniqueid"):
		id = r.expand(n.tags[":uniqueid"].strs[0])
	default:
		name := "Message-ID"
		if v, ok := n.tags[":header"]; ok {
			name = r.expand(v.strs[0])
		}
		values := r.headerValues(name)
		if len(values) == 0 {
			return false, nil
		}
		id = strings.TrimSpace(values[0])
	}
	if id == "" {
		return false, nil
	}
	handle := ""
	if v, ok := n.tags[":handle"]; ok {
		handle = r.expand(v.strs[0])
	}
	period := r.limits.DuplicateDefaultPeriod
	if v, ok := n.tags[":seconds"]; ok {
		period = min(v.num, r.limits.DuplicateMaxPeriod)
	}
	seen := false
	for _, m := range r.res.DuplicateMarks {
		if m.Handle == handle && m.ID == id {
			seen = true
		}
	}
	if !seen && r.in.Duplicates != nil {
		var err error
		if seen, err = r.in.Duplicates.Seen(r.ctx, handle, id, r.in.Now); err != nil {
			return false, r.errorf(n, "duplicate: %v", err)
		}
	}
	if !seen || n.hasTag(":last") {
		r.res.DuplicateMarks = append(r.res.DuplicateMarks, DuplicateMark{Handle: handle, ID: id,
			Expires: r.in.Now.Add(time.Duration(period) * time.Second)})
	}
	return seen, nil
}
