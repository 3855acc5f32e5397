// Command etcd is etcd's server built from its published Go module, as the
// storage of the kube-apiserver that deploy/tools builds (see build.sh).
// etcd's own main.go is the same call.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
