package sieve

// subaddress (RFC 5233): the :user and :detail address parts; the
// delimiter comes in Input.SubaddressDelimiter.

func init() {
	registerCapability("subaddress")
	user := &tagDef{name: ":user", ext: "subaddress", group: "address-part"}
	detail := &tagDef{name: ":detail", ext: "subaddress", group: "address-part"}
	extendTest("address", user, detail)
	extendTest("envelope", user, detail)
}
