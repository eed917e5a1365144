package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/ssh"

	"driftless.dev/driftless/manifest"
	"driftless.dev/driftless/services"
	"driftless.dev/driftless/status"
	"driftless.dev/driftless/volumes"
)

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRepoFlags(fs, "repository holding the status branch")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if !rf.usable(stderr, fs.NArg() == 0, "usage: driftless status --repo URL [--status-branch B] [-o text|json]") {
		return 2
	}
	repo, branch, output, auth := rf.repo, rf.statusBranch, rf.output, rf.auth
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := status.ReadState(ctx, *repo, *branch, auth)
	if err != nil {
		fmt.Fprintf(stderr, "driftless status: %v\n", err)
		return 1
	}
	if *output == "json" {
		out := struct {
			Head       string                       `json:"head"`
			Cluster    status.Cluster               `json:"cluster"`
			Nodes      map[string]status.NodeStatus `json:"nodes"`
			Placements []manifest.Placement         `json:"placements"`
			Services   []services.Record            `json:"services"`
			Volumes    []volumes.Binding            `json:"volumes"`
		}{Head: st.Head, Cluster: st.Cluster, Nodes: st.Nodes, Services: sortedServices(st), Volumes: sortedVolumes(st)}
		for _, p := range sortedPlacements(st) {
			out.Placements = append(out.Placements, p)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	printStatus(stdout, st)
	return 0
}

func sortedPlacements(st *status.State) []manifest.Placement {
	var ps []manifest.Placement
	for _, p := range st.Placements {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Workload.String() < ps[j].Workload.String() })
	return ps
}

func sortedServices(st *status.State) []services.Record {
	out := []services.Record{}
	for _, r := range st.Services {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service.String() < out[j].Service.String() })
	return out
}

// printServices lists the Services under SERVICES, when there are any.
func printServices(w io.Writer, st *status.State) {
	if len(st.Services) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSERVICES")
	printServicesTable(w, st, false)
}

