// Command etcd is the etcd server (go.etcd.io/etcd/server/v3 at the version in go.mod), built
// from this module so `make cluster-up` can put a static etcd into a FROM scratch image
// without pulling one.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
