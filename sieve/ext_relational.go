package sieve

// relational (RFC 5231): the :count and :value match types, and the
// i;ascii-numeric comparator (RFC 4790 9.1) they are mostly used with.

// relationalTests are the tests that take a MATCH-TYPE.
var relationalTests = []string{"address", "envelope", "header", "string", "body", "date", "currentdate",
	"hasflag", "environment", "spamtest", "virustest"}

func init() {
	registerCapability("relational", "comparator-i;ascii-numeric")
	count := &tagDef{name: ":count", ext: "relational", hasArg: true, arg: typeString, group: "match", constant: true}
	val := &tagDef{name: ":value", ext: "relational", hasArg: true, arg: typeString, group: "match", constant: true}
	for _, t := range relationalTests {
		extendTest(t, count, val)
	}
	extendCommand("deleteheader", val) // RFC 5293 5: :count is not allowed with deleteheader
}
