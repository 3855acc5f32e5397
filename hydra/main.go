// Command hydra is Ory Hydra built from its published Go module, so the
// project runs the real server without Docker. Hydra's own main.go is the
// same call; see hydra/README.md for how it is built and cached.
package main

import "github.com/ory/hydra/v2/cmd"

func main() {
	cmd.Execute()
}
