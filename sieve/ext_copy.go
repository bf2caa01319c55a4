package sieve

// copy (RFC 3894): :copy on fileinto and redirect keeps the implicit keep.

func init() {
	registerCapability("copy")
	copyTag := &tagDef{name: ":copy", ext: "copy"}
	extendCommand("fileinto", copyTag)
	extendCommand("redirect", copyTag)
}
