// Command driftless is the GitOps agent and its command-line tools.
package main

import (
	"fmt"
	"io"
	"os"

	"driftless.dev/driftless/containerlog"
	"driftless.dev/driftless/internal/pause"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `driftless: run Kubernetes-style manifests from Git on containerd.

Usage:
  driftless agent    [flags]            run the node agent
  driftless validate [-o json] PATH...  lint manifests (exit 0 valid, 1 invalid, 2 usage)
  driftless status   --repo URL         show the status branch (no agent needed)
  driftless get      SECTION --repo URL [-o text|wide|json|yaml]
                                        one section of status: nodes, workloads, replicas,
                                        services or volumes
  driftless events   --repo URL [--since 1h] [WORKLOAD]
                                        the status commits' messages as a timeline, oldest first
  driftless plan     --repo URL         what the scheduler would change for the desired head
  driftless verify   --repo URL --allowed-signers FILE
                                        check the status branch: linear, terms, signatures
  driftless history  --repo URL [WORKLOAD]
                                        desired and status commits joined into one timeline
  driftless reconcile --repo URL --gossip-key-file F [--node N]
                                        every node (or one) fetches and reconciles now
  driftless diff     --repo URL --gossip-key-file F [--node N]
                                        each node's containers against its desired replicas
  driftless suspend  WORKLOAD --repo URL [--branch B] [--author "Name <email>"]
                                        commit a suspension: the leader keeps the workload as it is
  driftless resume   WORKLOAD --repo URL [--branch B] [--author "Name <email>"]
                                        commit the resumption: its manifest is applied again
  driftless logs     WORKLOAD [-c CONTAINER] [-f] [--tail N] [--previous]
                                        a container's output on this node
  driftless secret   seal --recipients FILE [FILE]  (also: unseal --identity FILE, keygen -o FILE)
                                        seal a Secret manifest's values with age
  driftless completion bash|zsh|fish    a shell completion script
  driftless version

Run "driftless COMMAND -h" for the flags of a command.
`

// command is one subcommand that run dispatches, for completion.
type command struct {
	name, help string
	// subs are the words that come right after the name (secret seal,
	// get nodes, completion bash).
	subs []string
	// noFlags: the command parses no flags (completion does not ask it).
	noFlags bool
}

// commands lists the subcommands of run.
var commands = []command{
	{name: "agent", help: "run the node agent"},
	{name: "validate", help: "lint manifests"},
	{name: "status", help: "show the status branch"},
	{name: "get", help: "one section of the status branch", subs: getSections},
	{name: "events", help: "the status branch as a timeline of events"},
	{name: "plan", help: "what the scheduler would change for the desired head"},
	{name: "verify", help: "check the status branch: linear, terms, signatures"},
	{name: "history", help: "desired and status commits joined into one timeline"},
	{name: "suspend", help: "commit a workload's suspension: the leader keeps it as it is"},
	{name: "resume", help: "commit a suspended workload's resumption"},
	{name: "logs", help: "a container's output on this node (or another with --node)"},
	{name: "reconcile", help: "ask the nodes to fetch and reconcile now"},
	{name: "diff", help: "each node's containers against its desired replicas"},
	{name: "secret", help: "seal a Secret manifest's values with age", subs: []string{"seal", "unseal", "keygen"}},
	{name: "completion", help: "print a shell completion script", subs: shells},
	{name: "version", help: "print the version", noFlags: true},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// containerd's shim starts this binary as a container's log writer,
	// with its flags in no fixed order.
	if containerlog.IsWriterInvocation(args) {
		return containerlog.RunWriter(args, stderr)
	}
	switch args[0] {
	case pause.Arg:
		// The process holding a replica's shared PID namespace.
		return pause.Run()
	case "agent":
		return runAgent(args[1:], stdout, stderr)
	case "validate":
		return runValidate(args[1:], stdout, stderr)
	case "status":
		return runStatus(args[1:], stdout, stderr)
	case "get":
		return runGet(args[1:], stdout, stderr)
	case "events":
		return runEvents(args[1:], stdout, stderr)
	case "completion":
		return runCompletion(args[1:], stdout, stderr)
	case "plan":
		return runPlan(args[1:], stdout, stderr)
	case "verify":
		return runVerify(args[1:], stdout, stderr)
	case "history":
		return runHistory(args[1:], stdout, stderr)
	case "suspend", "resume":
		return runSuspend(args[0], args[1:], stdout, stderr)
	case "logs":
		return runLogs(args[1:], stdout, stderr)
	case "reconcile":
		return runReconcile(args[1:], stdout, stderr)
	case "diff":
		return runDiff(args[1:], stdout, stderr)
	case "secret":
		return runSecret(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "driftless", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "driftless: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
