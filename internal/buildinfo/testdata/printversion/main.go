// Command printversion prints buildinfo.Version, for TestStampedBinary.
package main

import "github.com/strata-mail/strata/internal/buildinfo"

func main() { print(buildinfo.Version()) }