// printServicesTable lists the Services: address, ports (node ports after
// a colon) and endpoints, or why there is no address; wide adds target
// ports, session affinity and the replicas behind the endpoints.
func printServicesTable(w io.Writer, st *status.State, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "SERVICE\tTYPE\tCLUSTER-IP\tPORTS\tENDPOINTS"
	if wide {
		head += "\tTARGET-PORTS\tAFFINITY\tREPLICAS"
	}
	fmt.Fprintln(tw, head)
	for _, r := range sortedServices(st) {
		ip := r.ClusterIP
		switch {
		case r.ExternalName != "":
			ip = "-> " + r.ExternalName
		case r.Error != "":
			ip = "none (" + r.Error + ")"
		case ip == "":
			ip = "-"
		}
		var ports []string
		for _, p := range r.Ports {
			s := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
			if p.NodePort != 0 {
				s = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
			}
			ports = append(ports, s)
		}
		var eps []string
		for _, e := range r.Endpoints {
			s := e.IP
			if !e.Ready {
				s += " (not ready)"
			}
			eps = append(eps, s)
		}
		endpoints := strings.Join(eps, ",")
		if len(eps) == 0 {
			endpoints = "<none>"
		}
		if len(ports) == 0 {
			ports = []string{"-"}
		}
		line := fmt.Sprintf("%s/%s\t%s\t%s\t%s\t%s", r.Service.Namespace, r.Service.Name, r.Type, ip, strings.Join(ports, ","), endpoints)
		if wide {
			var targets, replicas []string
			for _, p := range r.Ports {
				targets = append(targets, fmt.Sprintf("%d->%s", p.Port, p.TargetPort))
			}
			for _, e := range r.Endpoints {
				replicas = append(replicas, e.Replica+"@"+e.Node)
			}
			affinity := r.SessionAffinity
			if affinity != "" && r.AffinitySeconds > 0 {
				affinity += fmt.Sprintf("/%ds", r.AffinitySeconds)
			}
			line += "\t" + orDash(strings.Join(targets, ",")) + "\t" + orDash(affinity) + "\t" + orDash(strings.Join(replicas, ","))
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

func sortedVolumes(st *status.State) []volumes.Binding {
	out := []volumes.Binding{}
	for _, b := range st.Volumes {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Claim.String() < out[j].Claim.String() })
	return out
}

// shortModes renders access modes as kubectl does: RWO, ROX, RWX, RWOP.
func shortModes(modes []string) string {
	short := map[string]string{
		manifest.ReadWriteOnce:    "RWO",
		manifest.ReadOnlyMany:     "ROX",
		manifest.ReadWriteMany:    "RWX",
		manifest.ReadWriteOncePod: "RWOP",
	}
	var out []string
	for _, m := range modes {
		if s, ok := short[m]; ok {
			m = s
		}
		out = append(out, m)
	}
	return orDash(strings.Join(out, ","))
}

// printVolumes lists the claims' bindings under VOLUMES, when there are
// any.
func printVolumes(w io.Writer, st *status.State) {
	if len(st.Volumes) == 0 {
		return
	}
	fmt.Fprintln(w, "\nVOLUMES")
	printVolumesTable(w, st, false)
}

// printVolumesTable lists the claims' bindings: phase, the node holding
// the data ("shared" for a claim on shared storage), size, access modes
// and directory; wide adds the class, reclaim policy, first user and the
// desired commit of the binding.
func printVolumesTable(w io.Writer, st *status.State, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "CLAIM\tPHASE\tNODE\tSIZE\tMODES\tPATH"
	if wide {
		head += "\tCLASS\tRECLAIM\tUSED-BY\tCOMMIT"
	}
	fmt.Fprintln(tw, head)
	for _, b := range sortedVolumes(st) {
		node := b.Node
		if node == "" {
			node = "shared"
		}
		line := fmt.Sprintf("%s/%s\t%s\t%s\t%s\t%s\t%s", b.Claim.Namespace, b.Claim.Name, orDash(string(b.Phase)), node, orDash(b.Storage), shortModes(b.AccessModes), orDash(b.Path))
		if wide {
			line += "\t" + orDash(b.StorageClass) + "\t" + orDash(b.ReclaimPolicy) + "\t" + orDash(b.UsedBy) + "\t" + abbrev(b.DesiredCommit)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func abbrev(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	if c == "" {
		return "-"
	}
	return c
}

func printStatus(w io.Writer, st *status.State) {
	c := st.Cluster
	fmt.Fprintf(w, "Status commit:  %s\n", st.Head)
	fmt.Fprintf(w, "Leader:         %s (term %d)\n", c.Leader, c.Term)
	fmt.Fprintf(w, "Desired commit: %s (%s)\n", abbrev(c.DesiredCommit), c.DesiredCommit)
	for _, warning := range c.Warnings {
		fmt.Fprintf(w, "Warning:        %s\n", warning)
	}
	if r := c.LastRejection; r != nil {
		fmt.Fprintf(w, "Last rejection: %s at %s, %d problem(s):\n", abbrev(r.Commit), r.Time.Format(time.RFC3339), len(r.Errors))
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}

	fmt.Fprintln(w, "\nNODES")
	printNodesTable(w, st, false)

	fmt.Fprintln(w, "\nWORKLOADS")
	printWorkloadsTable(w, st, false)

	ps := sortedPlacements(st)
	var suspended []string
	for _, p := range ps {
		if p.Suspended {
			suspended = append(suspended, fmt.Sprintf("%s	%s	%s", p.Workload, p.SpecHash, abbrev(p.DesiredCommit)))
		}
	}
	if len(suspended) > 0 {
		fmt.Fprintln(w, "\nSUSPENDED (kept as they are until resumed)")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKLOAD\tSPEC\tCOMMIT")
		for _, l := range suspended {
			fmt.Fprintln(tw, l)
		}
		tw.Flush()
	}
	var jobLines, cronLines, rollLines []string
	for _, p := range ps {
		if r := p.Rollout; r != nil {
			state := "progressing"
			switch {
			case r.Stalled():
				state = "stalled: " + r.Message
			case r.Reason == manifest.ReasonDeploymentPaused:
				state = "paused"
			case r.Complete():
				state = "complete"
			}
			rollLines = append(rollLines, fmt.Sprintf("%s\t%d/%d\t%d\t%d\t%d\t%s\t%s", p.Workload, r.Updated, r.Replicas, r.Ready, r.Available, r.Total, r.LastProgress.Format(time.RFC3339), state))
		}
		if j := p.Job; j != nil {
			cond := j.Condition
			if j.Reason != "" {
				cond += " (" + j.Reason + ")"
			}
			if cond == "" {
				cond = "Running"
			}
			if j.Expired {
				cond += ", replicas removed"
			}
			jobLines = append(jobLines, fmt.Sprintf("%s\t%d\t%d\t%d\t%s\t%s", p.Workload, j.Active, j.Succeeded, j.Failed, j.StartTime.Format(time.RFC3339), cond))
		}
		if c := p.CronJob; c != nil {
			last := "-"
			if c.LastScheduleTime != nil {
				last = c.LastScheduleTime.Format(time.RFC3339)
			}
			cronLines = append(cronLines, fmt.Sprintf("%s\t%s\t%d\t%s", p.Workload, last, len(c.Active), strings.Join(c.Runs, ",")))
		}
	}
	if len(rollLines) > 0 {
		fmt.Fprintln(w, "\nROLLOUTS")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKLOAD\tUPDATED\tREADY\tAVAILABLE\tPLACED\tLAST PROGRESS\tSTATE")
		for _, l := range rollLines {
			fmt.Fprintln(tw, l)
		}
		tw.Flush()
	}
	if len(jobLines) > 0 {
		fmt.Fprintln(w, "\nJOBS")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tACTIVE\tSUCCEEDED\tFAILED\tSTARTED\tCONDITION")
		for _, l := range jobLines {
			fmt.Fprintln(tw, l)
		}
		tw.Flush()
	}
	if len(cronLines) > 0 {
		fmt.Fprintln(w, "\nCRONJOBS")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CRONJOB\tLAST SCHEDULE\tACTIVE\tRUNS")
		for _, l := range cronLines {
			fmt.Fprintln(tw, l)
		}
		tw.Flush()
	}

	printServices(w, st)
	printVolumes(w, st)

	fmt.Fprintln(w, "\nREPLICAS")
	printReplicasTable(w, st, false)
}

// printNodesTable lists the nodes: state, the leader's star, replicas
// placed, the desired commit reached, address, pod subnet, cpu and memory
// allocated of capacity, labels; wide adds every resource's capacity and
// allocation and the fingerprint of the node's signing key.
func printNodesTable(w io.Writer, st *status.State, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	placed := map[string]int{}
	for _, p := range st.Placements {
		for _, r := range p.Replicas {
			if r.Node != "" {
				placed[r.Node]++
			}
		}
	}
	head := "NAME\tSTATE\tLEADER\tREPLICAS\tREACHED\tADDRESS\tPOD-CIDR\tALLOCATED/CAPACITY\tLABELS"
	if wide {
		head += "\tCAPACITY\tALLOCATED\tSIGNING-KEY"
	}
	fmt.Fprintln(tw, head)
	names := make([]string, 0, len(st.Nodes))
	for n := range st.Nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ns := st.Nodes[n]
		lead := ""
		if n == st.Cluster.Leader {
			lead = "*"
		}
		var capacity []string
		for _, k := range []string{"cpu", "memory"} {
			c, okc := ns.Capacity[k]
			a, oka := ns.Allocated[k]
			switch {
			case okc && oka:
				capacity = append(capacity, k+"="+a+"/"+c)
			case okc:
				capacity = append(capacity, k+"=0/"+c)
			case oka:
				capacity = append(capacity, k+"="+a)
			}
		}
		cidr := ns.PodCIDR
		if cidr == "" {
			cidr = "-"
			if ns.PodCIDRPending != "" {
				cidr = "none (" + ns.PodCIDRPending + ")"
			}
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s", n, ns.State, lead, placed[n], abbrev(ns.DesiredCommitReached), orDash(ns.Address), cidr, strings.Join(capacity, ","), keyValues(ns.Labels))
		if wide {
			line += "\t" + orDash(keyValues(ns.Capacity)) + "\t" + orDash(keyValues(ns.Allocated)) + "\t" + keyFingerprint(ns.SigningKey)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// keyValues renders a map as sorted k=v pairs, comma-separated.
func keyValues(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// keyFingerprint is the SHA256 fingerprint of an authorized_keys line, as
// ssh-keygen -lf prints it ("-" for none, the line itself when it does not
// parse).
func keyFingerprint(line string) string {
	if line == "" {
		return "-"
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return line
	}
	return ssh.FingerprintSHA256(k)
}

// printWorkloadsTable lists the workloads: spec hash, replicas desired,
// placed, running and ready, desired commit; wide adds the nodes their
// replicas are on and how many are pending.
func printWorkloadsTable(w io.Writer, st *status.State, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "WORKLOAD\tSPEC\tDESIRED\tPLACED\tRUNNING\tREADY\tCOMMIT"
	if wide {
		head += "\tNODES\tPENDING"
	}
	fmt.Fprintln(tw, head)
	for _, p := range sortedPlacements(st) {
		placed, running, ready := 0, 0, 0
		nodes := map[string]bool{}
		for _, r := range p.Replicas {
			if r.Node != "" {
				placed++
				nodes[r.Node] = true
			}
			if r.Status != nil && r.Status.Phase == manifest.PhaseRunning {
				running++
			}
			if r.Status != nil && r.Status.Ready {
				ready++
			}
		}
		line := fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d\t%s", p.Workload, p.SpecHash, len(p.Replicas), placed, running, ready, abbrev(p.DesiredCommit))
		if wide {
			names := make([]string, 0, len(nodes))
			for n := range nodes {
				names = append(names, n)
			}
			sort.Strings(names)
			line += fmt.Sprintf("\t%s\t%d", orDash(strings.Join(names, ",")), len(p.Replicas)-placed)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// printReplicasTable lists every replica: node, address, phase, readiness,
// restarts and the reason (with the node's message) or, for a pending
// one, why no node fits; wide adds the pod name, the replica's spec hash
// and desired commit (an old replica's during a rollout), when it became
// ready and why it stays on a node that evicts it.
func printReplicasTable(w io.Writer, st *status.State, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "WORKLOAD\tREPLICA\tNODE\tIP\tPHASE\tREADY\tRESTARTS\tREASON"
	if wide {
		head += "\tPOD\tSPEC\tCOMMIT\tREADY-SINCE\tDISRUPTION"
	}
	fmt.Fprintln(tw, head)
	for _, p := range sortedPlacements(st) {
		for _, r := range p.Replicas {
			phase, ready, restarts, reason, ip := "Pending", "false", 0, "", "-"
			if r.Status != nil {
				phase, ready, restarts, reason = r.Status.Phase, fmt.Sprint(r.Status.Ready), r.Status.Restarts, r.Status.Reason
				if r.Status.PodIP != "" {
					ip = r.Status.PodIP
				}
				if r.Status.Message != "" {
					reason = strings.TrimSpace(reason + " " + r.Status.Message)
				}
			}
			node := r.Node
			if node == "" {
				node = "-"
				reason = strings.Join(r.Pending, "; ")
			}
			line := fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s", p.Workload, r.Index, node, ip, phase, ready, restarts, reason)
			if wide {
				since := "-"
				if r.ReadySince != nil {
					since = r.ReadySince.UTC().Format(time.RFC3339)
				}
				line += fmt.Sprintf("\t%s\t%s\t%s\t%s\t%s", manifest.PodName(p.Workload, r.Index), orDash(r.SpecHash), abbrev(p.CommitOf(r)), since, orDash(r.Disruption))
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
}
