package sieve

import (
	"mime"
	"strings"
)

// editheader (RFC 5293): addheader and deleteheader. Edits change what
// later tests see and are listed in Result.HeaderEdits for the store.

func init() {
	registerCapability("editheader")
	registerCommand(&commandDef{name: "addheader", ext: "editheader",
		tags: []*tagDef{{name: ":last"}},
		args: []argType{typeString, typeString}, check: checkAddheader, run: runAddheader})
	registerCommand(&commandDef{name: "deleteheader", ext: "editheader",
		tags: append(matchTags(), &tagDef{name: ":index", hasArg: true, arg: typeNumber}, &tagDef{name: ":last"}),
		args: []argType{typeString, typeStringList}, optional: 1,
		check: checkDeleteheader, run: runDeleteheader})
}

// undeletableHeader: fields a script may add but not delete. RFC 5293 9:
// deleting Received fields would hide mail loops and deleting
// Auto-Submitted would let auto-replies answer each other; Pigeonhole
// refuses both deletions (with a warning) and allows adding either.
func undeletableHeader(name string) bool {
	return strings.EqualFold(name, "Received") || strings.EqualFold(name, "Auto-Submitted")
}

func checkFieldName(c *compiler, v *value) error {
	if name, ok := constString(v); ok && !validFieldName(name) {
		return c.errorf(v.pos, "invalid header field name %q", name)
	}
	return nil
}

func checkAddheader(c *compiler, n *node) error { return checkFieldName(c, n.args[0]) }

func checkDeleteheader(c *compiler, n *node) error {
	if err := checkFieldName(c, n.args[0]); err != nil {
		return err
	}
	return checkMatch(c, n)
}

// encodeFieldValue keeps a value on one line and RFC 2047-encodes it when
// it is not ASCII (RFC 5293 4).
func encodeFieldValue(v string) string {
	v = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(v)
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return mime.QEncoding.Encode("utf-8", v)
		}
	}
	return v
}

// runAddheader inserts a field first, or last with :last (RFC 5293 4).
func runAddheader(r *run, n *node) (bool, error) {
	name := r.expand(n.args[0].strs[0])
	if !validFieldName(name) {
		return false, r.errorf(n, "addheader: invalid field name %q", name)
	}
	value := encodeFieldValue(r.expand(n.args[1].strs[0]))
	f := HeaderField{Name: name, Value: " " + value}
	if n.hasTag(":last") {
		r.header = append(r.header, f)
	} else {
		r.header = append([]HeaderField{f}, r.header...)
	}
	r.res.HeaderEdits = append(r.res.HeaderEdits, HeaderEdit{Name: name, Value: value, Last: n.hasTag(":last")})
	return true, nil
}

// runDeleteheader removes the fields of a name, or the :index-th one, whose
// values match the patterns when some are given (RFC 5293 5).
func runDeleteheader(r *run, n *node) (bool, error) {
	name := r.expand(n.args[0].strs[0])
	if !validFieldName(name) {
		return false, r.errorf(n, "deleteheader: invalid field name %q", name)
	}
	if undeletableHeader(name) {
		return true, nil
	}
	var positions []int
	for i, f := range r.header {
		if strings.EqualFold(f.Name, name) {
			positions = append(positions, i)
		}
	}
	selected := make([]bool, len(positions))
	for i := range selected {
		selected[i] = true
	}
	if v, ok := n.tags[":index"]; ok {
		k := int(v.num)
		if n.hasTag(":last") {
			k = len(positions) - k + 1
		}
		for i := range selected {
			selected[i] = i+1 == k
		}
	}
	var patterns []string
	if n.args[1] != nil {
		patterns = r.expandAll(n.args[1])
	}
	var kept []HeaderField
	occurrence, removed := 0, 0
	for i, f := range r.header {
		if !strings.EqualFold(f.Name, name) {
			kept = append(kept, f)
			continue
		}
		occurrence++
		del := selected[occurrence-1]
		if del && patterns != nil {
			del, _ = matchValues(n.match, []string{headerText(f.Value)}, patterns)
		}
		if !del {
			kept = append(kept, f)
			continue
		}
		r.res.HeaderEdits = append(r.res.HeaderEdits, HeaderEdit{Delete: true, Name: r.header[i].Name, Occurrence: occurrence - removed})
		removed++
	}
	r.header = kept
	return true, nil
}
