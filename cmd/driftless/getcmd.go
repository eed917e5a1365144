package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"sigs.k8s.io/yaml"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/status"
)

// getSections are the sections `driftless get` prints, as status does.
var getSections = []string{"nodes", "workloads", "replicas", "services", "volumes"}

const getUsage = "usage: driftless get nodes|workloads|replicas|services|volumes --repo URL [--status-branch B] [-o text|wide|json|yaml]"

// replicaRecord is one replica of `driftless get replicas -o json`: the
// placement's record, with the workload it belongs to.
type replicaRecord struct {
	Workload manifest.Ref `json:"workload"`
	manifest.ReplicaPlacement
}

func runGet(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRepoFlags(fs, "repository holding the status branch")
	rf.acceptOutputs(fs, "text", "wide", "json", "yaml")
	if code, done := parseFlags(fs, reorderFlags(fs, args)); done {
		return code
	}
	section := fs.Arg(0)
	if !slices.Contains(getSections, section) && slices.Contains(getSections, section+"s") {
		section += "s" // node, replica, ... as kubectl takes them
	}
	if !rf.usable(stderr, fs.NArg() == 1 && slices.Contains(getSections, section), getUsage) {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := status.ReadState(ctx, *rf.repo, *rf.statusBranch, rf.auth)
	if err != nil {
		fmt.Fprintf(stderr, "driftless get: %v\n", err)
		return 1
	}
	switch *rf.output {
	case "json", "yaml":
		return printRecords(stdout, stderr, *rf.output, sectionRecords(st, section))
	}
	wide := *rf.output == "wide"
	switch section {
	case "nodes":
		printNodesTable(stdout, st, wide)
	case "workloads":
		printWorkloadsTable(stdout, st, wide)
	case "replicas":
		printReplicasTable(stdout, st, wide)
	case "services":
		printServicesTable(stdout, st, wide)
	case "volumes":
		printVolumesTable(stdout, st, wide)
	}
	return 0
}

// sectionRecords are the records `status -o json` has for a section
// (an empty map or list, never null); replicas are the placements'
// replicas, each with its workload.
func sectionRecords(st *status.State, section string) any {
	switch section {
	case "nodes":
		if st.Nodes == nil {
			return map[string]status.NodeStatus{}
		}
		return st.Nodes
	case "workloads":
		return append([]manifest.Placement{}, sortedPlacements(st)...)
	case "replicas":
		out := []replicaRecord{}
		for _, p := range sortedPlacements(st) {
			for _, r := range p.Replicas {
				out = append(out, replicaRecord{Workload: p.Workload, ReplicaPlacement: r})
			}
		}
		return out
	case "services":
		return sortedServices(st)
	case "volumes":
		return sortedVolumes(st)
	}
	return nil
}

// printRecords writes v as indented JSON (as status -o json does) or YAML.
func printRecords(stdout, stderr io.Writer, format string, v any) int {
	if format == "yaml" {
		b, err := yaml.Marshal(v)
		if err != nil {
			fmt.Fprintln(stderr, "driftless get:", err)
			return 1
		}
		_, _ = stdout.Write(b)
		return 0
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(stderr, "driftless get:", err)
		return 1
	}
	return 0
}
