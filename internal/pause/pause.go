// Package pause is the process that holds a replica's shared PID
// namespace (`shareProcessNamespace`), as the kubelet's pause container
// does: PID 1 of the namespace, it reaps the orphans that end up as its
// children and exits on SIGTERM or SIGINT. The driftless binary runs it as
// `driftless pause`, bind-mounted into an otherwise empty root file
// system, so it must be statically linked.
package pause

import (
	"debug/elf"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// Arg is the command line word that makes the driftless binary the pause
// process.
const Arg = "pause"

// Run blocks until SIGTERM or SIGINT, reaping children meanwhile, and
// returns the exit code.
func Run() int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGCHLD)
	for s := range sigs {
		if s != unix.SIGCHLD {
			return 0
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
	return 0
}

// CheckStatic returns an error when the executable at path needs a
// dynamic loader: it could not run in an empty root file system.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("pause binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("pause binary %s is dynamically linked; a shared process namespace needs a statically linked driftless (built with CGO_ENABLED=0, as `make build` does)", path)
		}
	}
	return nil
}
