// Command kratos is Ory Kratos built from its published Go module, so the
// project runs the real identity server without Docker. Kratos's own main.go
// makes the same call; see kratos/README.md for how it is built and cached.
package main

import (
	"os"

	"github.com/ory/kratos/cmd"
)

func main() {
	os.Exit(cmd.Execute())
}
