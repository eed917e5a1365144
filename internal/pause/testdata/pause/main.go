// Command pause is the pause process alone, for tests that need a small
// static binary to hold a PID namespace.
package main

import (
	"os"

	"driftless.dev/driftless/internal/pause"
)

func main() { os.Exit(pause.Run()) }
